"""A funding line under audit: `audit history --line` (old → new) and `audit prove --line` (on both stores),
with the line's events saved through the application (tests/funds_events.py)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra import chain
from tests.e2e.conftest import COMMUNITY, COMMUNITY_2, Cli, error_line, establish_args, record_args, sqlite_path
from tests.funds_events import funds
from tests.integration.test_service import sql

pytestmark = pytest.mark.clock  # recorded times

LINE = "民政局/贺民发〔2026〕12号"


def told(cli: Cli) -> dict[str, Any]:
    """A line granted to 八步区, passed to 贺街镇 and to HZ-001, spent twice there (one reversed), partly returned."""
    cli.ok("init")
    cli.ok(*establish_args(COMMUNITY))
    cli.ok(*establish_args(COMMUNITY_2))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    record = str(cli.json(*record_args("HZ-001"))["record_id"])
    with funds(cli.url, cli.key) as f:
        line = f.allocate("民政局", "贺民发〔2026〕12号", 5_000_000, "county:八步区", "2026-01-10")
        f.transfer(line, "county:八步区", "township:八步区/贺街镇", 3_000_000, "2026-01-15")
        f.transfer(line, "township:八步区/贺街镇", "community:HZ-001", 1_000_000, "2026-01-20")
        spend = f.spend(line, "HZ-001", 120_000, "2026-03-05", "记-001", payee="王大妈", records=(record,))
        wrong = f.spend(line, "HZ-001", 50_000, "2026-03-06", "记-002", payee="刘师傅")
        f.reverse(line, wrong, "2026-03-07", "重复支付")
        f.give_back(line, "county:八步区", 500_000, "2026-06-30")
    return {"line": line, "spend": spend, "wrong": wrong, "record": record}


@pytest.fixture
def story(store_fresh: Cli) -> tuple[Cli, dict[str, Any]]:
    return store_fresh, told(store_fresh)


@pytest.fixture
def store_fresh(run: Cli) -> Cli:
    return run


def test_line_history_shows_old_and_new_balances_and_the_reversal(story: tuple[Cli, dict[str, Any]]) -> None:
    cli, ids = story
    rows = cli.json("audit", "history", "--line", LINE, actor="aud01")
    assert [r["event"] for r in rows] == [
        "funds_allocated", "funds_transferred", "funds_transferred", "funds_spent", "funds_spent",
        "funds_reversed", "funds_returned",
    ]  # fmt: skip
    assert [r["version"] for r in rows] == list(range(1, 8))
    allocated, to_town, to_comm, spent, wrong, reversed_, returned = rows
    assert allocated["changes"] == {"balance:county:八步区": {"old": 0, "new": 5_000_000}}
    assert allocated["fields"]["department"] == "民政局" and allocated["fields"]["amount"] == 5_000_000
    assert to_town["changes"] == {
        "balance:county:八步区": {"old": 5_000_000, "new": 2_000_000},
        "balance:township:八步区/贺街镇": {"old": 0, "new": 3_000_000},
    }
    assert to_comm["changes"]["balance:community:HZ-001"] == {"old": 0, "new": 1_000_000}
    assert spent["changes"] == {"balance:community:HZ-001": {"old": 1_000_000, "new": 880_000}}
    assert spent["fields"]["payee"] == "王大妈" and spent["fields"]["records"] == [ids["record"]]
    assert spent["fields"]["voucher"] == "记-001" and spent["actor"] == "clerk01"
    assert reversed_["changes"] == {
        "status": {"old": "active", "new": "reversed"},
        "balance:community:HZ-001": {"old": 830_000, "new": 880_000},
    }
    assert reversed_["fields"]["reason"] == "重复支付" and reversed_["fields"]["voucher"] == "记-002"
    assert returned["changes"] == {"balance:county:八步区": {"old": 2_000_000, "new": 1_500_000}}
    stored = dict(sql(cli.url, "SELECT position, hash FROM taizhang_chain"))
    assert [r["hash"] for r in rows] == [bytes(stored[r["position"]]).hex() for r in rows]
    # The same line by its id; a prefix as of a position.
    assert cli.json("audit", "history", "--line", str(ids["line"]), actor="aud01") == rows
    cut = cli.json("audit", "history", "--line", LINE, "--at-position", str(spent["position"]), actor="aud01")
    assert cut == rows[:4]


def test_line_history_in_a_unit_and_in_chinese(story: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ids = story
    rows = cli.json("audit", "history", "--line", LINE, "--unit", "community:HZ-001", actor="aud01")
    assert [r["event"] for r in rows] == ["funds_transferred", "funds_spent", "funds_spent", "funds_reversed"]
    assert rows == cli.json("audit", "history", "HZ-001", "--line", LINE, actor="aud01")
    town = cli.json("audit", "history", "--line", LINE, "--unit", "township:八步区/贺街镇", actor="aud01")
    assert len(town) == 5  # the county's own allocation and return are outside the township
    assert cli.json("audit", "history", "--line", LINE, "--unit", "community:QT-2", actor="aud01") == []
    text = cli.ok("audit", "history", "--line", LINE, actor="aud01", lang="zh").stdout
    assert "资金下达" in text and "红字冲销" in text and "community:HZ-001 结余：10,000.00 → 8,800.00" in text
    assert "状态：有效 → 已冲销" in text and "收款人=王大妈" in text
    english = cli.ok("audit", "history", "--line", LINE, actor="aud01").stdout
    assert "balance of county:八步区: 0.00 → 50,000.00" in english


def test_payees_are_logged_when_shown_and_withheld_without_the_key(
    story: tuple[Cli, dict[str, Any]], tmp_path: Path
) -> None:
    cli, ids = story
    cli.ok("audit", "history", "--line", LINE, actor="aud01")
    log = cli.json("audit", "access", actor="aud01")
    last = log[-1]
    assert last["command"] == "audit history" and "--line=" in last["detail"]
    assert last["residents"] == 2  # the two payees shown
    for spend in (ids["spend"], ids["wrong"]):
        found = cli.json("audit", "access", "--resident", f"HZ-001/payee:{spend}", actor="aud01")
        assert [e["id"] for e in found] == [last["id"]]
    nokey = tmp_path / "absent.key"
    result = cli("audit", "history", "--line", LINE, "--format", "json", actor="aud01", key=nokey)
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert {r["fields"]["payee"] for r in rows if r["event"] == "funds_spent"} == {"(encrypted)"}
    assert "payees are shown as (encrypted)" in result.stderr
    # Nothing opened, nothing logged.
    after = cli.json("audit", "access", "--resident", f"HZ-001/payee:{ids['spend']}", actor="aud01")
    assert [e["id"] for e in after] == [last["id"]]


def test_bad_line_options(story: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ids = story
    error_line(cli("audit", "history", "--line", "民政局"), 2, "--line", "DEPARTMENT/DOCUMENT")
    error_line(cli("audit", "history", "--line", "民政局/无此文号"), 1, "no funding line 民政局/无此文号")
    error_line(cli("audit", "history"), 2, "COMMUNITY")
    error_line(cli("audit", "history", "HZ-001", "--unit", "county:八步区"), 2, "--unit")
    error_line(cli("audit", "history", "--line", LINE, "--unit", "region:x"), 2, "--unit")


# ---- proofs -----------------------------------------------------------------------------------
@pytest.fixture
def office(tmp_path: Path) -> Path:
    path = tmp_path / "office" / "seal.key"
    path.parent.mkdir()
    return path


def seal(cli: Cli, office: Path, tmp_path: Path) -> Path:
    cli.ok("audit", "keygen", "--key-file", str(office))
    checkpoint = tmp_path / "sealed.checkpoint"
    cli.ok("audit", "seal", "--key-file", str(office), "--output", str(checkpoint), actor=None)
    return checkpoint


def test_prove_a_line_and_check_the_bundle_offline(
    story: tuple[Cli, dict[str, Any]], office: Path, tmp_path: Path
) -> None:
    cli, ids = story
    checkpoint = seal(cli, office, tmp_path)
    with funds(cli.url, cli.key) as f:  # after the seal: not in the bundle
        f.give_back(ids["line"], "community:HZ-001", 10_000, "2026-07-01")
    bundle = tmp_path / "line.bundle"
    result = cli.ok(
        "audit", "prove", "--line", LINE, "--checkpoint", str(checkpoint), "--output", str(bundle), actor=None
    )
    assert "7 events of funding line 民政局/贺民发〔2026〕12号" in result.stderr
    nowhere = f"sqlite:///{tmp_path / 'nowhere' / 'none.db'}"
    pub = str(office) + ".pub"
    checked = cli.json("audit", "check", str(bundle), "--public-key", pub, db=nowhere, actor=None)
    assert checked["record_id"] == chain.line_key(ids["line"])
    assert [e["event"] for e in checked["events"]] == [
        "Allocated", "Transferred", "Transferred", "Spent", "Spent", "Reversed", "Returned",
    ]  # fmt: skip
    text = cli.ok("audit", "check", str(bundle), "--public-key", pub, db=nowhere).stdout
    assert text.startswith(f"verified: record line:{ids['line']} has exactly these 7 event(s)")
    # A bundle that leaves out an event (the reversal, say) does not verify: the sealed count says 7.
    doc = orjson.loads(bundle.read_bytes())
    doc["events"] = [e for e in doc["events"] if not e["topic"].endswith("Reversed")]
    short = tmp_path / "short.bundle"
    short.write_bytes(_canonical(doc))
    error_line(
        cli("audit", "check", str(short), "--public-key", pub, db=nowhere), 1, "does not verify", "holds 7 events"
    )


def _canonical(doc: Any) -> bytes:
    from infra.checkpoint import document

    return document(doc)


def _tamper(cli: Cli, tmp_path: Path, backend: str, old: bytes, new: bytes) -> str:
    """Change a line event's stored bytes (a copy of the SQLite file; the PostgreSQL store itself)."""
    if backend == "sqlite":
        copy = tmp_path / "copy.db"
        shutil.copy(sqlite_path(cli.url), copy)
        conn = sqlite3.connect(copy)
        rows = conn.execute(
            "SELECT rowid, state FROM stored_events WHERE topic LIKE 'taizhang:FundingLine.Spent'"
        ).fetchall()
        rowid, state = next((r, bytes(s)) for r, s in rows if old in bytes(s))
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state.replace(old, new), rowid))
        conn.commit()
        conn.close()
        return f"sqlite:///{copy}"
    rows = sql(cli.url, "SELECT notification_id, state FROM taizhang_events WHERE topic = 'taizhang:FundingLine.Spent'")
    position, state = next((p, bytes(s)) for p, s in rows if old in bytes(s))
    sql(
        cli.url,
        "UPDATE taizhang_events SET state = ? WHERE notification_id = ? RETURNING 1",
        (state.replace(old, new), position),
    )
    return cli.url


