"""Progress for long jobs: a bar on a terminal, silence when piped."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class Progress:
    """`with Progress("importing", total) as p: p.advance(n)` — draws on stderr only if it is a TTY."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.label = _shown(label)
        self.total = max(total, 0)
        self.done = 0
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = enabled if enabled is not None else bool(isatty and isatty())
        self._last = 0.0
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            if exc_type is None:
                self.done = self.total
                self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def set(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        self.done = done
        self._draw()

    def _draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        fraction = self.done / self.total if self.total else 1.0
        filled = int(width * min(fraction, 1.0))
        rate = self.done / max(now - self._start, 1e-6)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} ({rate:,.0f}/s)"
        )
        self.stream.flush()


def _shown(label: str) -> str:
    """A bar's label in the running command's language (the message catalogue)."""
    from commands import help_i18n

    lang = help_i18n.language()
    if lang == "en":
        return label
    from commands import i18n

    return i18n.translate(label, lang)
