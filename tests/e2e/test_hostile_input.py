"""Regression tests: each crash or hazard the fuzz suites (tests/fuzz) found, on both stores.

Each case is malformed input: exit 2, one line on stderr naming the option and the
value (escaped, bounded), nothing written (the store's logical state, events,
snapshots, keys and side tables, compared before and after).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import AT, Ledger, error_line
from tests.fuzz.state import StateReader

RECORD = ["service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1", "--minutes", "45"]

CASES = [
    # (what the fuzzer found on main) -> the argv that provoked it, and words the error line names
    pytest.param(["projections", "run", "--follow", "--interval", "-1"], ["--interval", "-1"], id="interval-negative-crashed-sleep"),
    pytest.param(["projections", "run", "--follow", "--interval", "nan"], ["--interval", "nan"], id="interval-nan-crashed-sleep"),
    pytest.param(["ledger", "entries", "--wait", "nan"], ["--wait", "nan"], id="wait-nan-waited-for-ever"),
    pytest.param(["ledger", "entries", "--wait", "1e9"], ["--wait", "1000000000"], id="wait-huge"),
    pytest.param(["ledger", "entries", "--as-of", "0001-01-01T00:00+14:00"], ["--as-of", "0001"], id="as-of-overflowed"),
    pytest.param(["ledger", "entries", "--as-of", "9999-12-31"], ["--as-of", "9999"], id="as-of-end-of-time-overflowed"),
    pytest.param([*RECORD, "--at", "0001-01-01 00:00+14:00"], ["occurred_at", "0001"], id="record-at-overflowed"),
    pytest.param(["resident", "enroll", "HZ-001", "R9", "--name", "x", "--birth-date", "1899-12-31"], ["birth_date", "1899"], id="birth-date-before-1900"),
    pytest.param(["resident", "list", "HZ-001\udcff"], ["COMMUNITY", "\\udcff"], id="undecodable-text-crashed-the-query"),
    pytest.param(["ledger", "entries", "--community", "HZ\x00-001"], ["--community", "NUL"], id="nul-in-a-filter"),
    pytest.param(["ledger", "entries", "--output", "a\x00b.csv"], ["--output", "NUL"], id="nul-in-output-crashed-stat"),
    pytest.param(["ledger", "entries", "--output", "\ud800.csv"], ["--output", "file name"], id="unencodable-output-name-crashed-stat"),
    pytest.param(["import", "services", "a\x00.csv"], ["FILE", "NUL"], id="nul-in-import-file"),
    pytest.param(["assess", "run", "--period", "2026", "--level", "county", "--rubric", "\x00"], ["--rubric", "NUL"], id="nul-in-rubric"),
    pytest.param(["assess", "run", "--period", "2026", "--level", "county", "--rubric", "/dev/zero"], ["--rubric", "not a regular file"], id="rubric-device-read-for-ever"),
    pytest.param(["ledger", "entries", "--format", "csv", "--output", "A" * 300 + ".csv"], ["--output", "too long"], id="output-name-too-long-crashed"),
    pytest.param(["assess", "run", "--period", "2026", "--level", "county", "--format", "json", "--output", "B" * 300], ["--output", "too long"], id="assess-output-name-too-long-crashed"),
    pytest.param(["--lang", "A" * 100_000, "community", "list"], ["--lang", "(100002 characters)", "en"], id="huge-value-echoed-in-full"),
    pytest.param(["ledger", "entries", "--county", "\x1b[2J\x1b[31mred"], [], id="terminal-escapes-echoed-raw"),
]


@pytest.mark.parametrize("args, needles", CASES)
def test_hostile_arguments_are_malformed_and_write_nothing(ledger: Ledger, args: list[str], needles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    state = StateReader(ledger.url, ledger.cli.key)
    try:
        before = state.read()
        result = ledger.cli(*args)
        code = 1 if args[-1] == "\x1b[2J\x1b[31mred" else 2  # an unknown county is refused by the store
        line = error_line(result, code, *needles)
        assert len(line) < 1000 and line.isprintable(), line
        assert before.differences(state.read()) == []
    finally:
        state.close()


@pytest.mark.parametrize(
    "actor, needles",
    [
        pytest.param("\udcff\udcfe", ["--actor"], id="undecodable-actor-crashed-the-save"),
        pytest.param("\x1b[31mclerk", ["--actor", "control characters"], id="escape-codes-in-an-actor-were-stored"),
        pytest.param("c" * 65, ["--actor", "64"], id="long-actor"),
    ],
)
def test_an_actor_that_is_not_a_plain_name_writes_nothing(ledger: Ledger, actor: str, needles: list[str]) -> None:
    state = StateReader(ledger.url, ledger.cli.key)
    try:
        before = state.read()
        error_line(ledger.cli("provider", "retire", "HZ-001", "P2", actor=actor), 2, *needles)
        error_line(ledger.cli(*RECORD, "--at", AT, actor=actor), 2, *needles)
        assert before.differences(state.read()) == []
    finally:
        state.close()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://u:secret@[::1/x", id="unclosed-ipv6-bracket-crashed"),
        pytest.param("postgresql://u:secret@host:99999/x", id="port-out-of-range"),
        pytest.param("postgresql://u:secret@host:abc/x", id="port-not-a-number"),
        pytest.param("sqlite:///a\x00b.db", id="nul-in-path"),
    ],
)
def test_a_bad_db_url_is_one_line_without_its_password(ledger: Ledger, url: str) -> None:
    line = error_line(ledger.cli("community", "list", db=url), 2, "--db")
    assert "secret" not in line


def test_a_backup_to_a_file_name_that_is_not_utf8_is_written_and_reported(ledger: Ledger, tmp_path: Path) -> None:
    """The fuzzer found `backup` crashing on an undecodable name; the OS allows such names."""
    target = tmp_path / "copy-\udcff.db"
    result = ledger.cli("--actor", "admin", "backup", str(target))
    if not ledger.url.startswith("sqlite:"):  # PostgreSQL: refused, pointing to pg_dump, no crash
        error_line(result, 1, "pg_dump")
        return
    assert result.exit_code == 0, result.stderr
    assert "copy-" in result.stdout and target.exists()
