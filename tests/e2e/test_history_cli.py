"""`audit history COMMUNITY` through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import (
    COMMUNITY,
    Cli,
    backend_of,
    error_line,
    establish_args,
    record_args,
    sqlite_path,
    store_counts,
)
from tests.integration.test_service import sql

pytestmark = pytest.mark.clock  # recorded times and --as-of

FIELDS = ["position", "recorded_at", "version", "actor", "event", "fields", "changes", "hash"]


@pytest.fixture
def told(run: Cli) -> tuple[Cli, str]:
    """A community with a resident updated, a record corrected (note too), another voided, a period closed and reopened."""
    rid, other = str(uuid.uuid4()), str(uuid.uuid4())
    run.ok("init")
    run.ok(*establish_args(COMMUNITY))
    run.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", "--birth-date", "1948-05-02", "--category", "留守老人")
    run.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明")
    run.ok("resident", "update", "HZ-001", "R1", "--grid", "第2网格", "--category", "hardship")
    run.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    run.ok(*record_args("HZ-001", "--record-id", rid, "--note", "送米送油"))
    run.ok(*record_args("HZ-001", "--record-id", other))
    run.ok("service", "correct", "HZ-001", rid, "--minutes", "90", "--resident", "R1", "--resident", "R2",
           "--note", "送米送油并检查用电", "--reason", "时长登记有误", actor="clerk02")  # fmt: skip
    run.ok("service", "void", "HZ-001", other, "--reason", "重复登记")
    run.ok("ledger", "close", "--unit", "community:HZ-001", "--period", "2026-03", "--reason", "结账", actor="sup01")
    run.ok("ledger", "reopen", "--unit", "community:HZ-001", "--period", "2026-03", "--reason", "补录", actor="sup01")
    run.ok("service", "correct", "HZ-001", rid, "--at", "2026-04-01 08:00", "--reason", "日期有误")
    return run, rid


def test_history_lists_every_event_in_order_with_who_and_when(told: tuple[Cli, str]) -> None:
    cli, rid = told
    rows = cli.json("audit", "history", "HZ-001")
    assert [r["event"] for r in rows] == [
        "established", "resident_enrolled", "resident_enrolled", "resident_updated", "provider_registered",
        "service_recorded", "service_recorded", "service_corrected", "service_voided", "period_closed",
        "period_reopened", "service_corrected",
    ]  # fmt: skip
    assert [r["version"] for r in rows] == list(range(1, 13))
    positions = [r["position"] for r in rows]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    times = [r["recorded_at"] for r in rows]
    assert times == sorted(times) and all(t.endswith("+08:00") for t in times)  # the store's zone, one offset
    assert [r["actor"] for r in rows][7] == "clerk02" and rows[9]["actor"] == "sup01"
    assert all(list(r) == FIELDS for r in rows)
    # Each event's chain hash, as stored beside it and recomputed by audit verify.
    stored = dict(sql(cli.url, "SELECT position, hash FROM taizhang_chain"))
    assert [r["hash"] for r in rows] == [bytes(stored[p]).hex() for p in positions]
    enrolled = rows[1]["fields"]
    assert enrolled["name"] == "张秀英" and enrolled["birth_date"] == "1948-05-02"


def test_corrections_show_old_and_new_values(told: tuple[Cli, str]) -> None:
    cli, rid = told
    rows = cli.json("audit", "history", "HZ-001")
    first, second = (r for r in rows if r["event"] == "service_corrected")
    assert first["fields"] == {"record_id": rid, "reason": "时长登记有误"}
    assert first["changes"] == {
        "minutes": {"old": 45, "new": 90},
        "residents": {"old": ["R1"], "new": ["R1", "R2"]},
        "note": {"old": "送米送油", "new": "送米送油并检查用电"},
    }
    # The second correction's "old" is the first correction's "new": revisions are walked in order.
    assert second["changes"] == {"occurred_at": {"old": "2026-03-05T09:30:00+08:00", "new": "2026-04-01T08:00:00+08:00"}}
    updated = next(r for r in rows if r["event"] == "resident_updated")
    assert updated["fields"] == {"code": "R1"}
    assert updated["changes"] == {
        "categories": {"old": ["left_behind_elderly"], "new": ["hardship"]},
        "grid": {"old": None, "new": "第2网格"},
    }
    table = cli("audit", "history", "HZ-001").stdout
    assert "minutes: 45 → 90" in table and "note: 送米送油 → 送米送油并检查用电" in table


def test_without_the_key_file_personal_data_stays_encrypted(told: tuple[Cli, str], tmp_path: Path) -> None:
    cli, _ = told
    for fmt in ("json", "csv", "table"):
        result = cli("audit", "history", "HZ-001", "--format", fmt, key=tmp_path / "absent.key")
        assert result.exit_code == 0, result.stderr
        assert "(encrypted)" in result.stdout
        for secret in ("张秀英", "1948-05-02", "送米送油", '"ct"', "nonce", "res:HZ-001", "note:" + told[1]):
            assert secret not in result.stdout, (fmt, secret)
        assert "no key file" in result.stderr


def test_as_of_and_at_position_give_exactly_a_prefix(told: tuple[Cli, str]) -> None:
    cli, _ = told
    rows = cli.json("audit", "history", "HZ-001")
    for i, row in enumerate(rows):
        assert cli.json("audit", "history", "HZ-001", "--at-position", str(row["position"])) == rows[: i + 1]
        as_of = cli.json("audit", "history", "HZ-001", "--as-of", row["recorded_at"])
        assert as_of == [r for r in rows if r["recorded_at"] <= row["recorded_at"]]
    assert cli.json("audit", "history", "HZ-001", "--at-position", "0") == []
    assert cli.json("audit", "history", "HZ-001", "--as-of", "2020-01-01") == []
    assert cli.json("audit", "history", "HZ-001", "--as-of", rows[-1]["recorded_at"][:10]) == rows  # a date: its end


def test_csv_and_table_and_zh(told: tuple[Cli, str]) -> None:
    cli, _ = told
    rows = list(csv.reader(io.StringIO(cli.ok("audit", "history", "HZ-001", "--format", "csv").stdout)))
    assert rows[0] == FIELDS
    assert rows[8][4] == "service_corrected" and "minutes: 45 → 90" in rows[8][6]
    zh = cli("audit", "history", "HZ-001", lang="zh").stdout
    for label in ("位置", "操作人", "事项", "服务更正", "服务作废", "结账", "反结账", "居民入册", "生活照料"):
        assert label in zh, label


def test_history_writes_nothing_and_refuses_bad_input(told: tuple[Cli, str]) -> None:
    cli, _ = told
    before = store_counts(cli.url)
    cli.ok("audit", "history", "HZ-001")
    error_line(cli("audit", "history", "NOPE"), 1, "NOPE")
    error_line(cli("audit", "history", "HZ 001"), 2, "COMMUNITY")
    error_line(cli("audit", "history", "HZ-001", "--as-of", "2026-01-01", "--at-position", "3"), 2, "--as-of", "--at-position")
    error_line(cli("audit", "history", "HZ-001", "--as-of", "2999-01-01"), 2, "--as-of", "future")
    error_line(cli("audit", "history", "HZ-001", "--as-of", "yesterday"), 2, "--as-of")
    error_line(cli("audit", "history", "HZ-001", "--at-position", "-1"), 2, "--at-position")
    assert store_counts(cli.url) == before


def test_history_of_a_missing_store_is_refused(run: Cli) -> None:
    error_line(run("audit", "history", "HZ-001"), 1, "no store", "taizhang init")


def test_json_is_one_document(told: tuple[Cli, str]) -> None:
    cli, _ = told
    document = orjson.loads(cli.ok("audit", "history", "HZ-001", "--format", "json").stdout)
    assert isinstance(document, list) and len(document) == 12


def test_a_destroyed_data_key_shows_as_erased(told: tuple[Cli, str]) -> None:
    """Erasure destroys a data key, not history: the envelope stays, the history says (erased)."""
    cli, rid = told
    sql = "DELETE FROM data_keys WHERE key_id = 'note:" + rid + "'"
    if backend_of(cli.url) == "sqlite":
        conn = sqlite3.connect(sqlite_path(cli.url))
        with conn:
            conn.execute(sql)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(cli.url) as pg:
            pg.execute(sql)
    rows = cli.json("audit", "history", "HZ-001")
    recorded = next(r for r in rows if r["event"] == "service_recorded" and r["fields"]["record_id"] == rid)
    assert recorded["fields"]["note"] == "(erased)"
    corrected = next(r for r in rows if r["event"] == "service_corrected")
    assert corrected["changes"]["note"] == {"old": "(erased)", "new": "(erased)"}
    assert rows[1]["fields"]["name"] == "张秀英"  # other keys are untouched
