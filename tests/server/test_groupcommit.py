"""Group commit: concurrent writes share transactions, each caller gets its own outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

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
    """Four writes arriving while the first commits are committed together, in one transaction."""
    journal = Journal()
    items = ["a", "b", "c", "d", "e"]
    outcomes = run_concurrently(journal, items)
    assert outcomes == ["A", "B", "C", "D", "E"]
    assert journal.groups[0] == ["a"]
    assert sorted(journal.groups[1]) == ["b", "c", "d", "e"]  # one transaction for four
    assert len(journal.groups) == 2


def test_each_caller_gets_its_own_refusal() -> None:
    """A write the transaction refuses fails its own caller alone; the others are committed."""
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
    """With nobody committing, a caller commits its write itself, without waiting for others."""
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


# --- the group committer as a Hypothesis state machine --------------------------------------
#
# Every write call blocks until a rule lets it end (committed, or crashed as a lost database
# would), and the turn is a FIFO lock that another process can hold or that can break (the
# writer lock file gone at shutdown: GroupCommit has no stop of its own). The rules wait,
# on one condition, until the threads reach the state the model predicts, so each step
# is deterministic: which calls wait in the queue, who waits for the turn, who holds it,
# and which items the blocked write call carries.

#: a ticket in the turn's line that no thread of this process holds: another process
ELSEWHERE = "elsewhere"
#: how long a rule waits for the threads to reach the model's state before failing
SETTLE = 3.0


class Crash(Exception):
    """The transaction failed as a whole (e.g. the database went away)."""

    def __init__(self, items: list[str]) -> None:
        super().__init__(items)
        self.items = items


class TurnGone(OSError):
    """The turn cannot be taken (the writer lock file is gone)."""


class Abandoned(Exception):
    """The run is over: every blocked thread is let go."""


class NotifyingLock:
    """GroupCommit's own lock, which notifies the test's condition when released, so that
    a rule can wait for a caller to join the queue without polling."""

    def __init__(self, condition: threading.Condition) -> None:
        self.lock = threading.Lock()
        self.condition = condition

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
        with self.condition:
            self.condition.notify_all()


def role(name: str | None) -> str | None:
    """What a thread name stands for in the model: a leading caller, write_now, elsewhere."""
    if name is None or name == ELSEWHERE:
        return name
    return "lead" if name.startswith("submit ") else "now"


class World:
    """The turn and the write function that GroupCommit drives, as the test controls them."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.line: list[str] = []  # who waits for the turn, first come first served
        self.holder: str | None = None
        self.broken = False
        self.abandoned = False
        self.calls = 0  # write calls so far
        self.blocked: tuple[int, str, tuple[str, ...]] | None = None  # call, thread, items
        self.verdict: bool | None = None  # the test's word on the blocked call: crash?
        self.committed: list[str] = []
        self.outcomes: dict[str, object] = {}  # thread name → what its call returned/raised

    @contextmanager
    def turn(self) -> Iterator[None]:
        me = threading.current_thread().name
        with self.condition:
            if self.broken:
                raise TurnGone("the writer lock file is gone")
            self.line.append(me)
            self.condition.notify_all()
            self.condition.wait_for(
                lambda: (
                    self.broken or self.abandoned or (self.holder is None and self.line[0] == me)
                )
            )
            self.line.remove(me)
            self.condition.notify_all()
            if self.abandoned:
                raise Abandoned
            if self.broken:
                raise TurnGone("the writer lock file is gone")
            self.holder = me
        try:
            yield
        finally:
            with self.condition:
                self.holder = None
                self.grant_elsewhere()
                self.condition.notify_all()

    def grant_elsewhere(self) -> None:
        if self.holder is None and self.line and self.line[0] == ELSEWHERE:
            self.holder = self.line.pop(0)

    def write(self, items: list[str]) -> list[str | BaseException]:
        with self.condition:
            self.calls += 1
            self.blocked = (self.calls, threading.current_thread().name, tuple(items))
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.verdict is not None or self.abandoned)
            crash, self.verdict, self.blocked = self.verdict, None, None
            self.condition.notify_all()
            if self.abandoned:
                raise Abandoned
            if crash:
                raise Crash(list(items))
            self.committed += [item for item in items if "refused" not in item]
        return [Refused(item) if "refused" in item else item.upper() for item in items]

    def start(self, name: str, call: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                outcome = call()
            except BaseException as error:  # the outcome is the test's to check
                outcome = error
            with self.condition:
                self.outcomes[name] = outcome
                self.condition.notify_all()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread


@dataclass
class Actor:
    """A leading caller or a write_now in the model: its group and its write calls to come
    (the current one first)."""

    role: str
    items: list[str]
    calls: list[list[str]] = field(default_factory=list)


def matches(item: str, outcome: object, expected: str) -> bool:
    if expected == "committed":
        return outcome == item.upper()
    if expected == "refused":
        return isinstance(outcome, Refused) and outcome.args == (item,)
    if expected == "crashed":  # the error of its own write, tried alone
        return isinstance(outcome, Crash) and outcome.items == [item]
    return isinstance(outcome, TurnGone)


class GroupCommitLife(RuleBasedStateMachine):
    """Callers, a batch writer (write_now), crashing transactions, another process's turn
    and a broken turn, in any order; the model predicts every group and every answer."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.commit: GroupCommit[str, str] = GroupCommit(self.world.write, turn=self.world.turn)
        self.commit._lock = NotifyingLock(self.world.condition)  # type: ignore[assignment]
        self.threads: list[threading.Thread] = []
        self.serial = 0
        # the model
        self.untaken: list[str] = []  # submitted, waiting in GroupCommit's queue
        self.line: list[str] = []
        self.holder: str | None = None
        self.broken = False
        self.calls = 0
        self.lead: Actor | None = None
        self.now: Actor | None = None
        self.nows: list[tuple[str, list[str]]] = []  # thread name, items
        self.committed: list[str] = []
        self.expected: dict[str, str] = {}  # item → committed/refused/crashed/gone
        self.submitted: list[str] = []
        self.done: set[str] = set()  # thread names whose call must have returned

    def teardown(self) -> None:
        """Let every blocked thread go; wait for them all together, not SETTLE each (a
        caller never answered, the bug a failing run shows, never ends)."""
        with self.world.condition:
            self.world.abandoned = True
            self.world.condition.notify_all()
        deadline = time.monotonic() + SETTLE
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # the model's steps, as GroupCommit promises them

    def _grant(self) -> None:
        while self.holder is None and self.line:
            self.holder = self.line.pop(0)
            actor = {"lead": self.lead, "now": self.now}.get(self.holder)
            if actor is None:
                return  # another process holds it
            if actor is self.lead:  # the group is taken once the turn is
                actor.items, self.untaken = self.untaken, []
            actor.calls = [list(actor.items)]
            self.calls += 1

    def _start_lead(self) -> None:
        if self.broken:  # everything waiting fails with the turn
            for item in self.untaken:
                self.expected[item] = "gone"
                self.done.add(f"submit {item}")
            self.untaken = []
        else:
            self.lead = Actor("lead", [])
            self.line.append("lead")

    def _fail_in_line(self) -> None:
        for waiting in self.line:
            if waiting == "lead":
                self.lead = None
                self._start_lead()  # its turn raises: the same as a fresh leader's
            elif waiting == "now":
                assert self.now is not None
                self.expected[self.nows[-1][0]] = "gone"
                self.done.add(self.nows[-1][0])
                self.now = None
        self.line = []

    def _write_ends(self, crash: bool) -> None:
        actor = self.lead if self.holder == "lead" else self.now
        assert actor is not None
        call = actor.calls.pop(0)
        if crash and len(call) > 1:  # rolled back: each item is tried alone
            actor.calls[:0] = [[item] for item in call]
        else:
            for item in call:
                if crash:
                    self.expected[item] = "crashed"
                elif "refused" in item:
                    self.expected[item] = "refused"
                else:
                    self.expected[item] = "committed"
                    self.committed.append(item)
        if actor.calls:
            self.calls += 1
            return
        self.holder = None
        if actor is self.lead:
            self.done.update(f"submit {item}" for item in actor.items)
            self.lead = None
            if self.untaken:  # handed over to a caller that waits
                self._start_lead()
        else:
            self.done.add(self.nows[-1][0])
            self.now = None
        self._grant()

    # waiting for the threads

    def _expected_state(self) -> dict[str, object]:
        actor = {"lead": self.lead, "now": self.now}.get(self.holder or "")
        return {
            "queue": tuple(self.untaken),
            "line": tuple(self.line),
            "holder": self.holder,
            "writing": None if actor is None else (self.calls, actor.role, tuple(actor.calls[0])),
        }

    def _observed_state(self) -> dict[str, object]:
        world = self.world
        with self.commit._lock:
            queue = tuple(waiting.item for waiting in self.commit._queue)
        writing = None
        if world.blocked is not None and world.verdict is None:
            call, name, items = world.blocked
            writing = (call, role(name), items)
        return {
            "queue": queue,
            "line": tuple(role(name) for name in world.line),
            "holder": role(world.holder),
            "writing": writing,
        }

    def _settle(self) -> None:
        """Wait until the threads are where the model says, and every call that must have
        returned has; every change is notified, so a wait that runs out is a failure."""
        expected = self._expected_state()
        deadline = time.monotonic() + SETTLE
        with self.world.condition:
            while not (
                self._observed_state() == expected and self.done <= set(self.world.outcomes)
            ):
                if not self.world.condition.wait(deadline - time.monotonic()):
                    assert self._observed_state() == expected
                    missing = self.done - set(self.world.outcomes)
                    raise AssertionError(f"not answered in {SETTLE} s: {sorted(missing)}")

    # the rules

    @rule(kind=st.sampled_from(["ok", "ok", "refused"]))
    def submit(self, kind: str) -> None:
        self.serial += 1
        item = f"{kind}-{self.serial}"
        self.submitted.append(item)
        self.untaken.append(item)
        self.threads.append(self.world.start(f"submit {item}", lambda: self.commit.submit(item)))
        if self.lead is None:  # nobody commits: this caller leads
            self._start_lead()
            self._grant()
        self._settle()

    @precondition(lambda self: self.now is None)
    @rule(kinds=st.lists(st.sampled_from(["ok", "refused"]), min_size=1, max_size=3))
    def write_now(self, kinds: list[str]) -> None:
        self.serial += 1
        items = [f"now{self.serial}-{kind}-{n}" for n, kind in enumerate(kinds)]
        name = f"now {self.serial}"
        self.nows.append((name, items))
        self.threads.append(self.world.start(name, lambda: self.commit.write_now(items)))
        if self.broken:
            self.expected[name] = "gone"
            self.done.add(name)
        else:
            self.now = Actor("now", items)
            self.line.append("now")
            self._grant()
        self._settle()

    @precondition(lambda self: self.holder in ("lead", "now"))
    @rule(crash=st.booleans())
    def end_write(self, crash: bool) -> None:
        """The blocked write call commits, or its transaction fails as a whole."""
        with self.world.condition:
            self.world.verdict = crash
            self.world.condition.notify_all()
        self._write_ends(crash)
        self._settle()

    @precondition(lambda self: not self.broken and ELSEWHERE not in (self.holder, *self.line))
    @rule()
    def another_process_wants_the_turn(self) -> None:
        with self.world.condition:
            self.world.line.append(ELSEWHERE)
            self.world.grant_elsewhere()
            self.world.condition.notify_all()
        self.line.append(ELSEWHERE)
        self._grant()
        self._settle()

    @precondition(lambda self: self.holder == ELSEWHERE)
    @rule()
    def another_process_is_done(self) -> None:
        with self.world.condition:
            self.world.holder = None
            self.world.condition.notify_all()
        self.holder = None
        self._grant()
        self._settle()

    @precondition(lambda self: not self.broken and ELSEWHERE not in (self.holder, *self.line))
    @rule()
    def the_turn_breaks(self) -> None:
        """The writer lock file is gone (the process stops): whoever waits for the turn
        fails, and so does every later leader, until the turn is mended."""
        with self.world.condition:
            self.world.broken = True
            self.world.condition.notify_all()
        self.broken = True
        self._fail_in_line()
        self._settle()

    @precondition(lambda self: self.broken)
    @rule()
    def the_turn_is_mended(self) -> None:
        with self.world.condition:
            self.world.broken = False
        self.broken = False

    @rule()
    def every_write_ends(self) -> None:
        """Another process gives the turn back and every write commits: nothing is left."""
        while self.holder is not None:
            if self.holder == ELSEWHERE:
                self.another_process_is_done()
            else:
                self.end_write(crash=False)
        assert self.lead is None and self.now is None and not self.untaken

    # what must hold after every step

    @invariant()
    def each_caller_is_told_its_own_outcome(self) -> None:
        for name, outcome in list(self.world.outcomes.items()):
            if name.startswith("submit "):
                item = name.removeprefix("submit ")
                assert item in self.expected, f"{item} answered before its write ended"
                assert matches(item, outcome, self.expected[item]), (item, outcome)
        for name, items in self.nows:
            if name not in self.world.outcomes:
                continue
            outcome = self.world.outcomes[name]
            if self.expected.get(name) == "gone":
                assert isinstance(outcome, TurnGone), outcome
                continue
            assert isinstance(outcome, list) and len(outcome) == len(items), outcome
            for item, one in zip(items, outcome, strict=True):
                assert matches(item, one, self.expected[item]), (item, one)

    @invariant()
    def committed_once_in_arrival_order(self) -> None:
        committed = self.world.committed
        assert len(committed) == len(set(committed)), f"committed twice: {committed}"
        assert committed == self.committed

    @invariant()
    def a_told_caller_was_committed_exactly_when_it_was_told_so(self) -> None:
        for name, outcome in list(self.world.outcomes.items()):
            if name.startswith("submit "):
                item = name.removeprefix("submit ")
                assert (item in self.world.committed) == (outcome == item.upper())

    @invariant()
    def nothing_is_lost_when_nobody_commits(self) -> None:
        if self.lead is None:
            assert not self.untaken
            unanswered = [i for i in self.submitted if f"submit {i}" not in self.world.outcomes]
            assert not unanswered, f"never answered: {unanswered}"

    @invariant()
    def the_leader_commits_its_own_write(self) -> None:
        holder = self.world.holder
        if self.lead is not None and self.lead.items and holder and role(holder) == "lead":
            assert holder.removeprefix("submit ") in self.lead.items


GroupCommitLife.TestCase.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None
)
test_group_commit_life = GroupCommitLife.TestCase
