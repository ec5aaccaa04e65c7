"""The access log's own chain: rows deleted, changed or inserted behind the append-only
triggers' back are named by `audit verify` (exit 1), and entries removed with their chain
rows, or an access chain recomputed after a rewrite, by `audit verify --checkpoint`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.app import LedgerService
from infra.store import parse_url
from tests.e2e.conftest import Cli, error_line
from tests.e2e.test_audit_chain_cli import history
from tests.e2e.test_audit_forms_cli import run_sql
from tests.integration.test_service import sql

APPEND_ONLY = {
    "sqlite": [f"DROP TRIGGER {t}_no_{v}" for t in ("access_log", "access_log_residents", "access_chain") for v in ("update", "delete")],
    "postgres": [
        f"ALTER TABLE {t} DISABLE TRIGGER {t}_append_only" for t in ("access_log", "access_log_residents", "access_chain")
    ],
}


@pytest.fixture
def logged(store: Cli, tmp_path: Path) -> Iterator[tuple[Cli, list[str], list[int]]]:
    """A store whose access log holds four entries, sealed after them; the checkpoint's options
    and the entries' ids."""
    history(store)
    store.ok("projections", "run")  # PostgreSQL: queries read the views as they stand
    for _ in range(4):
        store.ok("resident", "list", "HZ-001", actor="clerk07")
    office = tmp_path / "seal.key"
    store.ok("audit", "keygen", "--key-file", str(office))
    checkpoint = tmp_path / "sealed.checkpoint"
    store.ok("audit", "seal", "--key-file", str(office), "--output", str(checkpoint), actor=None)
    ids = [int(row[0]) for row in sql(store.url, "SELECT id FROM access_log ORDER BY id")]
    assert len(ids) == 4
    yield store, ["--checkpoint", str(checkpoint), "--public-key", str(office) + ".pub"], ids


def test_an_untouched_access_log_verifies_and_counts(logged: tuple[Cli, list[str], list[int]]) -> None:
    store, checkpoint, _ids = logged
    assert store.json("audit", "verify", actor=None)["access_entries"] == 4
    store.ok("resident", "list", "HZ-001", actor="clerk07")  # appended after the seal
    assert store.json("audit", "verify", *checkpoint, actor=None)["access_entries"] == 5


def test_a_row_deleted_behind_the_triggers_back_is_named(logged: tuple[Cli, list[str], list[int]], backend: str) -> None:
    store, checkpoint, ids = logged
    run_sql(store.url, *APPEND_ONLY[backend], f"DELETE FROM access_log WHERE id = {ids[1]}")
    for extra in ([], checkpoint):
        error_line(store("audit", "verify", *extra, actor=None), 1, f"the access log does not verify at entry {ids[1]}: deleted")


def test_a_row_deleted_with_its_chain_row_is_named_by_the_next(logged: tuple[Cli, list[str], list[int]], backend: str) -> None:
    store, _checkpoint, ids = logged
    run_sql(
        store.url,
        *APPEND_ONLY[backend],
        f"DELETE FROM access_log_residents WHERE access_id = {ids[1]}",
        f"DELETE FROM access_log WHERE id = {ids[1]}",
        f"DELETE FROM access_chain WHERE id = {ids[1]}",
    )
    error_line(store("audit", "verify", actor=None), 1, f"entry {ids[2]}: does not match its chain entry")


def test_the_newest_rows_deleted_with_their_chain_rows_fail_the_checkpoint(
    logged: tuple[Cli, list[str], list[int]], backend: str
) -> None:
    store, checkpoint, ids = logged
    run_sql(
        store.url,
        *APPEND_ONLY[backend],
        *(f"DELETE FROM {t} WHERE {c} >= {ids[2]}" for t, c in (("access_log_residents", "access_id"), ("access_log", "id"), ("access_chain", "id"))),
    )
    store.ok("audit", "verify", actor=None)  # what is left is a consistent, shorter log…
    error_line(store("audit", "verify", *checkpoint, actor=None), 1, "the access log holds 2 entries, fewer than the 4 sealed")


def test_a_changed_row_is_named_and_a_recomputed_chain_fails_the_checkpoint(
    logged: tuple[Cli, list[str], list[int]], backend: str
) -> None:
    store, checkpoint, ids = logged
    run_sql(store.url, *APPEND_ONLY[backend], f"UPDATE access_log SET actor = 'clerk99' WHERE id = {ids[0]}")
    error_line(store("audit", "verify", actor=None), 1, f"entry {ids[0]}: does not match its chain entry")
    run_sql(store.url, "DELETE FROM access_chain")
    service = LedgerService.open(parse_url(store.url), store.key)
    try:
        assert service.recorder.access_backlog() == 4  # the attacker chains the rewritten log afresh
    finally:
        service.close()
    store.ok("audit", "verify", actor=None)
    error_line(store("audit", "verify", *checkpoint, actor=None), 1,
               "the access log is not an extension of the one sealed at", "its first 4 entries were changed")  # fmt: skip


def test_a_row_inserted_outside_the_chain_is_named(logged: tuple[Cli, list[str], list[int]]) -> None:
    store, checkpoint, ids = logged
    run_sql(
        store.url,
        "INSERT INTO access_log (at, actor, command, detail, residents, records) "
        "SELECT at, 'admin01', command, detail, residents, records FROM access_log WHERE id = ?",
        params=(ids[-1],),
    )
    forged = int(sql(store.url, "SELECT max(id) FROM access_log")[0][0])
    for extra in ([], checkpoint):
        error_line(store("audit", "verify", *extra, actor=None), 1, f"entry {forged}: not in the access chain")
