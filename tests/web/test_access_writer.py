"""The server's access-log writes (commands.web.access_writer): group-committed, each committed
before its page leaves, the access chain whole — SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from commands.audit_chain import verify_log
from commands.web.access_writer import AccessWriter
from commands.web.app import create_app
from commands.web.door import Door
from tests.web.conftest import Site, log_in


class _Held:
    """Wraps log_access_many: the first call waits until released, so that entries queue behind it."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.inside = threading.Event()
        self.release = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, entries: Any) -> list[int]:
        self.sizes.append(len(entries))
        if len(self.sizes) == 1:
            self.inside.set()
            assert self.release.wait(30)
        return list(self.real(entries))


def test_entries_asked_for_together_share_one_commit_each_with_its_own_id_and_chain_link(site: Site) -> None:
    door = Door(site.url, site.key, catch_up=False)
    try:
        before = verify_log(door.service)["access_entries"]
        held = _Held(door.service.log_access_many)
        door.service.log_access_many = held  # type: ignore[method-assign]
        first = door.log_access_soon("sup-hj", "web ledger entries", "--period=2026-03", [("HZ-001", "R1")])
        assert held.inside.wait(30)  # the writer is in its first transaction: the next five queue behind it
        with ThreadPoolExecutor(5) as pool:
            queued: list[Future[int]] = list(
                pool.map(
                    lambda n: door.log_access_soon(
                        "sup-hj", "web ledger entries", f"--page={n}", [("HZ-001", "R2"), ("HZ-001", "R1")]
                    ),
                    range(5),
                )
            )
        assert not any(f.done() for f in queued)  # nothing is answered before it is committed
        held.release.set()
        ids = [first.result(30), *(f.result(30) for f in queued)]
        assert held.sizes == [1, 5] and door.access.batches == 2  # one commit for the five
        assert len(set(ids)) == 6 and sorted(ids) == list(range(min(ids), min(ids) + 6))
        report = verify_log(door.service)  # every entry in the chain, each with its own link
        assert report["access_entries"] == before + 6
        entries = door.service.recorder.access_entries(resident=None, actor="sup-hj", start=None, end=None)
        mine = {int(e["id"]): e for e in entries if int(e["id"]) in ids}
        assert all(mine[i]["residents"] == 2 for i in ids[1:]) and mine[ids[0]]["residents"] == 1
        door.log_access("sup-hj", "web ledger entries", "--period=2026-04")  # and the plain call waits for its own
        assert verify_log(door.service)["access_entries"] == before + 7
    finally:
        door.close()


def test_a_ledger_page_whose_access_log_entry_cannot_be_written_shows_nothing(site: Site) -> None:
    door = Door(site.url, site.key, catch_up=False)

    def broken(_entries: Any) -> list[int]:
        raise RuntimeError("the disk is full")

    with TestClient(create_app(door), follow_redirects=False, raise_server_exceptions=False) as client:
        assert log_in(client, "sup-hj").status_code == 303
        assert "R1" in client.get("/ledger", params={"period": "2026-03"}).text
        door.service.log_access_many = broken  # type: ignore[method-assign]
        for _ in range(2):  # the second time the rows are kept: still nothing without the entry
            page = client.get("/ledger", params={"period": "2026-03"})
            assert page.status_code == 500
            assert "R1" not in page.text and "<td>" not in page.text


class _Fake:
    """A service whose log_access_many fails on a batch holding an entry of command "bad"."""

    def __init__(self) -> None:
        self.next = 1
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.inside = threading.Event()

    def log_access_many(self, entries: Any) -> list[int]:
        self.calls.append([entry[1] for entry in entries])
        if len(self.calls) == 1:
            self.inside.set()
            assert self.gate.wait(30)
        if any(entry[1] == "bad" for entry in entries):
            raise RuntimeError("refused")
        ids = list(range(self.next, self.next + len(entries)))
        self.next += len(entries)
        return ids


def test_a_failing_batch_is_written_again_entry_by_entry_so_only_the_bad_entry_fails() -> None:
    fake = _Fake()
    writer = AccessWriter(fake)  # type: ignore[arg-type]
    try:
        first = writer.submit(None, "good", "")
        assert fake.inside.wait(30)
        futures = [writer.submit(None, command, "") for command in ("good", "bad", "good")]
        fake.gate.set()
        assert first.result(30) == 1
        assert futures[0].result(30) == 2 and futures[2].result(30) == 3
        with pytest.raises(RuntimeError, match="refused"):
            futures[1].result(30)
        assert fake.calls == [["good"], ["good", "bad", "good"], ["good"], ["bad"], ["good"]]
    finally:
        writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(None, "late", "")
