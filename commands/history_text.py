"""A community's history as people read it (both doors): fields, and old → new for a correction."""

from __future__ import annotations

from typing import Any

from commands import labels
from commands.money import yuan

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
BALANCE = "balance:"  # a change key: a funding line's balance of the unit after the colon
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


def _change_label(key: str, lang: str) -> str:
    """`balance:UNIT` (a funding line's balance of a unit) or a field's name, as a row shows it."""
    if key.startswith(BALANCE):
        unit = key[len(BALANCE) :]
        return f"{unit} {labels.header('balance', lang)}" if lang == "zh" else f"balance of {unit}"
    return labels.header(key, lang) if lang == "zh" else key


def _changes_text(changes: dict[str, dict[str, Any]], lang: str = "en") -> str:
    sep, colon = ("；", "：") if lang == "zh" else ("; ", ": ")
    return sep.join(
        f"{_change_label(k, lang)}{colon}{_value(c['old'])} → {_value(c['new'])}" for k, c in changes.items()
    )


def _money(row: dict[str, Any]) -> dict[str, Any]:
    """A funding line's amounts (fen) as yuan text, for the table."""
    fields = row["fields"]
    if isinstance(fields.get("amount"), int) and str(row.get("event", "")).startswith("funds_"):
        fields = {**fields, "amount": yuan(fields["amount"])}
    changes = {
        k: ({"old": yuan(c["old"]), "new": yuan(c["new"])} if k.startswith(BALANCE) else c)
        for k, c in row["changes"].items()
    }
    return {**row, "fields": fields, "changes": changes}


def _localised(row: dict[str, Any], lang: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    fields = labels.localise(row["fields"], lang)
    changes = {}
    for name, change in row["changes"].items():
        old = labels.localise({name: change["old"]}, lang)[name]
        new = labels.localise({name: change["new"]}, lang)[name]
        changes[name] = {"old": old, "new": new}
    return fields, changes


def shown_row(row: dict[str, Any], lang: str) -> dict[str, Any]:
    """One history row as the table of `audit history` shows it (event named, details, short hash)."""
    fields, changes = _localised(_money(row), lang)
    parts = (_fields_text(fields, lang), _changes_text(changes, lang))
    details = ("；" if lang == "zh" else "; ").join(part for part in parts if part)
    return {
        **row,
        "event": labels.event_label(row["event"], lang),
        "details": details,
        "hash": row["hash"][:TABLE_HASH] if row["hash"] else None,
    }
