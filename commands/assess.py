"""Scoring an assessment with a rubric, and the documents it is printed as (json, html, xlsx)."""

from __future__ import annotations

import hashlib
import html
import math
import tomllib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, BinaryIO

from commands import files, formulas, labels
from projections.assessment import ALL_METRICS, METRICS, UnitFacts

RUBRICS = Path(__file__).resolve().parent / "rubrics"
DEFAULT_RUBRIC = RUBRICS / "default.toml"  # hezhou-default v1, the rubric of every moment before v2
RUBRIC_V2 = RUBRICS / "v2.toml"  # hezhou-default v2 (fund_execution), from its `since`
SHIPPED = {"v1": DEFAULT_RUBRIC, "v2": RUBRIC_V2}


class RubricError(ValueError):
    """A rubric file that cannot be used (malformed input, exit 2)."""


@dataclass(frozen=True)
class Rubric:
    name: str
    version: str
    sha256: str
    weights: dict[str, float]

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    @property
    def funds(self) -> bool:
        """Whether it weighs a metric of the funding ledger (so the funds views are read)."""
        return "fund_execution" in self.weights


def rubric_since(path: Path) -> str | None:
    """A shipped rubric's `since` (the moment it took effect) as fixed-width UTC text, or None."""
    from datetime import UTC, datetime

    document = tomllib.loads(path.read_text(encoding="utf-8"))
    since = document.get("since")
    if since is None:
        return None
    moment = since if isinstance(since, datetime) else datetime.fromisoformat(str(since))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_utc() -> str:
    """Now as fixed-width UTC text (the moment of an assessment of the current ledger)."""
    from datetime import UTC, datetime

    from projections.filters import utc_ms

    return utc_ms(datetime.now(UTC))


def default_rubric(moment: str | None, now: str) -> Rubric:
    """The shipped rubric in force at `moment` (fixed-width UTC text; None: `now`): v2 from its
    `since`, v1 before — so an assessment as of a moment before v2 existed is the one v1 gave."""
    at = moment or now
    since = rubric_since(RUBRIC_V2)
    return load_rubric(RUBRIC_V2 if since is not None and at >= since else DEFAULT_RUBRIC)


MAX_RUBRIC_BYTES = files.MAX_RUBRIC_BYTES


def load_rubric(path: Path | None) -> Rubric:
    """A rubric file, or a shipped one by its name (`v1`, `v2`); None: v1 (see default_rubric)."""
    source = path or DEFAULT_RUBRIC
    if path is not None and str(path) in SHIPPED and not path.exists():
        source = SHIPPED[str(path)]
    try:
        raw = files.read_input(source, "--rubric", MAX_RUBRIC_BYTES)  # a device or a pipe is never read
    except files.InputProblem as e:
        raise RubricError(str(e)) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except RecursionError:
        raise RubricError(f"--rubric: {source.name} is nested too deeply") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RubricError(f"--rubric: {source.name} is not valid TOML: {e}") from None
    name, version, weights = document.get("name"), document.get("version"), document.get("weights")
    if not isinstance(name, str) or not name.strip():
        raise RubricError(f"--rubric: {source.name} needs a name")
    if not isinstance(version, (str, int)):
        raise RubricError(f"--rubric: {source.name} needs a version")
    if not isinstance(weights, dict) or not weights:
        raise RubricError(f"--rubric: {source.name} needs a [weights] table")
    clean: dict[str, float] = {}
    for metric, weight in weights.items():
        if metric not in ALL_METRICS:
            raise RubricError(f"--rubric: unknown metric {metric!r} (one of: {', '.join(ALL_METRICS)})")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise RubricError(f"--rubric: weight of {metric} must be a number of 0 or more, got {weight!r}")
        clean[metric] = float(weight)
    if not any(clean.values()):
        raise RubricError("--rubric: every weight is 0")
    return Rubric(name.strip(), str(version), hashlib.sha256(raw).hexdigest(), clean)


def score_unit(fact: UnitFacts, rubric: Rubric) -> tuple[float | None, dict[str, dict[str, Any]]]:
    """The unit's score (0-100, or None with no data at all) and each metric's line."""
    present = {
        metric: fact.measures[metric].value
        for metric in rubric.weights
        if fact.measures[metric].value is not None and rubric.weights[metric] > 0
    }
    total = sum(rubric.weights[m] for m in present)
    metrics: dict[str, dict[str, Any]] = {}
    for metric in ALL_METRICS:
        if metric not in rubric.weights:
            continue
        measure = fact.measures[metric]
        value = measure.value
        points = (
            None
            if value is None or not total or metric not in present
            else 100 * value * rubric.weights[metric] / total
        )
        metrics[metric] = {
            "value": None if value is None else round(value, 6),
            "weight": rubric.weights[metric],
            "points": None if points is None else round(points, 4),
            "numerator": round(measure.numerator, 6),
            "denominator": round(measure.denominator, 6),
        }
    if not total:
        return None, metrics
    score = 100 * sum(present[m] * rubric.weights[m] for m in present) / total  # type: ignore[operator]
    return round(score, 2), metrics


def rank(scores: dict[str, float | None]) -> dict[str, int | None]:
    """Competition ranking by score, ties sharing a rank (1, 1, 3); no score, no rank."""
    ordered = sorted((s for s in scores.values() if s is not None), reverse=True)
    first_place = {}
    for i, s in enumerate(ordered, start=1):
        first_place.setdefault(s, i)
    return {unit: (None if s is None else first_place[s]) for unit, s in scores.items()}


