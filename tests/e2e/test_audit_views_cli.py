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


def test_a_reader_login_recomputes_the_views_and_seals_in_its_own_scratch_schema(
    pg_admin_url: str, tmp_path: Path
) -> None:
    """PostgreSQL with access control: an auditor's login, which may create nothing in the store,
    recomputes the views in its session's temporary schema, seals, and appends to the access chain."""
    import time
    import uuid

    import psycopg

    from tests.conftest import drop_pg_database, make_pg_database
    from tests.e2e.conftest import COMMUNITY, establish_args, record_args

    url = make_pg_database(pg_admin_url)
    login, password = f"tz_viewer_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    owner = Cli(url, tmp_path / "taizhang.key")
    try:
        owner.ok("init", "--admin", "boss")
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD '{password}' IN ROLE taizhang_reader")  # type: ignore[arg-type]
        owner.ok("actor", "add", "aud01", "--role", "auditor", "--scope", "city", "--login", login, actor="boss")
        owner.ok(*establish_args(COMMUNITY), actor="boss")
        owner_login = url.split("://", 1)[1].split(":", 1)[0]
        owner.ok("actor", "add", "clerk01", "--role", "clerk", "--scope", "city", "--login", owner_login, actor="boss")
        owner.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", actor="clerk01")
        owner.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员", actor="clerk01")
        owner.ok(*record_args("HZ-001"), actor="clerk01")
        owner.ok("projections", "run", actor="boss")
        auditor = Cli(f"postgresql://{login}:{password}@{url.split('@', 1)[1]}", owner.key)
        auditor.ok("resident", "list", "HZ-001", actor="aud01")  # logged, and chained, with a reader's rights
        result = auditor.json("audit", "verify", "--views", actor="aud01")
        assert result["access_entries"] == 1 and result["views"]["rows"]["ledger_revisions"] == 1
        office = tmp_path / "seal.key"
        auditor.ok("audit", "keygen", "--key-file", str(office), actor="aud01")
        auditor.ok("audit", "seal", "--key-file", str(office), "--output", str(tmp_path / "cp"), actor="aud01")
        run_sql(url, "UPDATE ledger_month_kind SET minutes = 1")
        error_line(auditor("audit", "verify", "--views", actor="aud01"), 1, "view ledger_month_kind", "minutes is 1 in the view, 45 from the log")
        # The scratch tables go with the auditor's session (the server drops them as the backend exits).
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(300):
                if conn.execute("SELECT count(*) FROM pg_class WHERE relpersistence = 't'").fetchone() == (0,):
                    break
                time.sleep(0.1)
            else:
                pytest.fail("temporary tables outlived the session that made them")
    finally:
        drop_pg_database(pg_admin_url, url)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {login}")  # type: ignore[arg-type]
