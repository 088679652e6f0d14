"""Carry out the automatic changes of a plan, and nothing else, as one control loop.

Every table's first change is sent at once (bounded by `concurrency`, the number of control-plane
operations in flight); one shared polling loop then describes everything in flight, concurrently,
and a table's next change (its next GSI, TTL, PITR) is sent the moment that table and all its GSIs
are ACTIVE, because DynamoDB allows one index build at a time. Its looks go through `wait.Watch`,
the same eyes and state rules as `checker wait` (lost, deleted, backfilling). The loop runs on one thread, so
Ctrl-C stops it at once, naming what is still in flight on AWS.

Nothing here deletes a table or an index or touches a key schema: the plan never contains such a
change as automatic, and this module only knows CreateTable, UpdateTable, UpdateTimeToLive,
UpdateContinuousBackups and TagResource. Afterwards `verify_applied` re-reads what changed,
because a backend may acknowledge a change it does not make.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .diff import diff_table
from .errors import AwsError, Interrupted, call
from .live import in_parallel, read_table
from .model import MIGRATIONS, Action, Change, ExpectedTable, TableState
from .policy import hold_reason
from .poll import Backoff, CallableClock, Deadline, poll
from .results import DEFAULT_CONCURRENCY, ApplyResult, ChangeOutcome, Outcome
from .wait import ProgressCallback, Watch, next_delay

if TYPE_CHECKING:
    from .environment import Environment

ALLOWED_OPERATIONS = {"CreateTable", "UpdateTable", "UpdateTimeToLive", "UpdateContinuousBackups", "TagResource"}
RETRY_BACKOFF = Backoff(2.0, 30.0)      # a refused change sent again: 2 s, 4 s, ... 30 s
SETTLE_POLLS = Backoff(0.5, 5.0)        # re-reads of what AWS makes eventually consistent
Log = Callable[[str], None]

# LimitExceededException means several things; only some clear by waiting. Each known meaning by
# the text DynamoDB sends (AWS's "Service, account, and table quotas in Amazon DynamoDB" and the
# messages users report): (pattern, retryable, what it means). A message not listed fails at once
# with DynamoDB's own text: a 30-minute --timeout is never spent on a limit that does not clear.
LIMIT_EXCEEDED_MEANINGS = (
    (re.compile(r"can be created, updated,? or deleted simultaneously|concurrent (table|control[- ]plane) operations",
                re.IGNORECASE), True, "DynamoDB limit on concurrent table operations reached"),
    (re.compile(r"online index(es)? can be created or deleted simultaneously", re.IGNORECASE), True,
     "another index of this table is being built or deleted (one at a time per table)"),
    (re.compile(r"decreases are limited", re.IGNORECASE), False,
     "DynamoDB's daily limit on capacity decreases is reached, try again tomorrow (UTC)"),
    (re.compile(r"PayPerRequest mode are limited|billing mode .*limited", re.IGNORECASE), False,
     "DynamoDB limits how often a table may switch to on-demand: try again after the period it names"),
)


def limit_exceeded_meaning(message: str) -> tuple:
    """(retryable, what it means) of a LimitExceededException's message."""
    for pattern, retryable, meaning in LIMIT_EXCEEDED_MEANINGS:
        if pattern.search(message or ""):
            return retryable, meaning
    return False, "a DynamoDB limit that waiting does not clear (an account quota?)"


def retry_reason(change: Change, code: str, message: str) -> Optional[str]:
    """Why this error is worth waiting out (a log line), or None when it is final."""
    if code == "LimitExceededException":
        retryable, meaning = limit_exceeded_meaning(message)
        return meaning if retryable else None
    if code == "ContinuousBackupsUnavailableException" and change.operation == "UpdateContinuousBackups":
        return "continuous backups are not available yet on a new table"
    if code == "ResourceInUseException" and change.operation != "CreateTable":
        return "the table is busy with another operation"
    return None


@dataclass
class TableRun:
    """One table's changes: those still to send, the one in flight, and what was last seen."""

    name: str
    queue: list
    current: Optional[Change] = None
    current_status: Outcome = Outcome.APPLIED
    sent_at: float = 0.0
    not_before: float = 0.0           # backoff: the next send waits until then
    refusals: int = 0                 # refused and retried since its last start (its backoff)
    tries: int = 0                    # sends of the first queued change
    first_try_at: float = 0.0
    state: Optional[TableState] = None  # as seen since the last send; None until the next look
    outcomes: list = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.current is None and not self.queue

    def fail(self, change: Change, message: str, seconds: float = 0.0) -> None:
        self.outcomes.append(ChangeOutcome(change, Outcome.FAILED, message, seconds))
        self.outcomes += [ChangeOutcome(c, Outcome.NOT_RUN, f"skipped: an earlier change to {c.table} failed")
                          for c in self.queue if c is not change]
        self.queue, self.current = [], None


