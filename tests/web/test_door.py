"""The server keeps the views current by itself: a background thread, SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

from commands.web.door import Door
from tests.web.conftest import Site


def test_the_catch_up_thread_projects_what_the_cli_records(site: Site) -> None:
    door = Door(site.url, site.key, catch_up=True)
    try:
        site.cli.ok("service", "record", "HZ-001", "--kind", "counseling", "--resident", "R2", "--provider", "P1",
                    "--at", "2026-03-25 09:00", "--minutes", "5", "--record-id", str(uuid.uuid4()), actor="clerk-hj")  # fmt: skip
        deadline = time.monotonic() + 15
        while door.lag() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert door.lag() == 0
    finally:
        door.close()
        door.close()  # closing twice is harmless (the app's shutdown and a test may both close it)


def test_with_the_catch_up_thread_reads_wait_neither_for_a_catch_up_nor_for_a_write(site: Site) -> None:
    """A page's read and its who-is-asking take neither the catch-up lock nor the write lock (bench_web)."""
    import threading

    door = Door(site.url, site.key, catch_up=True)
    done: list[str] = []

    def read() -> None:
        with door.read():
            pass
        assert door.actor("sup-hj") is not None
        door.log_access("sup-hj", "web ledger entries", "--community=HZ-001")  # a page that shows residents
        done.append("read")

    try:
        with door._settle, door._write:  # a catch-up in progress and a clerk's write in progress
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(timeout=10)
            assert done == ["read"]
    finally:
        door.close()
