"""Wait until tables and every one of their GSIs are ACTIVE.

botocore's `table_exists` waiter looks only at TableStatus (a table is ACTIVE long before a new
GSI finishes backfilling) and sleeps 20 s between polls; neither suits a deploy gate. Here the
delay between polls grows with the time already waited (a tenth of it, between MIN_DELAY and
MAX_DELAY): a local table that turns ACTIVE at 3 s is seen within ~0.3 s, an index that takes an
hour to backfill costs a poll every MAX_DELAY seconds.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Optional

from .errors import CheckerError
from .live import describe_tables
from .model import HOPELESS, MISSING, TableState, table_state
from .poll import CallableClock, Deadline, Proportional, poll

MIN_DELAY = 0.05
MAX_DELAY = 10.0
DELAY_FRACTION = 0.1
PROPORTIONAL = Proportional(DELAY_FRACTION, MIN_DELAY, MAX_DELAY)


def next_delay(elapsed: float) -> float:
    return PROPORTIONAL.delay(0, elapsed)


@dataclass(frozen=True)
class WaitResult:
    states: list
    seconds: float

    @property
    def ready(self) -> bool:
        return all(s.ready for s in self.states)

    def not_ready(self) -> list:
        return [s for s in self.states if not s.ready]


ProgressCallback = Callable[[TableState, Optional[TableState], float], None]


GRACE_SECONDS = 30.0       # a table nobody creates is named after this, not after the whole timeout
HEARTBEAT_SECONDS = 30.0


class Watch:
    """The one polling loop's eyes, shared by `wait` and `apply`: each look describes the tables
    asked about concurrently, keeps each one's last state, reports every transition once, and
    knows when a table is lost (deleted after it was seen, or in a state that never becomes
    ACTIVE), so both commands apply the same state rules."""

    def __init__(self, client, on_change: Optional[ProgressCallback] = None,
                 clock: Callable[[], float] = time.monotonic, indexes: Optional[dict] = None):
        self.client = client
        self.indexes = indexes or {}     # {table: GSI names its spec declares}: one absent is not ready
        self.on_change = on_change
        self.clock = clock
        self.start = clock()
        self.states: dict = {}
        self.descriptions: dict = {}
        self.seen: set = set()

    def look(self, names: Iterable[str]) -> dict:
        """{name: TableState} of a fresh DescribeTable of each name."""
        return {name: self.record(name, description)
                for name, description in describe_tables(self.client, list(names)).items()}

    def record(self, name: str, description: Optional[dict]) -> TableState:
        state = table_state(name, description, self.indexes.get(name, ()))
        previous = self.states.get(name)
        # Report transitions, and a first sighting only when it is not ready yet.
        if self.on_change and state != previous and (previous is not None or not state.ready):
            self.on_change(state, previous, self.clock() - self.start)
        self.states[name], self.descriptions[name] = state, description
        if description is not None:
            self.seen.add(name)
        return state

    def lost(self, name: str) -> Optional[str]:
        """Why the table will never become ACTIVE ("deleted", "DELETING", ...), or None."""
        state = self.states.get(name)
        if state is None:
            return None
        if state.status in HOPELESS:
            return state.status
        return "deleted" if state.status == MISSING and name in self.seen else None

    def never_seen(self, names: Iterable[str]) -> list:
        return [n for n in names if n not in self.seen and n in self.states]


def wait_until_active(client, names: Iterable[str], timeout: float,
                      on_change: Optional[ProgressCallback] = None,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep, grace: float = GRACE_SECONDS,
                      heartbeat: Optional[Callable[[float, list], None]] = None,
                      indexes: Optional[dict] = None, apply_command: str = "checker apply") -> WaitResult:
    """Poll until every named table and its GSIs are ACTIVE, or until `timeout` seconds pass.

    Returns the last states seen; the caller decides what a timeout means. A table that is being
    deleted or archived will never become ACTIVE, and one seen and then gone was deleted: both are
    an error at once. A table that does not exist and that nobody creates within `grace` seconds
    is an error too. `on_change(new_state, previous_state_or_None, elapsed)` is called whenever a
    state changes. `indexes` ({table: GSI names}): the GSIs the specs declare; one that does not
    exist and that nobody creates within `grace` seconds is an error like a table's.
    """
    names = list(dict.fromkeys(names))
    time_source = CallableClock(clock, sleep)
    watch = Watch(client, on_change, clock, indexes)
    beats = [HEARTBEAT_SECONDS]

    def look() -> WaitResult:
        watch.look([n for n in names if not (n in watch.states and watch.states[n].ready)])
        return WaitResult([watch.states[n] for n in names], clock() - watch.start)

    def each(result: WaitResult, elapsed: float) -> None:
        """A lost table or one nobody creates ends the wait at once; a long one beats."""
        for name in names:
            if (why := watch.lost(name)) == "deleted":
                raise CheckerError(f"table {name} was deleted while being waited on")
            if why:
                raise CheckerError(f"table {name} is {why}; it will not become ACTIVE")
        if (missing := watch.never_seen(names)) and result.seconds >= grace:
            raise CheckerError(f"table(s) {', '.join(missing)} do not exist and nobody created them within "
                               f"{grace:g}s: run `{apply_command}` (or pass a longer --grace)")
        absent = [f"{s.name} ({', '.join(s.missing_indexes)})" for s in result.states if s.missing_indexes]
        if absent and result.seconds >= grace:
            raise CheckerError(f"index(es) of {'; '.join(absent)} do not exist and nobody created them within "
                               f"{grace:g}s: run `{apply_command}` (or pass a longer --grace)")
        if heartbeat and beats[0] <= result.seconds < timeout:
            heartbeat(result.seconds, result.not_ready())
            beats[0] += HEARTBEAT_SECONDS

    deadline = Deadline(timeout, started=watch.start, clock=time_source)
    waited = poll(look, lambda result: result.ready, PROPORTIONAL, deadline, each=each, clock=time_source)
    assert waited.value is not None   # poll looks at least once
    return waited.value


def timeout_message(result: WaitResult, timeout: float) -> str:
    pending = "; ".join(f"{s.name} ({s.summary()})" for s in result.not_ready())
    return f"timed out after {timeout:g}s; still not ACTIVE: {pending}"