class ControlLoop:
    def __init__(self, client, runs: list, deadline: float, concurrency: int,
                 on_change: Optional[ProgressCallback], log: Log, clock, sleep):
        self.client = client
        self.watch = Watch(client, on_change, clock)
        self.runs = runs
        self.deadline = deadline
        self.concurrency = concurrency
        self.log = log
        self.clock = clock
        self.sleep = sleep

    def in_flight(self) -> list:
        return [r for r in self.runs if r.current is not None]

    def run(self) -> None:
        try:
            while True:
                self.send_what_can_go()
                if all(r.finished for r in self.runs):
                    return
                now = self.clock()
                if now >= self.deadline:
                    self.time_out()
                    return
                if self.poll():
                    continue  # a table became ready: its next change goes now, not after a sleep
                self.sleep(self.pause(now))
        except KeyboardInterrupt:
            raise Interrupted([r.current for r in self.in_flight()]) from None

    def pause(self, now: float) -> float:
        """Until the next poll (fast just after a send, slower as a build goes on) or the end of
        a backoff, whichever comes first; never past the deadline."""
        backoffs = [r.not_before - now for r in self.runs if r.queue and r.current is None and r.not_before > now]
        in_flight = self.in_flight()
        pause = next_delay(min(now - r.sent_at for r in in_flight)) if in_flight else float("inf")
        pause = min([pause, *backoffs]) if backoffs else pause
        return max(0.0, min(pause if pause != float("inf") else next_delay(0), self.deadline - now))

    # -- sending ----------------------------------------------------------------------------
    def send_what_can_go(self) -> None:
        """Every table whose next change may go now, sent concurrently (200 CreateTables at 20 ms
        a call are out in a few round trips, not four seconds), within the in-flight bound."""
        ready: list = []
        room = self.concurrency - len(self.in_flight())
        for run in self.runs:
            if len(ready) >= room:
                break
            if run.current is not None or not run.queue or self.clock() < run.not_before:
                continue
            if run.queue[0].operation != "CreateTable" and not (run.state and run.state.ready):
                continue  # never UpdateTable while the table or an index is building: poll first
            ready.append(run)
        in_parallel(lambda run: self.send(run, run.queue[0]), ready)

    def send(self, run: TableRun, change: Change) -> None:
        now = self.clock()
        if change.operation not in ALLOWED_OPERATIONS:
            run.fail(change, f"refusing to run {change.operation} on {change.table}: not an allowed operation")
            return
        if run.tries == 0:
            run.first_try_at = now
            self.log(f"{change.table}: {change.action}: {change.detail}")
        if change.action == Action.CREATE_INDEX and self.index_exists(run, change):
            self.log(f"{change.table}: index {change.target} is already being created elsewhere; waiting for it")
            return self.started(run, change, Outcome.ALREADY_IN_PROGRESS)
        run.tries += 1
        try:
            call(self.client, change.operation, "dynamodb", **change.params)
        except AwsError as exc:
            return self.refused(run, change, exc)
        self.started(run, change, Outcome.APPLIED)

    def started(self, run: TableRun, change: Change, status: Outcome) -> None:
        run.queue.pop(0)
        run.current, run.current_status = change, status
        run.sent_at, run.tries, run.refusals = self.clock(), 0, 0
        run.state = None  # unknown until the next poll: the change may have started building

    def refused(self, run: TableRun, change: Change, exc: AwsError) -> None:
        now = self.clock()
        if exc.code == "ResourceInUseException" and change.operation == "CreateTable":
            self.log(f"{change.table}: already being created elsewhere; waiting for it")
            return self.started(run, change, Outcome.ALREADY_IN_PROGRESS)
        if change.action == Action.CREATE_INDEX and self.index_exists(run, change, fresh=True):
            self.log(f"{change.table}: index {change.target} was created elsewhere meanwhile; waiting for it")
            return self.started(run, change, Outcome.ALREADY_IN_PROGRESS)
        retryable, meaning = limit_exceeded_meaning(exc.aws_message)
        if exc.code == "LimitExceededException" and not retryable:
            return run.fail(change, f"{change.table}: {meaning}: LimitExceededException: {exc.aws_message}",
                            now - run.first_try_at)
        if exc.code == "ResourceInUseException" and run.tries >= 2 and self.table_idle(run):
            # "in use" while the table and every index are ACTIVE is no busy table: the request
            # itself is refused (a stream re-enabled too soon), and waiting does not clear it
            return run.fail(change, f"{change.table}: DynamoDB refused it with ResourceInUseException while the "
                                    f"table and its indexes are ACTIVE: {exc.aws_message}", now - run.first_try_at)
        reason = retry_reason(change, exc.code, exc.aws_message)
        delay = RETRY_BACKOFF.delay(run.refusals, 0.0)
        if reason and now + delay < self.deadline:
            self.log(f"{change.table}: {reason}; retrying in {delay:g}s")
            run.not_before = now + delay
            run.refusals += 1
            return
        if reason:
            return run.fail(change, f"{change.table}: {reason} ({exc.code}); gave up after {run.tries} call(s) "
                                    f"over {now - run.first_try_at:.0f}s, at the --timeout", now - run.first_try_at)
        run.fail(change, f"{change.table}: {exc}", now - run.first_try_at)

    def table_idle(self, run: TableRun) -> bool:
        run.state = self.watch.look([run.name])[run.name]
        return run.state.ready

    def index_exists(self, run: TableRun, change: Change, fresh: bool = False) -> bool:
        if fresh:
            run.state = self.watch.look([run.name])[run.name]
        indexes = (self.watch.descriptions.get(run.name) or {}).get("GlobalSecondaryIndexes", [])
        return any(i.get("IndexName") == change.target for i in indexes)

    # -- polling ----------------------------------------------------------------------------
    def poll(self) -> bool:
        """Describe every table in flight or about to be changed; True when one became ready
        with more to send."""
        names = [r.name for r in self.runs if r.current is not None
                 or (r.queue and r.queue[0].operation != "CreateTable" and not (r.state and r.state.ready))]
        if not names:
            return False
        states = self.watch.look(names)
        progressed = False
        for run in self.runs:
            if run.name not in states:
                continue
            state = run.state = states[run.name]
            if why := self.watch.lost(run.name):
                run.fail(run.current or run.queue[0], f"table {run.name} was {why} while apply waited on it")
                continue
            if run.current is not None and state.ready:
                run.outcomes.append(ChangeOutcome(run.current, run.current_status, "", self.clock() - run.sent_at))
                run.current = None
                progressed = progressed or bool(run.queue)
        return progressed

    def time_out(self) -> None:
        for run in self.runs:
            change = run.current or (run.queue[0] if run.queue else None)
            if change is not None:
                where = f"still {run.state.summary()}" if run.state else "not sent"
                run.fail(change, f"timed out: {change.table} {where} at the --timeout")


