"""The one polling primitive, and time as every loop of checker sees it.

Every wait of checker is the same loop: read the state (`refresh`), stop when it is what was
waited for (`done`) or can never become it (`lost`), else sleep a delay its policy gives and
read again, never past a `Deadline`. `wait` and `apply` (tables and indexes ACTIVE), the copy's
backoff on throttling, the stream's polls, the export and import waits, and the switch's wait for
the function's update are all `poll` with their own refresh and policy.

Time comes from a `Clock` (now, sleep, the wall time, and a sleep an Event cuts short), so a
test runs every loop on a `SimulatedClock` instead of sleeping for real. The ground floor:
nothing of checker but its errors is imported here.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, Optional, Protocol, TypeVar

T = TypeVar("T")


# -- time -----------------------------------------------------------------------------------
class Clock:
    """The real clock. Each method looks `time` up when called, so one monkeypatch of
    `time.sleep` reaches every loop."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def wait(self, event: Optional[threading.Event], seconds: float) -> bool:
        """Sleep `seconds`, cut short when `event` is set: whether it was."""
        if event is None:
            self.sleep(seconds)
            return False
        return event.wait(max(0.0, seconds))


REAL = Clock()


class SimulatedClock(Clock):
    """A clock that moves only when slept on, or by `step` at each reading (a copy that never
    sleeps still sees its --timeout come): every schedule exact, and nothing sleeps for real."""

    def __init__(self, start: float = 0.0, step: float = 0.0, wall_start: float = 1_700_000_000.0):
        self.time = start
        self.step = step
        self.wall_offset = wall_start - start
        self.slept: list = []
        self.lock = threading.Lock()

    def now(self) -> float:
        with self.lock:
            now = self.time
            self.time += self.step
            return now

    def wall(self) -> float:
        with self.lock:
            return self.time + self.wall_offset

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.time += max(0.0, seconds)

    def wait(self, event: Optional[threading.Event], seconds: float) -> bool:
        if event is not None and event.is_set():
            return True
        self.sleep(seconds)
        return bool(event is not None and event.is_set())


class CallableClock(Clock):
    """A clock made of two callables (the `clock=` and `sleep=` parameters of older signatures)."""

    def __init__(self, now: Callable[[], float], sleep: Callable[[float], None]):
        self._now, self._sleep = now, sleep

    def now(self) -> float:
        return self._now()

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)


# -- deadlines ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Deadline:
    """`seconds` from when it was made, on its clock. The command's --timeout is one (armed, it
    also bounds every AWS connection: deadline.py); a migration's --timeout is another."""

    seconds: float
    started: Optional[float] = None
    clock: Clock = field(default=REAL, compare=False, repr=False)
    # endpoint URL -> why it cannot be reached: found out once a run, then every later call to it
    # fails at once with the same reason instead of waiting out its own timeouts again
    unreachable: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if self.started is None:
            object.__setattr__(self, "started", self.clock.now())

    @property
    def at(self) -> float:
        """When it passes, on its clock."""
        return float(self.started or 0.0) + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock.now())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def bound(self, seconds: float) -> float:
        """`seconds`, or what is left of the deadline when that is less (never below 0.1 s)."""
        return max(0.1, min(seconds, self.remaining()))

    def arm(self) -> Deadline:
        """Make this the command's deadline for every connection (see deadline.Watchdog)."""
        from .deadline import WATCHDOG
        WATCHDOG.arm(self)
        return self

    def check(self, what: str) -> None:
        from .deadline import DEADLINE_EXCEEDED
        from .errors import AwsError
        if self.expired:
            raise AwsError(f"--timeout: {self.seconds:g}s passed before {what} could be sent; nothing more is "
                           "sent (a longer --timeout, or look at why AWS is slow)", DEADLINE_EXCEEDED)

    def guard(self, client) -> None:
        from .deadline import guard
        guard(self, client)


def within(seconds: Optional[float], clock: Clock = REAL) -> Optional[Deadline]:
    """A Deadline `seconds` from now, or None for none."""
    return Deadline(seconds, clock=clock) if seconds is not None else None


def first(*deadlines: Optional[Deadline]) -> Optional[Deadline]:
    """The deadline that passes first (None: none of them)."""
    given = [d for d in deadlines if d is not None]
    return min(given, key=lambda d: d.at) if given else None


# -- delay policies -------------------------------------------------------------------------
class DelayPolicy(Protocol):
    def delay(self, attempt: int, elapsed: float) -> float:
        """Seconds to sleep after look number `attempt` (0 first), `elapsed` seconds in."""
        ...


@dataclass(frozen=True)
class Backoff:
    """`first`, doubling (by `factor`) up to `cap`; Backoff(x, x) is a fixed interval."""

    first: float
    cap: float
    factor: float = 2.0

    def delay(self, attempt: int, elapsed: float) -> float:
        return min(self.cap, self.first * self.factor ** min(attempt, 64))


@dataclass(frozen=True)
class Proportional:
    """A share of the time already waited, between `minimum` and `maximum`: a table that turns
    ACTIVE at 3 s is seen within ~0.3 s, an index that takes an hour costs a look every 10 s."""

    fraction: float = 0.1
    minimum: float = 0.05
    maximum: float = 10.0

    def delay(self, attempt: int, elapsed: float) -> float:
        return min(self.maximum, max(self.minimum, elapsed * self.fraction))


# -- the loop -------------------------------------------------------------------------------
class Outcome(str, Enum):
    DONE = "done"            # what was waited for
    LOST = "lost"            # it never will be (`why` says why)
    TIMED_OUT = "timed-out"  # the deadline passed first
    STOPPED = "stopped"      # the stop event was set


@dataclass(frozen=True)
class Polled(Generic[T]):
    value: Optional[T]
    outcome: Outcome
    elapsed: float
    looks: int
    why: str = ""

    @property
    def done(self) -> bool:
        return self.outcome is Outcome.DONE


def poll(refresh: Callable[[], T], done: Callable[[T], bool], delay: DelayPolicy,
         deadline: Optional[Deadline] = None, lost: Optional[Callable[[T], Optional[str]]] = None,
         each: Optional[Callable[[T, float], None]] = None, clock: Clock = REAL,
         stop: Optional[threading.Event] = None) -> Polled[T]:
    """Look (`refresh`) until `done(value)`, `lost(value)` gives a reason, `deadline` passes or
    `stop` is set; between looks sleep what `delay` says, never past the deadline. `each(value,
    elapsed)` sees every look that did not end the loop (progress, a heartbeat; it may raise).
    The last value is returned with the outcome: what a timeout or a loss means is the caller's."""
    started = clock.now()
    looks = 0
    while True:
        value = refresh()
        looks += 1
        elapsed = clock.now() - started
        if done(value):
            return Polled(value, Outcome.DONE, elapsed, looks)
        why = lost(value) if lost is not None else None
        if why:
            return Polled(value, Outcome.LOST, elapsed, looks, why)
        if each is not None:
            each(value, elapsed)
        if stop is not None and stop.is_set():
            return Polled(value, Outcome.STOPPED, elapsed, looks)
        pause = delay.delay(looks - 1, elapsed)
        if deadline is not None:
            if deadline.expired:
                return Polled(value, Outcome.TIMED_OUT, elapsed, looks)
            pause = min(pause, deadline.remaining())
        if clock.wait(stop, pause):
            return Polled(value, Outcome.STOPPED, clock.now() - started, looks)