def test_a_tampered_line_event_is_caught_by_the_proof(
    story: tuple[Cli, dict[str, Any]], office: Path, tmp_path: Path, backend: str
) -> None:
    cli, _ids = story
    checkpoint = seal(cli, office, tmp_path)
    url = _tamper(cli, tmp_path, backend, b'"amount":120000', b'"amount":12000')
    bundle = tmp_path / "line.bundle"
    error_line(
        cli("audit", "prove", "--line", LINE, "--checkpoint", str(checkpoint), "--output", str(bundle), db=url),
        1,
        "event changed",
    )
    assert not bundle.exists()
    # Even with the chain recomputed after the change, the sealed root does not match.
    if backend == "sqlite":
        _rechain(url)
        error_line(
            cli("audit", "prove", "--line", LINE, "--checkpoint", str(checkpoint), "--output", str(bundle), db=url),
            1,
            "not the ones in the checkpoint",
        )


def _rechain(url: str) -> None:
    """What someone who can write the file does next: recompute every chain entry from the stored rows."""
    conn = sqlite3.connect(sqlite_path(url))
    rows = conn.execute(
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
    ).fetchall()
    commits = conn.execute(
        "SELECT first_position, last_position, recorded_at FROM taizhang_commits ORDER BY first_position"
    ).fetchall()
    prepared = [(p, bytes.fromhex(o), v, t, bytes(s), None) for p, o, v, t, s in rows]
    for position, hash_ in chain.relink(chain.GENESIS, prepared, commits):
        conn.execute("UPDATE taizhang_chain SET hash = ? WHERE position = ?", (hash_, position))
    conn.commit()
    conn.close()