# DynamoDB allows 500 simultaneous control-plane operations per account, 250 while the tables
# being created have secondary indexes ("Service, account, and table quotas in Amazon DynamoDB")
CONTROL_PLANE_LIMIT = 500
CONTROL_PLANE_LIMIT_WITH_INDEXES = 250


def control_plane_limit(changes: list) -> int:
    """The in-flight bound apply defaults to: DynamoDB's own, for the creates in this plan."""
    indexed = any(c.operation == "CreateTable" and (c.params.get("GlobalSecondaryIndexes")
                                                    or c.params.get("LocalSecondaryIndexes")) for c in changes)
    return CONTROL_PLANE_LIMIT_WITH_INDEXES if indexed else CONTROL_PLANE_LIMIT


def apply_changes(client, changes: list, timeout: float = 1800.0, concurrency: Optional[int] = DEFAULT_CONCURRENCY,
                  on_change: Optional[ProgressCallback] = None, log: Log = lambda message: None,
                  sleep: Callable[[float], None] = time.sleep, allow_capacity_changes: bool = False,
                  clock: Callable[[], float] = time.monotonic) -> ApplyResult:
    """Apply every automatic change not held back; manual ones are returned as `manual`, held
    ones (capacity changes without the flag, tables that need a person) as `held`. Raises
    Interrupted on Ctrl-C, naming what is in flight."""
    changes = [c for c in changes if c.pending]
    held = {id(c): reason for c in changes if c.automatic
            and (reason := hold_reason(c, changes, allow_capacity_changes))}
    by_table: dict = {}
    for change in changes:
        if change.automatic and id(change) not in held:
            by_table.setdefault(change.table, []).append(change)
    runs = [TableRun(name, queue) for name, queue in by_table.items()]
    bound = min(concurrency, control_plane_limit(changes)) if concurrency else control_plane_limit(changes)
    loop = ControlLoop(client, runs, clock() + timeout, max(1, bound), on_change, log, clock, sleep)
    loop.run()
    done = {id(o.change): o for run in runs for o in run.outcomes}
    done.update({key: ChangeOutcome(c, Outcome.HELD, held[key]) for c in changes if (key := id(c)) in held})
    seen = {run.name: loop.watch.descriptions[run.name] for run in runs
            if run.finished and run.state is not None and run.state.ready and run.name in loop.watch.descriptions}
    return ApplyResult([done.get(id(c)) or not_applied(c) for c in changes], seen)


def not_applied(change: Change) -> ChangeOutcome:
    if change.action in MIGRATIONS:
        return ChangeOutcome(change, Outcome.MIGRATE, "made by checker migrate")
    return ChangeOutcome(change, Outcome.MANUAL, "needs a manual step")


