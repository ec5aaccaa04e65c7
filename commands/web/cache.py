"""Read results kept by a server process while the store stands still.

A page's numbers follow from the store's position (the log's head and every view's tracking
position), the asker's scope and the query. `ReadCache.get` keys each result by all three; a
result is kept only for the position it was read at, so the first request that finds the
position moved (a record, a catch-up, a revocation) computes afresh and the older results go.
Requests that ask the same thing while it is being computed wait for that one computation
instead of each doing it (50 sessions at one dashboard cost one dashboard).

What is kept is the read, never its side effects: a route that shows residents still writes
its access-log entry on every request (commands.web.app).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
SIZE = 256  # results kept at most (of one position): a handful per scope and query in use


class ReadCache:
    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._position: Hashable = None
        self._done: OrderedDict[Hashable, Any] = OrderedDict()
        self._running: dict[tuple[Hashable, Hashable], Future[Any]] = {}
        self.computed = 0  # results computed (tests: the second ask of a thing computes nothing)

    def get(self, position: Hashable, key: Hashable, compute: Callable[[], T]) -> T:
        """The result of `compute()` for `key` at `position`: kept, being computed, or computed now.

        `position` must be read before the result is (a result newer than its key is harmless:
        that key is not asked again once the store has moved past it; one older would be stale).
        """
        with self._lock:
            if position != self._position:
                self._position = position
                self._done.clear()
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]  # type: ignore[no-any-return]
            running = self._running.get((position, key))
            mine = running is None
            if mine:
                running = self._running[(position, key)] = Future()
        assert running is not None
        if not mine:
            return running.result()  # type: ignore[no-any-return]
        try:
            value = compute()
        except BaseException as error:
            running.set_exception(error)
            with self._lock:
                self._running.pop((position, key), None)
            raise
        running.set_result(value)
        with self._lock:
            self._running.pop((position, key), None)
            self.computed += 1
            if position == self._position:
                self._done[key] = value
                while len(self._done) > self.size:
                    self._done.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._done.clear()
