"""`taizhang audit history COMMUNITY`: every event of a community, in order. Attached to the `audit` group."""

from __future__ import annotations

from typing import Any

import click

from commands import clock, labels, models
from commands.cli.assess import audit
from commands.cli.ledger import parse_as_of
from commands.context import Env, MalformedInput, format_option, pass_env
from commands.history import Bound, history
from commands.output import emit

JSON_FIELDS = ["position", "recorded_at", "version", "actor", "event", "fields", "changes", "hash"]
TABLE_FIELDS = ["position", "recorded_at", "actor", "event", "details", "hash"]
HEADERS: dict[str, tuple[str, str]] = {
    "version": ("version", "版本"),
    "actor": ("actor", "操作人"),
    "event": ("event", "事项"),
    "fields": ("fields", "内容"),
    "changes": ("changes", "更改"),
    "details": ("details", "内容"),
    "hash": ("hash", "哈希"),
}
TABLE_HASH = 16  # hex digits of the hash a table shows; json and csv show all of it


def _header(field: str, lang: str) -> str:
    if field in HEADERS:
        en, zh = HEADERS[field]
        return zh if lang == "zh" else en
    return labels.header(field, lang)


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ",".join(_value(v) for v in value) if value else "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _fields_text(fields: dict[str, Any], lang: str = "en") -> str:
    if lang == "zh":
        return "；".join(
            f"{labels.header(k, lang)}={_value(v)}" for k, v in fields.items() if v is not None and v != []
        )
    return "; ".join(f"{k}={_value(v)}" for k, v in fields.items() if v is not None and v != [])


def _changes_text(changes: dict[str, dict[str, Any]], lang: str = "en") -> str:
    if lang == "zh":
        return "；".join(
            f"{labels.header(k, lang)}：{_value(c['old'])} → {_value(c['new'])}" for k, c in changes.items()
        )
    return "; ".join(f"{k}: {_value(c['old'])} → {_value(c['new'])}" for k, c in changes.items())


def _localised(row: dict[str, Any], lang: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    fields = labels.localise(row["fields"], lang)
    changes = {}
    for name, change in row["changes"].items():
        old = labels.localise({name: change["old"]}, lang)[name]
        new = labels.localise({name: change["new"]}, lang)[name]
        changes[name] = {"old": old, "new": new}
    return fields, changes


@audit.command("history")
@click.argument("community")
@click.option("--as-of", "as_of", metavar="DT", help="Stop at that recorded moment: any recorded time this command printed (a date means the end of that local day).")
@click.option("--at-position", "at_position", type=click.IntRange(0, 2**62), default=None, metavar="N", help="Stop at log position N.")
@format_option()
@pass_env
def audit_history(env: Env, community: str, as_of: str | None, at_position: int | None, fmt: str) -> None:
    """Every event of a community, in order: who recorded, corrected, voided, closed what, and when.

    One row per event: its log position, the recorded time (the database's clock,
    shown in the store's time zone), the actor, what happened, its fields — a correction shows old → new — and
    its chain hash. Names, birth dates and notes are shown only with the key file,
    otherwise as (encrypted). With --as-of or --at-position the history stops there:
    exactly what an auditor would have seen at that moment.

    \b
    Example:
      taizhang audit history HZ-P01
      taizhang --lang zh audit history HZ-P01 --as-of 2026-04-01
      taizhang audit history HZ-P01 --at-position 1200 --format json
    """
    try:
        code = models.clean_code(community)
    except ValueError as e:
        raise models.Malformed("COMMUNITY", str(e)) from None
    if as_of is not None and at_position is not None:
        raise MalformedInput("--as-of and --at-position: give at most one")
    bound = Bound(as_of=parse_as_of(env, as_of) if as_of else None, position=at_position)
    service = env.service()
    rows = history(service, code, bound)
    clock.localise(rows, service.tz)
    from commands.access_log import history_residents

    env.log_access(*history_residents(code, rows))  # names, birth dates and notes: logged before printing
    if service.master is None:
        env.warn(f"no key file at {env.key_path}: names, birth dates and notes are shown as (encrypted)")
    if fmt == "json":
        emit(rows, JSON_FIELDS, fmt)
        return
    if fmt == "csv":
        flat = [{**row, "fields": _fields_text(row["fields"]), "changes": _changes_text(row["changes"])} for row in rows]
        emit(flat, JSON_FIELDS, fmt)
        return
    shown = []
    for row in rows:
        fields, changes = _localised(row, env.lang)
        parts = (_fields_text(fields, env.lang), _changes_text(changes, env.lang))
        details = ("；" if env.lang == "zh" else "; ").join(part for part in parts if part)
        shown.append(
            {
                **row,
                "event": labels.event_label(row["event"], env.lang),
                "details": details,
                "hash": row["hash"][:TABLE_HASH] if row["hash"] else None,
            }
        )
    emit(shown, TABLE_FIELDS, fmt, [_header(f, env.lang) for f in TABLE_FIELDS])
