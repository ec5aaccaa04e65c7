"""Start-up: what a command imports, and that the lazy root still documents every command.

The root loads a command's modules only when that command runs (commands.cli.LazyGroup), and a
query on a SQLite store whose views are current reads them with sqlite3 alone (infra.litesql).
These tests look at `sys.modules` of a real process after the command, not at the clock:
the timings are in tests/perf/bench_startup.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from commands import access
from commands.cli import COMMANDS, cli
from commands.views import VIEW_VERSIONS, make_projections
from infra import litesql

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "pydantic", "cryptography", "eventsourcing", "openpyxl", "psycopg", "projections.assessment")
TAIZHANG_VARS = ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ")

# Runs the CLI as `python -m commands.cli ARGS` does and, at exit, writes the names of the modules it imported.
PROBE = (
    "import atexit, json, runpy, sys\n"
    "out, sys.argv = sys.argv[1], ['taizhang', *sys.argv[2:]]\n"
    "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules))))\n"
    "runpy.run_module('commands.cli', run_name='__main__')\n"
)


def run_probe(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in TAIZHANG_VARS}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, set(json.loads(out.read_text()))


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_root_help_imports_no_heavy_module_and_no_command_module(tmp_path: Path) -> None:
    done, modules = run_probe(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert heavy_among(modules) == []
    assert sorted(m for m in modules if m.startswith("commands.cli.") and m != "commands.cli.__main__") == []
    for name in COMMANDS:
        assert f"\n  {name} " in done.stdout


def test_community_list_on_a_small_store_reads_with_sqlite3_alone(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'small.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for code in ("C1", "C2"):
        args = ["--db", db, "--actor", "clerk01", "community", "establish", code, "--name", f"社区{code}"]
        result = CliRunner().invoke(cli, [*args, "--county", "八步区", "--township", "贺街镇", "--village", "石门村"])
        assert result.exit_code == 0, result.output
    first, modules = run_probe(tmp_path, "--db", db, "community", "list", "--format", "json")  # catches the views up
    assert first.returncode == 0, first.stderr
    assert [row["code"] for row in json.loads(first.stdout)] == ["C1", "C2"]
    assert "sqlalchemy" in modules  # the views were behind: projecting needs the runner

    done, modules = run_probe(tmp_path, "--db", db, "community", "list", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == first.stdout
    assert heavy_among(modules) == []


def test_a_store_with_actors_is_read_through_the_access_check(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'guarded.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "init", "--admin", "root"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    done, modules = run_probe(tmp_path, "--db", db, "community", "list")
    assert done.returncode == 1
    assert "permission denied" in done.stderr
    assert "eventsourcing.application" in modules  # the actors are loaded, and checked
    done, _modules = run_probe(tmp_path, "--db", db, "--actor", "root", "community", "list", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_root_help_lists_every_command_with_the_help_the_command_has() -> None:
    lazy = CliRunner().invoke(cli, ["--help"]).output
    assert set(COMMANDS) == set(cli.commands)  # `commands` loads every command module
    for name, (_modules, text) in COMMANDS.items():
        assert cli.commands[name].get_short_help_str(10_000) == click.Command(name, help=text).get_short_help_str(
            10_000
        )
    # Now that every command is loaded, click lists them from the commands themselves: the same text.
    assert CliRunner().invoke(cli, ["--help"]).output == lazy


def test_each_command_is_defined_by_the_modules_the_table_names() -> None:
    for path, command in access.command_paths(cli).items():
        callback = command.callback
        while hasattr(callback, "__wrapped__"):
            callback = callback.__wrapped__
        module = callback.__module__.removeprefix("commands.cli.")
        assert module in COMMANDS[path.split()[0]][0], f"{path} is defined in {module}"


def test_every_command_has_its_help() -> None:
    paths = list(access.command_paths(cli)) + [n for n, c in cli.commands.items() if isinstance(c, click.Group)]
    for path in paths:
        result = CliRunner().invoke(cli, [*path.split(), "-h"], prog_name="taizhang")
        assert result.exit_code == 0, (path, result.output)
        assert result.output.startswith(f"Usage: taizhang {path} "), (path, result.output)


@pytest.mark.parametrize("args", [["ledger", "summary", "-h"], ["audit", "-h"], ["resident", "erase", "-h"]])
def test_a_command_help_in_a_new_process_loads_only_its_modules(tmp_path: Path, args: list[str]) -> None:
    done, modules = run_probe(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: taizhang {' '.join(args[:-1])} ")
    wanted = {f"commands.cli.{m}" for m in COMMANDS[args[0]][0]}
    assert wanted <= modules
    assert "commands.cli.accountability" not in modules


def test_a_group_another_command_registered_first_still_gets_all_its_subcommands(tmp_path: Path) -> None:
    """`assess` loads cli.assess, whose register also adds `audit`: a later `audit keygen` must still load
    the modules that add keygen and the rest to it."""
    code = (
        "from commands.cli import cli\n"
        "for args in (['assess', '-h'], ['resident', 'list', '-h'], ['audit', 'keygen', '-h'], ['audit', 'history', '-h']):\n"
        "    assert cli.main(args, standalone_mode=False) == 0, args\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in TAIZHANG_VARS}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: taizhang audit keygen" in done.stdout


def test_the_light_path_knows_what_the_code_knows() -> None:
    from domain.actors import ACTORS_ID
    from infra.sqlitestore import _SAME_ID

    assert {p.name: p.version for p in make_projections()} == VIEW_VERSIONS
    assert litesql.ACTORS_ID == ACTORS_ID
    assert litesql.SAME_ID == _SAME_ID


def test_errors_are_still_classified_when_their_module_is_loaded(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    done, _ = run_probe(tmp_path, "--db", missing, "community", "list")
    assert (done.returncode, done.stdout) == (1, "")
    assert "no store at " in done.stderr
    done, _ = run_probe(tmp_path, "--db", "mysql://x", "community", "list")
    assert done.returncode == 2
    assert "--db: unsupported URL" in done.stderr
