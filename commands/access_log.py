"""The access log: who printed whose personal data, when (PIPL: children's data is sensitive).

Every command that prints names, birth dates or notes calls `Env.log_access` before it
prints. The entry (actor, command with its options, the residents whose data is shown,
the number of notes shown) is appended in its own transaction, timed by the database
clock; the tables refuse UPDATE and DELETE (and on PostgreSQL TRUNCATE).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from commands.context import Env

ACCESS_FIELDS = ["id", "at", "actor", "command", "detail", "residents", "records"]
ACCESS_LABELS = {  # field -> (English, Chinese) headers of `audit access`
    "id": ("id", "序号"),
    "at": ("at", "时间"),
    "actor": ("actor", "操作人"),
    "command": ("command", "命令"),
    "detail": ("options", "参数"),
    "residents": ("residents", "涉及对象"),
    "records": ("notes shown", "显示备注"),
}


def _option_text(flag: str, value: Any) -> str | None:
    if value is None or value == () or value is False:
        return None
    if value is True:
        return flag
    if isinstance(value, tuple | list):
        return " ".join(f"{flag}={v}" for v in value)
    if isinstance(value, Path):
        value = value.name  # where the export went, without a machine's folders
    return f"{flag}={value}"


def command_of(ctx: click.Context) -> tuple[str, str]:
    """("resident list", "community=HZ-001 --format=json") for the running command."""
    path = ctx.command_path.split(" ", 1)
    command = path[1] if len(path) > 1 else path[0]
    parts: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if isinstance(param, click.Argument):
            if value is not None:
                parts.append(f"{param.name}={value}")
            continue
        flags = [opt for opt in param.opts if opt.startswith("--")] or list(param.opts)
        text = _option_text(flags[0], value)
        if text:
            parts.append(text)
    return command, " ".join(parts)


def log_access(env: Env, residents: Iterable[tuple[str, str]], records: int = 0) -> None:
    ctx = click.get_current_context()
    command, detail = command_of(ctx)
    actor = env.actor.strip() if env.actor and env.actor.strip() else None
    env.service().log_access(actor, command, detail, residents, records)


def entry_residents(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(community, code) of every resident listed on ledger rows."""
    return sorted({(row["community"], code) for row in rows for code in row.get("residents") or ()})


def history_residents(community: str, rows: Iterable[dict[str, Any]]) -> tuple[list[tuple[str, str]], int]:
    """(community, code) of every resident an `audit history` output shows, and how many notes it shows."""
    found: set[str] = set()
    notes = 0
    for row in rows:
        fields, changes = row.get("fields") or {}, row.get("changes") or {}
        if str(row.get("event", "")).startswith("resident_") and isinstance(fields.get("code"), str):
            found.add(fields["code"])
        if isinstance(fields.get("resident"), str):
            found.add(fields["resident"])
        for value in (fields.get("residents"), *((changes.get("residents") or {}).values())):
            if isinstance(value, list):
                found.update(code for code in value if isinstance(code, str))
        if fields.get("note") is not None or "note" in changes:
            notes += 1
    return sorted((community, code) for code in found), notes
