"""Carry out the automatic changes of a plan, and nothing else.

Tables are worked on concurrently (bounded); within a table, changes run one at a time, each
waited on until the table and all its GSIs are ACTIVE, because DynamoDB allows one index build at
a time. Nothing here deletes a table or an index or touches a key schema: the plan never contains
such a change as automatic, and this module only knows CreateTable, UpdateTable,
UpdateTimeToLive, UpdateContinuousBackups and TagResource. Afterwards `verify_applied` re-reads
what changed, because a backend may acknowledge a change it does not make.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from .diff import Change, ExpectedTable, diff_table
from .errors import AwsError, CheckerError, call
from .live import read_table
from .results import ApplyResult, ChangeOutcome, Outcome
from .wait import ProgressCallback, timeout_message, wait_until_active

ALLOWED_OPERATIONS = {"CreateTable", "UpdateTable", "UpdateTimeToLive", "UpdateContinuousBackups", "TagResource"}
# botocore's standard retry mode already retries LimitExceededException a few times within ~20 s;
# DynamoDB's limit on concurrent table operations can outlast that, so keep backing off until the
# deadline. The same code also means "no more capacity decreases today": that one never clears
# within a deploy, so it fails at once with DynamoDB's message.
LIMIT_BACKOFF_START = 2.0
LIMIT_BACKOFF_MAX = 30.0
CAPACITY_FLAG = "--allow-capacity-changes"


def is_daily_decrease_limit(message: str) -> bool:
    return "decrease" in message.lower()


def retry_until_deadline(change: Change, code: str, message: str) -> Optional[str]:
    """Why this error is worth waiting out (a log line), or None when it is final."""
    if code == "LimitExceededException" and not is_daily_decrease_limit(message):
        return "DynamoDB limit on concurrent table operations reached"
    if code == "ContinuousBackupsUnavailableException" and change.operation == "UpdateContinuousBackups":
        return "continuous backups are not available yet on a new table"
    return None


class TableWorker:
    """Applies one table's changes in order, waiting for ACTIVE after each."""

    def __init__(self, client, deadline: float, on_change: Optional[ProgressCallback],
                 log: Callable[[str], None], sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.deadline = deadline
        self.on_change = on_change
        self.log = log
        self.sleep = sleep

    def run(self, changes: list) -> list:
        outcomes = []
        for position, change in enumerate(changes):
            started = time.monotonic()
            try:
                status = self._apply(change)
                self._wait(change.table)
            except CheckerError as exc:
                outcomes.append(ChangeOutcome(change, Outcome.FAILED, str(exc), time.monotonic() - started))
                outcomes += [ChangeOutcome(c, Outcome.NOT_RUN, f"skipped: an earlier change to {c.table} failed")
                             for c in changes[position + 1:]]
                return outcomes
            outcomes.append(ChangeOutcome(change, status, "", time.monotonic() - started))
        return outcomes

    def _apply(self, change: Change) -> Outcome:
        if change.operation not in ALLOWED_OPERATIONS:
            raise CheckerError(f"refusing to run {change.operation} on {change.table}: not an allowed operation")
        if change.operation != "CreateTable":
            # Never call UpdateTable while the table or an index is still building.
            self._wait(change.table)
        self.log(f"{change.table}: {change.action}: {change.detail}")
        delay = LIMIT_BACKOFF_START
        while True:
            try:
                call(self.client, change.operation, "dynamodb", **change.params)
                return Outcome.APPLIED
            except AwsError as exc:
                if exc.code == "ResourceInUseException" and change.operation == "CreateTable":
                    self.log(f"{change.table}: already being created elsewhere; waiting for it")
                    return Outcome.ALREADY_IN_PROGRESS
                if exc.code == "LimitExceededException" and is_daily_decrease_limit(exc.aws_message):
                    raise CheckerError(f"{change.table}: DynamoDB's daily limit on capacity decreases is reached, "
                                       f"try again tomorrow (UTC): {exc.aws_message}") from exc
                reason = retry_until_deadline(change, exc.code, exc.aws_message)
                if reason and time.monotonic() + delay < self.deadline:
                    self.log(f"{change.table}: {reason}; retrying in {delay:g}s")
                    self.sleep(delay)
                    delay = min(delay * 2, LIMIT_BACKOFF_MAX)
                    continue
                raise CheckerError(f"{change.table}: {exc}") from exc

    def _wait(self, table: str) -> None:
        timeout = max(0.0, self.deadline - time.monotonic())
        result = wait_until_active(self.client, [table], timeout, self.on_change)
        if not result.ready:
            raise CheckerError(timeout_message(result, timeout))


def hold_reason(change: Change, changes: list, allow_capacity_changes: bool) -> Optional[str]:
    """Why an automatic change is held back, or None to make it."""
    if any(c.table == change.table and c.action == "replace-table" for c in changes):
        return "held back: the table needs a manual step first (replace-table); nothing else is changed on it"
    if change.gate and not allow_capacity_changes:
        return f"held back: a capacity change; make it with {CAPACITY_FLAG}"
    return None


def apply_changes(client, changes: list, timeout: float = 1800.0, concurrency: int = 4,
                  on_change: Optional[ProgressCallback] = None,
                  log: Callable[[str], None] = lambda message: None,
                  sleep: Callable[[float], None] = time.sleep,
                  allow_capacity_changes: bool = False) -> ApplyResult:
    """Apply every automatic change not held back; manual ones are returned as `manual`, held
    ones (capacity changes without the flag, tables that need a person) as `held`."""
    deadline = time.monotonic() + timeout
    changes = [c for c in changes if c.pending]
    held = {id(c): reason for c in changes if c.automatic
            and (reason := hold_reason(c, changes, allow_capacity_changes))}
    by_table: dict = {}
    for change in changes:
        if change.automatic and id(change) not in held:
            by_table.setdefault(change.table, []).append(change)
    lock = threading.Lock()

    def locked_log(message: str) -> None:
        with lock:
            log(message)

    def locked_on_change(*args) -> None:
        if on_change:
            with lock:
                on_change(*args)

    def run(table_changes):
        return TableWorker(client, deadline, locked_on_change, locked_log, sleep).run(table_changes)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        per_table = list(pool.map(run, by_table.values()))
    done = {id(o.change): o for outcomes in per_table for o in outcomes}
    done.update({key: ChangeOutcome(c, Outcome.HELD, held[key]) for c in changes if (key := id(c)) in held})
    return ApplyResult([done.get(id(c)) or ChangeOutcome(c, Outcome.MANUAL, "needs a manual step") for c in changes])


def verify_applied(client, tables: list, result: ApplyResult) -> ApplyResult:
    """Re-read every table apply changed and diff it again: a change DynamoDB acknowledged but
    did not make (a backend that drops a GSI create) is `not-in-effect`, never a silent success."""
    touched = {o.change.table for o in result.made}
    remaining: dict = {}
    for table in tables:
        if table.name in touched:
            remaining.update({c.key: c for c in diff_table_or_create(client, table) if c.pending})
    outcomes = []
    for outcome in result.outcomes:
        still = remaining.pop(outcome.change.key, None)
        if outcome.status.made and still is not None:
            outcome = ChangeOutcome(outcome.change, Outcome.NOT_IN_EFFECT,
                                    f"re-read after apply: {still.detail}", outcome.seconds)
        outcomes.append(outcome)
    # differences on a changed table that no planned change covers (e.g. a CreateTable whose GSI
    # the backend left out) are failures too
    outcomes += [ChangeOutcome(c, Outcome.NOT_IN_EFFECT, f"re-read after apply: {c.detail}")
                 for c in remaining.values() if c.automatic]
    return ApplyResult(outcomes)


def diff_table_or_create(client, table: ExpectedTable) -> list:
    live = read_table(client, table)
    if not live.exists:
        return [Change(table.name, "create-table", "table does not exist after apply", True)]
    return diff_table(table, live)