def test_a_line_written_through_the_funds_commands_reads_back_with_its_payee(run: Cli) -> None:
    """The write side (funds allocate|transfer|spend) and this history agree on where a payee is sealed."""
    run.ok("init")
    run.ok(*establish_args(COMMUNITY))
    line = ("--department", "民政局", "--document", "贺民发〔2026〕12号")
    run.ok("funds", "allocate", *line, "--purpose", "幸福院运营补助", "--amount", "1.2万", "--unit", "county:八步区",
           "--on", "2026-01-15", actor="sup01")  # fmt: skip
    run.ok("funds", "transfer", *line, "--from", "county:八步区", "--to", "community:HZ-001", "--amount", "6,000.00",
           "--on", "2026-02-01", actor="sup01")  # fmt: skip
    run.ok("funds", "spend", "HZ-001", *line, "--amount", "350", "--voucher", "记-2026-031", "--purpose", "送餐服务",
           "--payee", "张秀英", "--on", "2026-03-05", actor="clerk01")  # fmt: skip
    rows = run.json("audit", "history", "--line", LINE, actor="aud01")
    spent = rows[-1]
    assert spent["event"] == "funds_spent" and spent["fields"]["payee"] == "张秀英"
    assert spent["changes"] == {"balance:community:HZ-001": {"old": 600_000, "new": 565_000}}