# What DynamoDB documents as eventually consistent after a change: TagResource is asynchronous and
# ListTagsOfResource lags; TTL passes through ENABLING; PITR takes a while after a create.
SETTLING_TARGETS = {"Tags", "TTL", "PITR"}
SETTLE_SECONDS = 30.0


def verify_applied(client, tables: list, result: ApplyResult, settle: float = SETTLE_SECONDS,
                   clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> ApplyResult:
    """Re-read every table apply changed, whatever else failed, and diff it again: a change
    DynamoDB acknowledged but did not make (a backend that drops a GSI create) is
    `not-in-effect`, never a silent success; a difference no planned change covers (a table
    someone else created with other keys) is a failure or a manual step too. What AWS makes
    eventually consistent is re-read, with backoff, until it shows or `settle` seconds pass;
    nothing else is waited for."""
    made = {o.change.key for o in result.made}
    touched = {key[0] for key in made}
    by_name = {t.name: t for t in tables if t.name in touched}
    def reread(names: list, seen: dict) -> dict:   # concurrently, as plan reads: 200 tables in a few round trips
        return dict(zip(names, in_parallel(lambda name: pending_changes(client, by_name[name], seen.get(name)), names),
                        strict=True))
    remaining = reread(list(by_name), result.seen)   # apply's last look at a table, ready, is a re-read already
    time_source = CallableClock(clock, sleep)

    def lagging() -> list:
        return [name for name, changes in remaining.items()
                if any(key in made and key[2] in SETTLING_TARGETS for key in changes)]
    looks = [0]

    def look_again() -> list:   # the first look is the re-read above; then only what still lags
        if looks[0]:
            remaining.update(reread(lagging(), {}))
        looks[0] += 1
        return lagging()
    poll(look_again, lambda left: not left, SETTLE_POLLS, Deadline(settle, clock=time_source), clock=time_source)
    still = {key: change for changes in remaining.values() for key, change in changes.items()}
    outcomes = []
    for outcome in result.outcomes:
        left = still.pop(outcome.change.key, None)
        if outcome.status.made and left is not None:
            waited = f" (re-read for {settle:g}s)" if left.target in SETTLING_TARGETS else ""
            outcome = ChangeOutcome(outcome.change, Outcome.NOT_IN_EFFECT,
                                    f"re-read after apply{waited}: {left.detail}", outcome.seconds)
        outcomes.append(outcome)
    # differences on a changed table that no planned change covers: a CreateTable whose GSI the
    # backend left out, or a table someone else created at the same moment with other keys
    outcomes += [ChangeOutcome(c, Outcome.NOT_IN_EFFECT if c.automatic else Outcome.MANUAL,
                               f"re-read after apply: {c.detail}") for c in still.values()]
    return ApplyResult(outcomes, result.seen)


def pending_changes(client, table: ExpectedTable, description: Optional[dict] = None) -> dict:
    return {c.key: c for c in diff_table_or_create(client, table, description) if c.pending}


def diff_table_or_create(client, table: ExpectedTable, description: Optional[dict] = None) -> list:
    live = read_table(client, table, description)
    if not live.exists:
        return [Change(table.name, Action.CREATE_TABLE, "table does not exist after apply", True)]
    return diff_table(table, live)


def apply_plan(environment: Environment, changes: list, timeout: float = 1800,
               concurrency: Optional[int] = DEFAULT_CONCURRENCY, allow_capacity_changes: bool = False,
               on_change: Optional[ProgressCallback] = None, log: Callable[[str], None] = lambda line: None) -> tuple:
    """Make a plan's automatic changes, wait for every table and GSI of the environment, then
    re-read what changed: (ApplyResult, WaitResult). Every table that exists is waited for and
    every change re-read, whatever else failed: a failed change must not hide that another,
    reported made, is not in effect."""
    from .model import table_state
    from .wait import WaitResult, wait_until_active
    client = environment.dynamodb()
    result = apply_changes(client, changes, timeout=timeout, concurrency=concurrency, on_change=on_change,
                           log=log, allow_capacity_changes=allow_capacity_changes)
    never_created = {o.change.table for o in [*result.failed, *result.held] if o.change.action == Action.CREATE_TABLE} | {
        c.table for c in changes if c.action == Action.MIGRATE_TABLE}   # checker migrate (or a template's deploy) creates those
    # what apply's loop last saw ready after its changes needs no second look; the rest is waited for
    names = environment.names
    unseen = [n for n in names if n not in never_created and n not in result.seen]
    waited = wait_until_active(client, unseen, timeout, on_change)
    states = {s.name: s for s in waited.states} | {n: table_state(n, d) for n, d in result.seen.items()}
    waited = WaitResult([states[n] for n in names if n in states], waited.seconds)
    if waited.ready:
        result = verify_applied(client, environment.tables, result)
    return result, waited
