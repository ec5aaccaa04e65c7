"""PostgreSQL: the database logins of the active actors, bound to the views' row policies (both doors)."""

from __future__ import annotations

from typing import Any

from commands.access import load_actors


def setup_reads(service: Any, view_tables: list[str], without: str | None = None) -> bool:
    """PostgreSQL: bind the active actors' logins (all but `without`), and (again: idempotent) the
    views' grants and row policies — so a store set up before them gets them too. Only the owner's
    login can: False otherwise."""
    actors = load_actors(service)
    logins = [
        (a.name, a.login, a.role, str(a.scope))
        for a in (actors.all() if actors else [])
        if a.login and not a.revoked and a.name != without
    ]
    return bool(service.recorder.setup_reads(view_tables, logins))
