"""A progress bar speaks the running command's language: its label comes from the catalogue."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from commands import help_i18n
from commands.progress import Progress


@pytest.fixture
def lang() -> Iterator[None]:
    yield
    help_i18n.use("en")  # as the root leaves it after a run


@pytest.mark.parametrize(
    ("chosen", "shown"),
    [("en", "checking rows [##"), ("zh", "正在检查各行 [##")],
)
def test_the_bar_is_drawn_in_the_commands_language(lang: None, chosen: str, shown: str) -> None:
    help_i18n.use(chosen)
    stream = io.StringIO()
    with Progress("checking rows", 10, stream, enabled=True) as bar:
        bar.set(10)
    assert shown in stream.getvalue()
    assert ("checking rows" in stream.getvalue()) == (chosen == "en")
