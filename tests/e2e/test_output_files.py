"""Output files: never over an existing file without --force, never through a link, always 0600.

A colleague who can write the export folder plants a file or a symbolic link where the
next export goes (`ln -s ~/.bashrc ledger.csv`); a person who can read the folder reads
exports, stores and backups. On both stores, for every command with --output:

- an existing file is refused without --force (exit 1, one line) and kept byte-identical;
  with --force it is replaced, and the replacement is 0600;
- a symbolic link at the target is refused with and without --force: the file it points to
  is untouched, a dangling link's target is not created;
- a new output is created 0600 under umask 022.

And a new SQLite store (its -wal and -shm too), its key file, and a backup are 0600.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands.cli import cli
from tests.e2e.conftest import Cli, Ledger, error_line

PRECIOUS = b"the auditor's own notes\n"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The umask most systems run with: files would be created 0644 unless asked otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("office") / "office.key"
    result = CliRunner().invoke(cli, ["audit", "keygen", "--key-file", str(key)])
    assert result.exit_code == 0, result.output
    return key


OUTPUTS = {
    "entries-csv": ["ledger", "entries", "--format", "csv"],
    "entries-json": ["ledger", "entries", "--format", "json"],
    "entries-xlsx": ["ledger", "entries", "--format", "xlsx"],
    "summary-table": ["ledger", "summary", "--by", "county"],
    "assess-json": ["assess", "run", "--period", "2026-03", "--level", "county", "--format", "json"],
    "assess-csv": ["assess", "run", "--period", "2026-03", "--level", "county", "--format", "csv"],
    "assess-html": ["assess", "run", "--period", "2026-03", "--level", "county", "--format", "html"],
    "assess-xlsx": ["assess", "run", "--period", "2026-03", "--level", "county", "--format", "xlsx"],
    "audit-seal": ["audit", "seal", "--key-file", "{office}"],
    "audit-prove": ["audit", "prove", "{record}", "--checkpoint", "{checkpoint}"],
}


def command(ledger: Ledger, office: Path, tmp_path: Path, name: str) -> list[str]:
    checkpoint = tmp_path / "sealed.checkpoint"
    if name == "audit-prove" and not checkpoint.exists():
        ledger.cli.ok("audit", "seal", "--key-file", str(office), "--output", str(checkpoint))
    values = {"{office}": str(office), "{record}": ledger.active, "{checkpoint}": str(checkpoint)}
    return [values.get(arg, arg) for arg in OUTPUTS[name]]


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_an_existing_file_is_kept_without_force_and_replaced_0600_with_it(
    ledger: Ledger, office: Path, tmp_path: Path, name: str
) -> None:
    args = command(ledger, office, tmp_path, name)
    target = tmp_path / "existing.out"
    target.write_bytes(PRECIOUS)
    target.chmod(0o644)
    error_line(ledger.cli(*args, "--output", str(target)), 1, "--output", "already exists", "--force")
    assert target.read_bytes() == PRECIOUS
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial file left
    result = ledger.cli(*args, "--output", str(target), "--force")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() != PRECIOUS and target.stat().st_size > 0
    assert mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.parametrize("name", list(OUTPUTS))
def test_a_symbolic_link_at_the_target_is_refused_and_its_target_untouched(
    ledger: Ledger, office: Path, tmp_path: Path, name: str, force: list[str]
) -> None:
    args = command(ledger, office, tmp_path, name)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(PRECIOUS)
    link = tmp_path / "planted.out"
    link.symlink_to(victim)
    error_line(ledger.cli(*args, "--output", str(link), *force), 1, "--output", "symbolic link")
    assert victim.read_bytes() == PRECIOUS and mode(victim) == 0o644
    assert link.is_symlink()
    dangling = tmp_path / "dangling.out"
    nowhere = tmp_path / "created-through-the-link.txt"
    dangling.symlink_to(nowhere)
    error_line(ledger.cli(*args, "--output", str(dangling), *force), 1, "--output", "symbolic link")
    assert not nowhere.exists() and dangling.is_symlink()


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_a_new_output_is_created_0600(ledger: Ledger, office: Path, tmp_path: Path, name: str) -> None:
    target = tmp_path / "new.out"
    result = ledger.cli(*command(ledger, office, tmp_path, name), "--output", str(target))
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 0
    assert mode(target) == 0o600


def test_a_new_sqlite_store_its_wal_its_key_and_a_backup_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "taizhang.db"
    run = Cli(f"sqlite:///{db}", tmp_path / "taizhang.key")
    run.ok("init")
    run.ok("community", "establish", "HZ-001", "--name", "石门", "--county", "八步区", "--township", "贺街镇",
           "--village", "石门村", "--established-on", "2026-01-01")  # fmt: skip
    reader = sqlite3.connect(db)  # held open: the -wal and -shm files stay while it reads
    try:
        reader.execute("SELECT count(*) FROM stored_events").fetchone()
        companions = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(p.exists() for p in companions)
        assert {p.name: mode(p) for p in (db, *companions)} == {p.name: 0o600 for p in (db, *companions)}
    finally:
        reader.close()
    assert mode(tmp_path / "taizhang.key") == 0o600
    backup = tmp_path / "backup.db"
    run.ok("backup", str(backup), actor=None)
    assert mode(backup) == 0o600


def test_a_backup_never_replaces_a_file_nor_writes_through_a_link(tmp_path: Path) -> None:
    db = tmp_path / "taizhang.db"
    run = Cli(f"sqlite:///{db}", tmp_path / "taizhang.key")
    run.ok("init")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(PRECIOUS)
    link = tmp_path / "backup.db"
    link.symlink_to(victim)
    error_line(run("backup", str(link), actor=None), 1, "already exists")
    assert victim.read_bytes() == PRECIOUS and link.is_symlink()
