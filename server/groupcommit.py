"""Group commit: writes that arrive while another thread is committing are committed
together, in one transaction, so that one durable commit (one fsync) answers several
SOAP calls instead of one.

No thread of its own: the first caller to find nobody committing becomes the leader and
commits everything waiting, its own write included; callers arriving meanwhile wait, and
the leader hands over to one of them when it is done, so nobody commits other callers'
writes for long. Each caller returns only once its own write is committed, or raises
what its write raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Waiting(Generic[Item, Result]):
    __slots__ = ("error", "item", "leads", "ready", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.ready = threading.Event()
        self.leads = False  # woken to lead the next group rather than with a result
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Commit items in groups with ``write(items)``: it runs one transaction and returns
    one result (or exception instance) per item, in order. If it raises, the group is
    rolled back and each item is tried again alone, so that one bad item fails alone.

    ``turn`` (a context manager factory, e.g. a lock shared with other processes) is
    entered before the group is taken, so that writes arriving while the leader waits
    for it are committed with it."""

    def __init__(
        self,
        write: Callable[[list[Item]], list[Result | BaseException]],
        *,
        turn: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self._write = write
        self._turn = turn
        self._lock = threading.Lock()
        self._queue: list[_Waiting[Item, Result]] = []
        self._leading = False

    def submit(self, item: Item) -> Result:
        mine: _Waiting[Item, Result] = _Waiting(item)
        with self._lock:
            self._queue.append(mine)
            leads = not self._leading
            self._leading = True
        if not leads:
            mine.ready.wait()
            if mine.leads:
                leads = True
        if leads:
            self._lead()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def write_now(self, items: list[Item]) -> list[Result | BaseException]:
        """Commit ``items`` now, in this thread, for a caller that gathers its own groups
        (the writer process): the same turn, transaction and failure rules as
        :meth:`submit`; one result or exception instance per item."""
        group: list[_Waiting[Item, Result]] = [_Waiting(item) for item in items]
        with self._turn():
            self._commit(group)
        return [w.error if w.error is not None else w.result for w in group]  # type: ignore[misc]

    def _lead(self) -> None:
        """Commit what is waiting (this caller's item among it), then hand over."""
        group: list[_Waiting[Item, Result]] = []
        try:
            with self._turn():  # what arrives while waiting for the turn joins the group
                group = self._take()
                self._commit(group)
        except BaseException as error:  # from the turn itself: nothing more is written
            group = group or self._take()
            for waiting in group:
                if waiting.result is None and waiting.error is None:
                    waiting.error = error
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.ready.set()
                else:
                    self._leading = False
            for waiting in group:
                waiting.ready.set()

    def _take(self) -> list[_Waiting[Item, Result]]:
        with self._lock:
            group, self._queue = self._queue, []
        return group

    def _commit(self, group: list[_Waiting[Item, Result]]) -> None:
        try:
            outcomes = self._write([waiting.item for waiting in group])
        except BaseException as error:
            if len(group) == 1:
                group[0].error = error
                return
            for waiting in group:  # find the bad one: each alone
                self._commit([waiting])
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                waiting.error = outcome
            else:
                waiting.result = outcome
