"""`audit verify --views`: the views recomputed from the log in a scratch copy and compared
table by table; a view row changed, deleted or added in the store is named (exit 1). A
sealed checkpoint records the views' digest at its position; checkpoints sealed before
that field (or the access-log fields) existed still verify.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from infra.checkpoint import OPTIONAL_FIELDS, document, load_signing_key, sign_checkpoint
from tests.e2e.conftest import Cli, error_line, store_counts
from tests.e2e.test_audit_chain_cli import history
from tests.e2e.test_audit_forms_cli import last_position, run_sql


@pytest.fixture
def viewed(store: Cli, tmp_path: Path) -> Iterator[tuple[Cli, Path]]:
    """A store with a history, its views current; and a signing key."""
    history(store)
    store.ok("projections", "run")
    office = tmp_path / "seal.key"
    store.ok("audit", "keygen", "--key-file", str(office))
    yield store, office


def test_untouched_views_equal_the_views_recomputed_from_the_log(viewed: tuple[Cli, Path], backend: str) -> None:
    store, _office = viewed
    counts = store_counts(store.url)
    result = store.json("audit", "verify", "--views", actor=None)
    assert result["views"]["position"] == last_position(store.url, backend)
    assert result["views"]["rows"]["ledger_month_kind"] == 1 and result["views"]["rows"]["ledger_revisions"] == 3
    assert store_counts(store.url) == counts  # recomputing writes nothing to the store
    text = store.ok("audit", "verify", "--views", actor=None)
    assert text.stderr == ""  # no progress bar when not on a terminal
    assert f"digest {result['views']['digest']}" in text.stdout


def test_a_changed_view_row_is_named(viewed: tuple[Cli, Path]) -> None:
    store, _office = viewed
    store.ok("audit", "verify", actor=None)
    run_sql(store.url, "UPDATE ledger_month_kind SET records = records + 100")
    store.ok("audit", "verify", actor=None)  # the log is intact: only the views lie
    error_line(store("audit", "verify", "--views", actor=None), 1,
               "view ledger_month_kind at position", "row (community=HZ-001, month=2026-03, kind=life_care): "
               "records is 102 in the view, 2 from the log")  # fmt: skip


def test_a_deleted_or_added_view_row_is_named(viewed: tuple[Cli, Path]) -> None:
    store, _office = viewed
    run_sql(store.url, "DELETE FROM ledger_month_resident")
    error_line(store("audit", "verify", "--views", actor=None), 1,
               "view ledger_month_resident", "(community=HZ-001, month=2026-03, resident=R1) recomputed from the log is missing")  # fmt: skip
    run_sql(
        store.url,
        "INSERT INTO ledger_month_resident (community, month, resident, records) VALUES ('HZ-001', '2026-03', 'R1', 2)",
        "INSERT INTO ledger_month_kind (community, month, kind, records, minutes) VALUES ('HZ-001', '2026-04', 'counseling', 5, 300)",
    )
    error_line(store("audit", "verify", "--views", actor=None), 1,
               "view ledger_month_kind", "(community=HZ-001, month=2026-04, kind=counseling) is in the view but not")  # fmt: skip


def test_a_checkpoint_records_the_views_digest_and_old_checkpoints_still_verify(viewed: tuple[Cli, Path], tmp_path: Path) -> None:
    store, office = viewed
    checkpoint = tmp_path / "sealed.checkpoint"
    store.ok("audit", "seal", "--key-file", str(office), "--output", str(checkpoint), actor=None)
    sealed = orjson.loads(checkpoint.read_bytes())
    pub = str(office) + ".pub"
    views = store.json("audit", "verify", "--views", actor=None)["views"]
    assert sealed["views"]["digest"] == views["digest"]  # the live views stand at the sealed position
    store.ok("service", "void", "HZ-001", _a_record(store), "--reason", "重复登记")
    store.ok("projections", "run")
    result = store.json("audit", "verify", "--checkpoint", str(checkpoint), "--public-key", pub, "--views", actor=None)
    assert result["sealed_views"].startswith("match the digest sealed")
    assert result["views"]["digest"] != sealed["views"]["digest"]  # the views moved on with the log
    # A checkpoint as sealed before the optional fields existed: re-signed without them.
    old = {k: v for k, v in sealed.items() if k not in OPTIONAL_FIELDS | {"signature", "format", "key_id"}}
    old_file = tmp_path / "old.checkpoint"
    old_file.write_bytes(document(sign_checkpoint(old, load_signing_key(office))))
    result = store.json("audit", "verify", "--checkpoint", str(old_file), "--public-key", pub, "--views", actor=None)
    assert "sealed_views" not in result and result["appended_since"] == 1


def _a_record(store: Cli) -> str:
    return str(store.json("ledger", "entries")[0]["record_id"])


def test_views_option_is_not_for_one_community(viewed: tuple[Cli, Path]) -> None:
    store, _office = viewed
    error_line(store("audit", "verify", "--views", "--community", "HZ-001", actor=None), 2, "--community")


def test_views_are_compared_where_they_stand_and_dropped_ones_are_named(store: Cli) -> None:
    history(store)
    # Nothing projected yet (init made the empty views): they equal the log recomputed to position 0.
    assert store.json("audit", "verify", "--views", actor=None)["views"]["position"] == 0
    store.ok("projections", "run")
    run_sql(store.url, "DROP TABLE ledger_month_quality")
    error_line(store("audit", "verify", "--views", actor=None), 1, "view ledger_month_quality is missing from the store")
    run_sql(store.url, "DROP TABLE ledger_tracking")
    error_line(store("audit", "verify", "--views", actor=None), 1, "no views to check yet")
