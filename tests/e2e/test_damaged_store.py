"""A SQLite store with a damaged page refuses every write, instead of appending to it.

The attack: a page in the middle of a real store file is overwritten (a failing disk, a
copy cut short, a colleague's hex editor). SQLite opens such a file and goes on appending
to the pages it still can read, so before this check `service record` succeeded and every
later write deepened what a restore must repair. A write command now runs SQLite's
`PRAGMA quick_check` when it opens the store and refuses (exit 1, one line naming the
store and saying to restore from a backup); the file is left byte-identical. A command
with malformed input still exits 2: that is judged without the store. SQLite only: a
PostgreSQL server checks its own pages.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tests.e2e.conftest import COMMUNITY, Cli, error_line, establish_args, record_args

SERVICES = 3000  # enough pages that one in the middle holds events, not the schema


def _store(tmp_path: Path) -> tuple[Cli, Path]:
    db = tmp_path / "taizhang.db"
    cli = Cli(f"sqlite:///{db}", tmp_path / "taizhang.key")
    cli.ok("init")
    cli.ok(*establish_args(COMMUNITY))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    rows = ["community,kind,residents,providers,occurred_at,minutes,note"]
    rows += [f"HZ-001,life_care,R1,P1,2026-02-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d},{1 + i % 300},送米送油 {i}" for i in range(SERVICES)]
    (tmp_path / "services.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cli.ok("import", "services", str(tmp_path / "services.csv"))
    return cli, db


def _damage_a_middle_page(db: Path) -> None:
    data = db.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    middle = len(data) // page_size // 2
    with db.open("r+b") as f:
        f.seek(middle * page_size)
        f.write(b"\xff" * page_size)


def _quick_check(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA quick_check(1)").fetchone()[0])
    finally:
        conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_write_to_a_store_with_a_damaged_page_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    cli, db = _store(tmp_path)
    assert _quick_check(db) == "ok"
    _damage_a_middle_page(db)
    assert _quick_check(db) != "ok"  # the damage is real: SQLite itself sees it
    before = _digest(db)
    line = error_line(cli(*record_args("HZ-001")), 1, str(db), "damaged", "restore it from a backup")
    assert "Page" in line  # SQLite's own finding is named
    assert _digest(db) == before
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    # Every other kind of write is refused the same way.
    error_line(cli("resident", "enroll", "HZ-001", "R2", "--name", "王小明"), 1, "damaged")
    error_line(cli("import", "services", str(tmp_path / "services.csv")), 1, "damaged")
    assert _digest(db) == before
    # Malformed input is still malformed (exit 2): it is judged without the store.
    error_line(cli("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
                   "--at", "2026-03-05 09:30", "--minutes", "many"), 2, "minutes", "many")  # fmt: skip
    assert _digest(db) == before


def test_a_sound_store_takes_the_same_write(tmp_path: Path) -> None:
    cli, db = _store(tmp_path)
    assert cli.json(*record_args("HZ-001"))["created"] is True
    assert _quick_check(db) == "ok"