def unit_label(fact: UnitFacts) -> str:
    return str(fact.unit)


# ---- documents --------------------------------------------------------------------------------------
COLUMNS = ("rank", "unit", "score", *METRICS)


def metrics_of(document: dict[str, Any]) -> tuple[str, ...]:
    """The metrics a document's tables show: the six of v1, then the optional ones its rubric weighs."""
    weighed = {m for unit in document["units"] for m in unit["metrics"]}
    return (*METRICS, *(m for m in ALL_METRICS if m not in METRICS and m in weighed))


def columns_of(document: dict[str, Any]) -> tuple[str, ...]:
    return ("rank", "unit", "score", *metrics_of(document))


def by_rank(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Units as a ranking is read: best first, ties by name, units without a score last."""
    return sorted(units, key=lambda u: (u["rank"] is None, u["rank"] or 0, u.get("name") or u["unit"], u["unit"]))


def _one_decimal(value: float) -> str:
    """Rounded half up as people round (67.85 -> 67.9), from the number's shortest decimal form."""
    return str(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def score_text(value: float | None) -> str:
    """A score as people read it: one decimal (`87.3`); none: `—`."""
    return "—" if value is None else _one_decimal(value)


def ratio_text(value: float | None) -> str:
    """A metric (a ratio in [0, 1]) as a percentage with one decimal (`49.2%`); none: `—`."""
    return "—" if value is None else _one_decimal(float(Decimal(repr(value)) * 100)) + "%"


def ranking_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The ranking as a table shows it: by rank, units by name, scores and percentages as text.
    (json and csv keep the exact numbers.)"""
    return [
        {
            "rank": "—" if unit["rank"] is None else unit["rank"],
            "unit": unit.get("name") or unit["unit"],
            "score": score_text(unit["score"]),
            **{m: ratio_text((unit["metrics"].get(m) or {}).get("value")) for m in metrics_of(document)},
        }
        for unit in by_rank(document["units"])
    ]


def _title(document: dict[str, Any], lang: str) -> str:
    level = document["level"]
    if lang == "zh":
        return f"{document['period']} {'乡镇' if level == 'township' else '县区'}考核结果"
    return f"Assessment of {level}s, {document['period']}"


def _meta(document: dict[str, Any], lang: str) -> tuple[str, str]:
    rubric = document["rubric"]
    return (
        labels.words("rubric", lang, name=rubric["name"], version=rubric["version"], sha256=rubric["sha256"]),
        labels.words("judged", lang, moment=_as_of(document, lang), position=document["position"]),
    )


def html_page(document: dict[str, Any], lang: str) -> str:
    """A self-contained page (no network): the ranking table and an inline SVG bar chart, by rank."""
    zh = lang == "zh"
    title = _title(document, lang)
    units = by_rank(document["units"])
    bar_height, width, label_width = 22, 720, 220
    chart_height = bar_height * max(len(units), 1) + 10
    bars = []
    for i, unit in enumerate(units):
        y = 5 + i * bar_height
        score = unit["score"]
        length = 0 if score is None else (width - label_width - 60) * score / 100
        name = unit.get("name") or unit["unit"]
        bars.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{html.escape(name)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{bar_height - 6}" fill="#b22222"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 15}">{score_text(score)}</text>'
        )
    columns = columns_of(document)
    header = "".join(f"<th>{html.escape(label)}</th>" for label in labels.headers(list(columns), lang))
    rows = []
    for row in ranking_rows(document):
        cells = [row[c] for c in columns]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    rubric_line, judged_line = _meta(document, lang)
    meta = html.escape(f"{rubric_line}; {judged_line}" if not zh else f"{rubric_line}；{judged_line}")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{"zh" if zh else "en"}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:right}td:nth-child(2){text-align:left}"
        "svg text{font-size:13px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{meta}</p>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{chart_height}" role="img">'
        + "".join(bars)
        + "</svg>"
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )


def _as_of(document: dict[str, Any], lang: str = "en") -> str:
    """The moment judged, as people read it: ISO 8601 in the store's zone (a commands.clock.Shown)."""
    moment = document["as_of"]
    return moment.iso() if moment is not None else labels.words("now", lang)


def write_xlsx(path: Path | BinaryIO, document: dict[str, Any], lang: str) -> None:
    """The ranking as a sheet: by rank, units by name; cells keep the exact numbers, shown with
    one decimal (scores) or as percentages (metrics)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "考核" if lang == "zh" else "assessment"
    sheet.append([_title(document, lang)])
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    sheet.append(labels.headers(list(columns_of(document)), lang))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for number, unit in enumerate(by_rank(document["units"]), start=3):
        values = [unit["rank"], unit.get("name") or unit["unit"], unit["score"]]
        values += [unit["metrics"].get(m, {}).get("value") for m in metrics_of(document)]
        sheet.append(values)
        # By coordinates: `sheet[sheet.max_row]` looks at every cell (time quadratic in the units).
        sheet.cell(row=number, column=3).number_format = "0.0"
        for column in range(4, len(values) + 1):
            sheet.cell(row=number, column=column).number_format = "0.0%"
    sheet.append([])
    for line in _meta(document, lang):
        sheet.append([line])
    formulas.protect_sheet(sheet)  # every text cell a string, never a formula
    sheet.column_dimensions["B"].width = 28
    sheet.freeze_panes = "A3"
    workbook.save(path)
