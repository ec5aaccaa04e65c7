"""The installed `taizhang` console script, run as a user runs it: a new process each time.

The README flow on SQLite runs in a temporary working directory with no --db and
no --key-file, so the defaults (`sqlite:///taizhang.db`, `taizhang.key` beside it)
are what is tested; the same flow then runs on PostgreSQL through --db.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import drop_pg_database, make_pg_database

TAIZHANG_VARS = ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ")


def _script() -> str:
    beside = Path(sys.executable).parent / "taizhang"
    if beside.is_file():
        return str(beside)
    found = shutil.which("taizhang")
    if found is None:
        pytest.fail("the taizhang console script is not installed (pip install -e .)")
    return found


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TAIZHANG_VARS}
    env.update(extra)
    return env


def taizhang(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_script(), *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=120, check=False
    )


def ok(cwd: Path, *args: str, **env: str) -> str:
    done = taizhang(cwd, *args, **env)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stderr == "", done.stderr
    return done.stdout


def one_error_line(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


ESTABLISH = ["community", "establish", "HZ-001", "--name", "石门新型农村社区", "--county", "八步区",
             "--township", "贺街镇", "--village", "石门村", "--natural-village", "大岭", "--established-on", "2026-01-01"]  # fmt: skip
RECORD = ["service", "record", "HZ-001", "--kind", "生活照料", "--resident", "R001", "--provider", "P01",
          "--at", "2026-03-05 09:30", "--minutes", "45", "--place", "入户", "--note", "送米送油"]  # fmt: skip


def readme_flow(cwd: Path, *store: str) -> None:
    """init, establish, enroll, register, record, correct, void, list — checking each outcome."""
    w = [*store, "--actor", "clerk01"]
    postgres = any(arg.startswith("postgresql://") for arg in store)
    out = ok(cwd, *w, "init", *(["--no-access-control"] if postgres else []))
    assert out.startswith("initialised ") and "back it up" in out
    assert json.loads(ok(cwd, *w, *ESTABLISH, "--format", "json")) == {"community": "HZ-001", "created": True}
    assert "R001" in ok(cwd, *w, "resident", "enroll", "HZ-001", "R001", "--name", "张秀英", "--birth-date",
                        "1948-05-02", "--gender", "女", "--category", "留守老人")  # fmt: skip
    assert "P01" in ok(cwd, *w, "provider", "register", "HZ-001", "P01", "--name", "李建国", "--role", "党员")
    recorded = json.loads(ok(cwd, *w, *RECORD, "--format", "json"))
    assert list(recorded) == ["record_id", "created"] and recorded["created"] is True
    record_id = recorded["record_id"]
    again = json.loads(ok(cwd, *w, *RECORD, "--record-id", record_id, "--format", "json"))
    assert again == {"record_id": record_id, "created": False}
    ok(cwd, *store, "projections", "run")  # PostgreSQL views are kept by workers; SQLite catches up by itself
    listed = json.loads(ok(cwd, *store, "community", "list", "--format", "json"))
    assert [(c["code"], c["residents"], c["providers"], c["records"]) for c in listed] == [("HZ-001", 1, 1, 1)]
    corrected = ok(cwd, *w, "service", "correct", "HZ-001", record_id, "--minutes", "60", "--reason", "时长登记有误")
    assert corrected.strip() == f"corrected {record_id} (revision 2)"
    voided = json.loads(ok(cwd, *w, "service", "void", "HZ-001", record_id, "--reason", "重复登记", "--format", "json"))
    assert voided == {"record_id": record_id, "status": "voided"}
    ok(cwd, *store, "projections", "run")
    table = ok(cwd, *store, "--lang", "zh", "community", "list")
    header, _rule, row = table.splitlines()
    assert header.split()[:2] == ["编码", "名称"] and row.split()[:2] == ["HZ-001", "石门新型农村社区"]
    assert row.split()[-3:] == ["1", "1", "0"]  # the voided record no longer counts
    # Errors: one line, the right exit code, no traceback, nothing written.
    one_error_line(taizhang(cwd, *w, "service", "correct", "HZ-001", record_id, "--minutes", "5", "--reason", "r"),
                   1, record_id, "voided")  # fmt: skip
    one_error_line(taizhang(cwd, *w, *RECORD[:-4], "--minutes", "0"), 2, "minutes")
    one_error_line(taizhang(cwd, *w, "resident", "enroll", "HZ-404", "R1", "--name", "x"), 1, "HZ-404")
    one_error_line(taizhang(cwd, *store, *ESTABLISH), 2, "--actor")
    ok(cwd, *store, "projections", "run")
    listed = json.loads(ok(cwd, *store, "community", "list", "--format", "json"))
    assert [(c["code"], c["residents"], c["providers"], c["records"]) for c in listed] == [("HZ-001", 1, 1, 0)]


@pytest.mark.slow
def test_readme_flow_on_sqlite_with_the_defaults(tmp_path: Path) -> None:
    readme_flow(tmp_path)
    assert (tmp_path / "taizhang.db").is_file()
    key = tmp_path / "taizhang.key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    content = key.read_bytes()
    one_error_line(taizhang(tmp_path, "init"), 1, "already exists")
    assert key.read_bytes() == content


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    url = make_pg_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_pg_database(pg_admin_url, url)


@pytest.mark.postgres
@pytest.mark.slow
def test_readme_flow_on_postgres(tmp_path: Path, pg_url: str) -> None:
    key = tmp_path / "secret" / "ledger.key"
    readme_flow(tmp_path, "--db", pg_url, "--key-file", str(key))
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"], "nothing but the key file on disk"


def test_environment_variables_name_the_store_actor_and_key(tmp_path: Path) -> None:
    env = {"TAIZHANG_DB": f"sqlite:///{tmp_path / 'data' / 'ledger.db'}", "TAIZHANG_ACTOR": "grid07"}
    ok(tmp_path, "init", **env)
    assert (tmp_path / "data" / "ledger.db").is_file() and (tmp_path / "data" / "taizhang.key").is_file()
    ok(tmp_path, *ESTABLISH, **env)
    ok(tmp_path, "resident", "enroll", "HZ-001", "R1", "--name", "张秀英", **env)
    # Without the key file beside the store, TAIZHANG_KEY_FILE must point at it.
    (tmp_path / "data" / "taizhang.key").rename(tmp_path / "moved.key")
    one_error_line(taizhang(tmp_path, "resident", "enroll", "HZ-001", "R2", "--name", "王小明", **env), 1, "key file")
    ok(tmp_path, "resident", "enroll", "HZ-001", "R2", "--name", "王小明", TAIZHANG_KEY_FILE=str(tmp_path / "moved.key"),
       **env)  # fmt: skip
    assert not (tmp_path / "taizhang.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["community", "list"], id="query"),
        pytest.param(["--actor", "clerk01", *ESTABLISH], id="write"),
        pytest.param(["--actor", "clerk01", *RECORD], id="record"),
        pytest.param(["--lang", "zh", "--actor", "clerk01", "service", "void", "HZ-001",
                      "3f1c9a52-7d0e-4b8e-9a51-1b2c3d4e5f60", "--reason", "r"], id="void-zh"),  # fmt: skip
    ],
)
def test_a_missing_store_is_not_created(tmp_path: Path, args: list[str]) -> None:
    done = taizhang(tmp_path, *args)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    expected = "错误：taizhang.db 处没有台账库；请先运行 taizhang init" if "zh" in args else (
        "Error: no store at taizhang.db; run taizhang init"
    )
    assert lines == [expected]
    assert list(tmp_path.iterdir()) == [], "a failing command created files"


def test_version_and_help(tmp_path: Path) -> None:
    assert ok(tmp_path, "--version").strip() == f"taizhang, version {version('taizhang')}"
    usage = ok(tmp_path, "-h")
    assert usage.startswith("Usage: taizhang")
    for name in ("init", "demo", "community", "resident", "provider", "service", "import"):
        assert f"  {name} " in usage, name
    assert "Example:" in ok(tmp_path, "service", "record", "--help")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["-m", "commands.cli", "-h"], id="python-m-help"),
        pytest.param(["-m", "commands.cli", "community", "list"], id="python-m-command"),
        pytest.param(["-c", "import commands.cli.service"], id="import-a-command-module-first"),
    ],
)
def test_python_entry_points(tmp_path: Path, argv: list[str]) -> None:
    ok(tmp_path, "init")
    done = subprocess.run(
        [sys.executable, *argv], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    if argv[-1] == "-h":
        assert "community" in done.stdout
    elif argv[-1] == "list":
        assert done.stdout.startswith("code")
