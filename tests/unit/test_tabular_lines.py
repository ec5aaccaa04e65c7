"""CSV text is split into lines exactly as io.StringIO(newline="") splits it (without its copy)."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.tabular import _lines


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["a", "中", "\r", "\n", "\r\n", '"', ",", "\u2028", "\x0b", " "]), max_size=40))
def test_lines_are_the_lines_stringio_yields(parts: list[str]) -> None:
    text = "".join(parts)
    assert list(_lines(text)) == list(io.StringIO(text, newline=""))
