"""Carry out the automatic changes of a plan, and nothing else.

Tables are worked on concurrently (bounded); within a table, changes run one at a time, each
waited on until the table and all its GSIs are ACTIVE, because DynamoDB allows one index build at
a time. Nothing here deletes a table or an index or touches a key schema: the plan never contains
such a change as automatic, and this module only knows CreateTable, UpdateTable,
UpdateTimeToLive and UpdateContinuousBackups.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

import botocore.exceptions
from botocore import xform_name

from .diff import Change
from .errors import CheckerError, describe_aws_error, error_code
from .wait import ProgressCallback, timeout_message, wait_until_active

ALLOWED_OPERATIONS = {"CreateTable", "UpdateTable", "UpdateTimeToLive", "UpdateContinuousBackups"}
# botocore's standard retry mode already retries LimitExceededException a few times within ~20 s;
# DynamoDB's limit on concurrent table operations can outlast that, so keep backing off until the
# deadline.
LIMIT_BACKOFF_START = 2.0
LIMIT_BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class ChangeOutcome:
    change: Change
    status: str          # applied | already-in-progress | failed | not-run | manual
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**self.change.to_dict(), "status": self.status, "message": self.message,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class ApplyResult:
    outcomes: list

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if o.status in ("failed", "not-run")]

    @property
    def manual(self) -> list:
        return [o for o in self.outcomes if o.status == "manual"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.manual


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
                outcomes.append(ChangeOutcome(change, "failed", str(exc), time.monotonic() - started))
                outcomes += [ChangeOutcome(c, "not-run", f"skipped: an earlier change to {c.table} failed")
                             for c in changes[position + 1:]]
                return outcomes
            outcomes.append(ChangeOutcome(change, status, "", time.monotonic() - started))
        return outcomes

    def _apply(self, change: Change) -> str:
        if change.operation not in ALLOWED_OPERATIONS:
            raise CheckerError(f"refusing to run {change.operation} on {change.table}: not an allowed operation")
        if change.operation != "CreateTable":
            # Never call UpdateTable while the table or an index is still building.
            self._wait(change.table)
        self.log(f"{change.table}: {change.action}: {change.detail}")
        delay = LIMIT_BACKOFF_START
        while True:
            try:
                getattr(self.client, xform_name(change.operation))(**change.params)
                return "applied"
            except botocore.exceptions.ClientError as exc:
                code = error_code(exc)
                if code == "ResourceInUseException" and change.operation == "CreateTable":
                    self.log(f"{change.table}: already being created elsewhere; waiting for it")
                    return "already-in-progress"
                if code == "LimitExceededException" and time.monotonic() + delay < self.deadline:
                    self.log(f"{change.table}: DynamoDB limit on concurrent operations reached; retrying in {delay:g}s")
                    self.sleep(delay)
                    delay = min(delay * 2, LIMIT_BACKOFF_MAX)
                    continue
                raise CheckerError(f"{change.table}: {describe_aws_error(exc, change.operation)}") from exc
            except botocore.exceptions.BotoCoreError as exc:
                raise CheckerError(f"{change.table}: {describe_aws_error(exc, change.operation)}") from exc

    def _wait(self, table: str) -> None:
        timeout = max(0.0, self.deadline - time.monotonic())
        result = wait_until_active(self.client, [table], timeout, self.on_change)
        if not result.ready:
            raise CheckerError(timeout_message(result, timeout))


def apply_changes(client, changes: list, timeout: float = 1800.0, concurrency: int = 4,
                  on_change: Optional[ProgressCallback] = None,
                  log: Callable[[str], None] = lambda message: None,
                  sleep: Callable[[float], None] = time.sleep) -> ApplyResult:
    """Apply every automatic change; manual ones are returned as `manual`, never attempted."""
    deadline = time.monotonic() + timeout
    by_table: dict = {}
    for change in changes:
        if change.automatic:
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
    return ApplyResult([done.get(id(c)) or ChangeOutcome(c, "manual", "needs a manual step") for c in changes])
