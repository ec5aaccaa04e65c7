"""Reading back a printed sheet (commands/export.py) the way a test needs it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOTAL = ("合计", "Total")


def plain_header(value: Any) -> str:
    """A header cell as one line: a printed header may wrap (`时长` / `(分钟)`)."""
    return re.sub(r"\s+", "", str(value or ""))


@dataclass
class Printed:
    title: str
    subtitle: str
    header: list[str]  # one line each
    data: list[list[Any]]
    total: list[Any]
    below: list[str]  # the text of every non-empty row under the totals (legend, notes, signatures)

    def column(self, label: str) -> int:
        return self.header.index(plain_header(label))


def read_printed(path: Path) -> Printed:
    import openpyxl  # type: ignore[import-untyped]

    rows = [list(r) for r in openpyxl.load_workbook(path).active.iter_rows(values_only=True)]
    title, subtitle, header = rows[0], rows[1], rows[2]
    assert isinstance(title[0], str) and all(v is None for v in title[1:]), title
    assert isinstance(subtitle[0], str) and all(v is None for v in subtitle[1:]), subtitle
    end = next(i for i, row in enumerate(rows) if row[0] in TOTAL)
    below = [" ".join(str(v) for v in row if v is not None) for row in rows[end + 1 :]]
    return Printed(
        title[0], subtitle[0], [plain_header(h) for h in header], rows[3:end], rows[end], [b for b in below if b]
    )
