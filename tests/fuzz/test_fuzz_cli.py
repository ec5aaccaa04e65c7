"""Hostile input on the command line: every command of the click tree, fuzzed on a real store.

For each command (read from the click tree, so new commands are fuzzed as soon as
they are registered), hypothesis draws command lines from its grammar with
plausible and hostile values (see `tests.fuzz.grammar`) and runs them in-process
against a store with a small history, on SQLite and PostgreSQL. Whatever the
input:
- the exit code is 0, 1 or 2, and nothing escapes (no traceback, no "internal error");
- a failure prints nothing on stdout and one line on stderr (an import also one
  `row N: field: problem` line per bad row above it), bounded in length, without
  raw control characters (no terminal escapes, no forged second line);
- a rejected command (exit 1 or 2) changes no event, snapshot, key or actor
  (compared logically, `tests.fuzz.state`).
A few real subprocess runs pass invalid UTF-8 bytes in argv and in environment values.

Budget: TAIZHANG_FUZZ_SCALE (default 1) multiplies the example counts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings

from commands.cli import cli
from tests.e2e.conftest import TAIZHANG_VARS
from tests.fuzz.conftest import Seeded, examples
from tests.fuzz.grammar import (
    ACTIVE,
    MISSING,
    VOIDED,
    Invocation,
    Leaf,
    group_paths,
    invocations,
    leaf_commands,
    stray_invocations,
)
from tests.fuzz.state import State

LEAVES = leaf_commands()
ROW_LINE = re.compile(r"^row \d+: [^\n]+$")
ERROR_PREFIXES = ("Error: ", "错误：")
MAX_LINE = 2000  # an error names the value, it does not echo 100k characters of it
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x9b]")


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Run with `folder` as the working directory (relative --output paths land there)."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def concrete(seeded: Seeded, argv: list[str]) -> list[str]:
    ids = {ACTIVE: seeded.ledger.active, VOIDED: seeded.ledger.voided, MISSING: seeded.ledger.missing}
    return [ids.get(word, word) for word in argv]


def invoke(seeded: Seeded, invocation: Invocation) -> Result:
    cli_ = seeded.cli
    argv = ["--db", cli_.url, "--key-file", str(cli_.key), *concrete(seeded, invocation.argv)]
    env: dict[str, str | None] = {name: None for name in TAIZHANG_VARS}
    env["TAIZHANG_DEBUG"] = None
    env.update(invocation.env)
    with inside(seeded.folder):
        return CliRunner().invoke(cli, argv, env=env, catch_exceptions=True)


def check_outcome(result: Result, changed: list[str], what: object) -> None:
    """The contract for any input (see the module docstring)."""
    code = result.exit_code
    assert code in (0, 1, 2), f"exit {code} for {what}\n{result.stderr[:2000]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (what, result.exc_info)
    assert "Traceback" not in result.output, what
    assert "internal error" not in result.stderr, f"{what}\n{result.stderr[:2000]}"
    if code == 0:
        return
    lines = result.stderr.splitlines()
    assert lines, f"exit {code} without a word on stderr: {what}"
    assert lines[-1].startswith(ERROR_PREFIXES), f"{what}\n{result.stderr[:2000]}"
    assert all(ROW_LINE.match(line) for line in lines[:-1]), f"more than one line: {what}\n{result.stderr[:2000]}"
    assert result.stdout == "", f"a failure printed on stdout: {what}\n{result.stdout[:500]}"
    for line in lines:
        assert len(line) <= MAX_LINE, f"a {len(line)}-character error line: {what}\n{line[:300]}…"
        assert not RAW_CONTROL.search(line), f"raw control characters in {line[:300]!r}: {what}"
    assert changed == [], f"exit {code} but the store changed ({changed}): {what}\n{result.stderr[:500]}"


def run_and_check(seeded: Seeded, invocation: Invocation) -> Result:
    before: State = seeded.state.read()
    result = invoke(seeded, invocation)
    after = seeded.state.read()
    check_outcome(result, before.differences(after), invocation)
    if result.exit_code == 0 and seeded.backend == "postgres" and after.events != before.events:
        seeded.cli.ok("projections", "run")  # keep the views current: a later --wait waits for nothing
    return result


FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.mark.parametrize("leaf", LEAVES, ids=str)
def test_every_command_survives_hostile_arguments(seeded: Seeded, leaf: Leaf) -> None:
    @settings(max_examples=examples(20, 4, seeded.backend), **FUZZ)  # type: ignore[arg-type]
    @given(invocations(leaf))
    def fuzz(invocation: Invocation) -> None:
        run_and_check(seeded, invocation)

    fuzz()


def test_unknown_and_hostile_command_words(seeded: Seeded) -> None:
    groups = group_paths()

    @settings(max_examples=examples(40, 10, seeded.backend), **FUZZ)  # type: ignore[arg-type]
    @given(stray_invocations(groups))
    def fuzz(invocation: Invocation) -> None:
        run_and_check(seeded, invocation)

    fuzz()


def test_the_grammar_covers_the_whole_tree() -> None:
    """The walk finds every registered command (a command added later is fuzzed without a list)."""
    names = {str(leaf) for leaf in LEAVES}
    assert {"service record", "import", "ledger entries", "assess run", "projections run"} <= names
    assert all(leaf.command.callback is not None for leaf in LEAVES)
    for leaf in LEAVES:
        assert all("--follow" not in option.opts for option in leaf.options)
        # commands.boundary guards every parameter (a command registered after the guard would not be).
        unguarded = [p.name for p in leaf.command.params if not getattr(p.callback, "__taizhang_guard__", False)]
        assert unguarded == [], f"{leaf}: {unguarded} are not guarded; register the command before guard_params(cli)"


# ---- real processes: bytes that are not UTF-8 in argv and in the environment ------------------------
BAD_BYTES = [b"\xff", b"HZ-\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"R1\x80\x81", b"\xfe\xff\x00x"]


def _process(seeded: Seeded, args: list[bytes], env: dict[str, bytes] | None = None) -> subprocess.CompletedProcess[bytes]:
    cli_ = seeded.cli
    clean = {k: v for k, v in os.environb.items() if not k.startswith(b"TAIZHANG_")}
    clean[b"PYTHONPATH"] = str(Path(__file__).resolve().parents[2]).encode()
    clean[b"LC_ALL"] = b"C.UTF-8"
    clean.update(env or {})
    argv = [sys.executable.encode(), b"-m", b"commands.cli", b"--db", cli_.url.encode(), b"--key-file", str(cli_.key).encode()]
    return subprocess.run([*argv, *args], env=clean, capture_output=True, cwd=seeded.folder, timeout=120)


def check_process(seeded: Seeded, proc: subprocess.CompletedProcess[bytes], before: State, what: object) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode in (0, 1, 2), f"exit {proc.returncode}: {what}\n{err}"
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr, f"{what}\n{err}"
    if proc.returncode != 0:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIXES), f"{what}\n{err}"
        assert not RAW_CONTROL.search(lines[0]), lines[0]
        assert before.differences(seeded.state.read()) == [], what


ARGV_CASES = [
    [b"--actor", b"clerk01", b"community", b"establish", b"X\xff", b"--name", b"n", b"--county", b"c", b"--township", b"t", b"--village", b"v"],
    [b"--actor", b"clerk01", b"resident", b"enroll", b"HZ-001", b"R7", b"--name", b"\xe5\xbc\xa0\xff"],
    [b"--actor", b"clerk01", b"service", b"record", b"HZ-001", b"--kind", b"life_care", b"--resident", b"R1",
     b"--provider", b"P1", b"--at", b"2026-03-05 09:30", b"--minutes", b"45", b"--note", b"\xed\xa0\x80"],
    [b"--actor", b"\xff\xfe", b"provider", b"retire", b"HZ-001", b"P2"],
    [b"ledger", b"entries", b"--community", b"HZ-\xc3", b"--format", b"csv"],
    [b"ledger", b"summary", b"--by", b"county\xff"],
    [b"assess", b"run", b"--period", b"2026\x80", b"--level", b"county"],
    [b"import", b"services", b"\xff.csv"],
    [b"--lang", b"zh\xff", b"community", b"list"],
    [b"\xff"],
]


def test_argv_bytes_that_are_not_utf8(seeded: Seeded) -> None:
    for args in ARGV_CASES:
        before = seeded.state.read()
        proc = _process(seeded, args)
        check_process(seeded, proc, before, args)
        assert proc.returncode != 0, args


@pytest.mark.parametrize("name", ["TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_TZ", "TAIZHANG_DB", "TAIZHANG_KEY_FILE"])
def test_environment_bytes_that_are_not_utf8(seeded: Seeded, name: str) -> None:
    before = seeded.state.read()
    args = [b"resident", b"enroll", b"HZ-001", b"R8", b"--name", b"x"]
    if name in ("TAIZHANG_DB", "TAIZHANG_KEY_FILE"):
        args = [b"--actor", b"clerk01", *args]  # --db/--key-file on the command line win; still decoded
    proc = _process(seeded, args, {name.encode(): b"\xff\xfe" + name.encode() + b"\xed\xa0\x80"})
    check_process(seeded, proc, before, name)
