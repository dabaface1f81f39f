"""Group commit: concurrent writes share transactions, each caller gets its own outcome."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from smsxml.server.groupcommit import GroupCommit


class Refused(Exception):
    pass


class Journal:
    """A write function that records its groups; the first group waits until the test
    lets it go, so that everything submitted meanwhile queues up behind it."""

    def __init__(self, *, poison: str | None = None) -> None:
        self.groups: list[list[str]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.poison = poison
        self.lock = threading.Lock()

    def write(self, items: list[str]) -> list[str | BaseException]:
        with self.lock:
            self.groups.append(list(items))
            first = len(self.groups) == 1
        if first:
            self.first_started.set()
            assert self.release.wait(10)
        if self.poison in items and len(items) > 1:
            raise RuntimeError("the whole transaction fails")
        if self.poison in items:
            raise ValueError(f"bad item {self.poison}")
        return [Refused(item) if item.startswith("poor") else item.upper() for item in items]


def run_concurrently(journal: Journal, items: list[str]) -> list[str | BaseException]:
    """Submit ``items[0]``, and the rest while its commit is in progress."""
    commit = GroupCommit(journal.write)

    def submit(item: str) -> str | BaseException:
        try:
            return commit.submit(item)
        except Exception as error:  # the test compares outcomes
            return error

    with ThreadPoolExecutor(len(items)) as pool:
        first = pool.submit(submit, items[0])
        assert journal.first_started.wait(10)
        rest = [pool.submit(submit, item) for item in items[1:]]
        deadline = time.monotonic() + 10
        while _queued(commit) < len(rest):  # every later item waits behind the first
            assert time.monotonic() < deadline
            time.sleep(0.001)
        journal.release.set()
        return [first.result(10)] + [future.result(10) for future in rest]


def _queued(commit: GroupCommit[str, str]) -> int:
    with commit._lock:
        return len(commit._queue)


def test_writes_that_arrive_during_a_commit_share_the_next_one() -> None:
    journal = Journal()
    items = ["a", "b", "c", "d", "e"]
    outcomes = run_concurrently(journal, items)
    assert outcomes == ["A", "B", "C", "D", "E"]
    assert journal.groups[0] == ["a"]
    assert sorted(journal.groups[1]) == ["b", "c", "d", "e"]  # one transaction for four
    assert len(journal.groups) == 2


def test_each_caller_gets_its_own_refusal() -> None:
    outcomes = run_concurrently(Journal(), ["a", "poor-b", "c"])
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], Refused) and outcomes[1].args == ("poor-b",)


def test_a_failing_write_fails_alone() -> None:
    """The group is retried item by item: only the bad item's caller sees the error."""
    journal = Journal(poison="bad")
    outcomes = run_concurrently(journal, ["a", "b", "bad", "c"])
    assert outcomes[0] == "A" and outcomes[1] == "B" and outcomes[3] == "C"
    assert isinstance(outcomes[2], ValueError)
    assert ["bad"] in journal.groups and ["b"] in journal.groups  # retried alone


def test_a_lone_caller_commits_at_once() -> None:
    journal = Journal()
    journal.release.set()
    commit = GroupCommit(journal.write)
    assert commit.submit("x") == "X"
    with pytest.raises(Refused):
        commit.submit("poor-y")
    assert journal.groups == [["x"], ["poor-y"]]


def test_writes_arriving_while_the_leader_waits_for_its_turn_join_its_group() -> None:
    """The turn (another process's commit) is awaited before the group is taken."""
    journal = Journal()
    journal.release.set()
    turn = threading.Lock()
    commit = GroupCommit(journal.write, turn=lambda: turn)
    turn.acquire()  # another process is committing
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(commit.submit, item) for item in ("a", "b", "c")]
        deadline = time.monotonic() + 10
        while _queued(commit) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        turn.release()
        assert sorted(future.result(10) for future in futures) == ["A", "B", "C"]
    assert [sorted(group) for group in journal.groups] == [["a", "b", "c"]]


def test_when_the_turn_fails_every_waiting_caller_gets_the_error() -> None:
    """Nothing is written, and no write is left behind to be committed later."""
    journal = Journal()
    journal.release.set()
    commit: GroupCommit[str, str]

    class Broken:
        def __enter__(self) -> None:
            deadline = time.monotonic() + 10
            while _queued(commit) < 2:  # the second caller waits behind this one
                assert time.monotonic() < deadline
                time.sleep(0.001)
            raise OSError("the lock file is gone")

        def __exit__(self, *exc: object) -> None:
            pass

    commit = GroupCommit(journal.write, turn=Broken)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(commit.submit, "a")
        while _queued(commit) < 1:
            time.sleep(0.001)
        second = pool.submit(commit.submit, "b")
        for future in (first, second):
            with pytest.raises(OSError, match="lock file"):
                future.result(10)
    assert journal.groups == [] and _queued(commit) == 0
