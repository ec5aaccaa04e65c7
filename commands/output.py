"""Printing results: table (aligned for Chinese text), json, csv.

CSV text cells that a spreadsheet would read as a formula get a leading `'`
(see commands.formulas); json and table print values as they are.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import click
import orjson

from commands import formulas
from commands.clock import Shown, plain

FORMATS = ("table", "json", "csv")


def display_width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ";".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: Sequence[str]) -> str:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [display_width(h) for h in headers]
    for line in cells:
        widths = [max(w, display_width(c)) for w, c in zip(widths, line, strict=True)]
    out = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(_pad(c, w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells)
    return "\n".join(out)


def _csv_cell(value: Any) -> str:
    if isinstance(value, Shown):
        return value.iso()  # as in the JSON
    if isinstance(value, bool):
        return "true" if value else "false"  # as in the JSON
    if isinstance(value, (int, float)):
        return _cell(value)  # a number stays a number, negative or not: it cannot be a formula
    return formulas.quote(_cell(value))  # never a formula in a spreadsheet (commands.formulas)


def render_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue().rstrip("\n")


def render_json(document: Any) -> str:
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
    return orjson.dumps(document, default=plain, option=options).decode()


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    headers: Sequence[str] | None = None,
    file: TextIO | None = None,
) -> None:
    """Print rows in the chosen format; json prints the list, csv the JSON fields in order."""
    if fmt == "json":
        click.echo(render_json(list(rows)), file=file)
    elif fmt == "csv":
        click.echo(render_csv(rows, columns), file=file)
    else:
        if current_lang() == "zh":  # slugs, yes/no and the code's sentences in Chinese (commands/labels.py)
            from commands.labels import localise

            rows = [localise(row, "zh") for row in rows]
        click.echo(render_table(rows, columns, headers or columns), file=file)


def emit_to(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    headers: Sequence[str] | None,
    output: Path | None,
    force: bool,
) -> None:
    """`emit` to the terminal, or into the --output file (not over one that exists without --force)."""
    if output is None:
        emit(rows, columns, fmt, headers)
        return
    from commands import files

    with files.output_text(output, "--output", force=force) as text:
        emit(rows, columns, fmt, headers, file=text)


def say(text: str) -> str:
    """Text for a person in the running command's --lang, translated line by line (commands/i18n.py)."""
    if current_lang() != "zh":
        return text
    from commands.i18n import translate

    return "\n".join(translate(line, "zh") for line in text.split("\n"))


def current_lang() -> str:
    """The running command's --lang (its context's Env), "en" outside a command."""
    ctx = click.get_current_context(silent=True)
    return getattr(ctx.find_root().obj, "lang", "en") if ctx is not None else "en"


def emit_write(result: dict[str, Any], fmt: str, message: str) -> None:
    """A write command's outcome: the ids it touched as JSON, or one line for a person."""
    if fmt == "json":
        click.echo(render_json(result))
    else:
        click.echo(say(message))
