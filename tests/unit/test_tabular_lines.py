"""CSV text is read line by line from the file exactly as io.StringIO(newline="") splits it
(streamed: the file's text is never held whole)."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.tabular import _text_lines

PARTS = ["a", "中", "\r", "\n", "\r\n", '"', ",", "\u2028", "\x0b", " "]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PARTS), max_size=40), st.sampled_from(["utf-8-sig", "gb18030"]), st.booleans())
def test_lines_are_the_lines_stringio_yields(parts: list[str], encoding: str, bom: bool) -> None:
    text = "".join(parts)
    data = (("\ufeff" if bom else "") + text).encode(encoding.removesuffix("-sig"))
    assert list(_text_lines(io.BytesIO(data), encoding)) == list(io.StringIO(text, newline=""))
