"""The server's access-log writes: committed before the page goes out, flushed to disk together.

Each access-log entry is one committed transaction (its residents and its chain link with it),
and on SQLite the commit is a disk flush (WAL, `synchronous = FULL`): on the shared test machine
0.6 ms idle and 4–8 ms while other processes write — most of what a 台账 page adds over its own
read (bench_web). Weakening the flush (`synchronous = NORMAL`) could lose the last entries on a
power cut: people would have seen residents' data without a trace. Instead:

- *Group commit.* One thread per server process writes the entries. It takes every entry that
  is waiting and writes them in ONE transaction (`LedgerService.log_access_many`), in the order
  they came, each with its own id, residents and chain link: one flush for all the requests that
  asked meanwhile. Nothing is weaker: every request still waits for its own entry to be
  committed before it answers.
- *Overlap.* A route that shows residents submits its entry as soon as it knows them
  (`AccessWriter.submit`, a Future), builds its page meanwhile (the flush releases the GIL), and
  waits for the Future before the response leaves (`Door.log_access_soon` … `.result()`). When
  the entry cannot be written the route fails and shows nothing, as the CLI's `Env.log_access`.

A batch that fails is written again entry by entry, so one request's bad entry (none is known)
cannot fail the others'.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from commands.app import LedgerService
    from infra.store import AccessEntry

MAX_BATCH = 64  # entries per transaction at most



class AccessWriter:
    """One thread writing this process's access-log entries, many per transaction."""

    def __init__(self, service: LedgerService) -> None:
        self.service = service
        self._queue: queue.SimpleQueue[tuple[AccessEntry, Future[int]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False
        self.batches = 0  # transactions written (tests: concurrent entries share one)

    def submit(
        self, actor: str | None, command: str, detail: str, residents: Any = (), records: int = 0
    ) -> Future[int]:
        """Queue one entry; the Future gives its id once it is committed (or the error that stopped it)."""
        if self._closed:
            raise RuntimeError("the access-log writer is closed")
        future: Future[int] = Future()
        self._queue.put(((actor, command, detail, list(residents), records), future))
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="taizhang-access-log", daemon=True)
                    self._thread.start()
        return future

    def write(self, actor: str | None, command: str, detail: str, residents: Any = (), records: int = 0) -> int:
        """Write one entry and wait until it is committed."""
        return self.submit(actor, command, detail, residents, records).result()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[AccessEntry, Future[int]]]) -> None:
        live = [(entry, future) for entry, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            ids = self.service.log_access_many([entry for entry, _ in live])
        except BaseException:
            if len(live) == 1:
                self._fail(live[0][1])
                return
            for entry, future in live:  # one by one: each request gets its own outcome
                try:
                    future.set_result(self.service.log_access_many([entry])[0])
                except BaseException:
                    self._fail(future)
                self.batches += 1
            return
        self.batches += 1
        for (_entry, future), access_id in zip(live, ids, strict=True):
            future.set_result(access_id)

    @staticmethod
    def _fail(future: Future[int]) -> None:
        import sys

        error = sys.exc_info()[1]
        assert error is not None
        future.set_exception(error)
