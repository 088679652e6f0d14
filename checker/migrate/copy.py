"""The copy engine, the base of every migration: read a table with a parallel Scan, hand each
page to a writer, checkpoint each segment after its page is written.

Why this shape:
- `TotalSegments` workers each Scan their own segment: a table is read at the speed of several
  connections, and a segment's LastEvaluatedKey is a resumable position of its own. The position
  is recorded (`checkpoint`) only after the page it ends has been written, so a run stopped by
  Ctrl-C, SIGKILL or an expired credential resumes with at most one page written twice, which
  is harmless: every write here is idempotent (a put of the same item, an update conditioned on
  the old values).
- Memory stays flat in the table's size: each worker holds one page (Scan's 1 MB at most on
  DynamoDB, and `Limit` PAGE_ITEMS items on any backend: dynalite returns far more at once).
- Throttling is backed off, never fatal (botocore's retries first, then ours, until the
  command's deadline); UnprocessedItems are re-sent with backoff.
- A `Meter` spends a share of the tables' capacity, estimated from the items' sizes (DynamoDB
  Local, moto and friends report a constant ConsumedCapacity, so the answer cannot be trusted):
  one write unit a KB, one consistent read unit per 4 KB. On-demand tables get an items/s cap.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Optional

from ..errors import AwsError, CheckerError, call
from ..poll import REAL, Backoff, Clock, Deadline, poll

BATCH = 25                        # BatchWriteItem's limit
THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
             "LimitExceededException")
DEFAULT_SEGMENTS = 4
DEFAULT_SHARE = 0.5               # of a provisioned table's capacity a migration may spend
ON_DEMAND_ITEMS_PER_SECOND = 4000.0   # a new on-demand table takes 4,000 writes a second without throttling
PAGE_ITEMS = 500                      # a Scan page's Limit: DynamoDB stops at 1 MB, not every backend does
DONE = "done"                     # a segment's position once it has read its last page (the ledger stores it)


class Stopped(CheckerError):
    """The copy stopped at a page boundary (its deadline, Ctrl-C): every segment checkpointed."""


def item_bytes(item: dict) -> int:
    """An item's size as DynamoDB counts it, near enough to meter by: each attribute's name in
    UTF-8 plus its value (binary values, B and BS, by their bytes)."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def value_bytes(value: dict) -> int:
    """One wire value's size: strings in UTF-8, numbers about one byte per two digits, binary by
    its bytes, documents and sets their members plus a few bytes each."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner) // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in ("SS", "NS", "BS"):
        return sum(value_bytes({kind[0]: member}) for member in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_bytes(member) + 1 for name, member in inner.items())
    if kind == "L":
        return 3 + sum(value_bytes(member) + 1 for member in inner)
    return 1        # BOOL, NULL


def write_units(item: dict) -> int:
    return max(1, math.ceil(item_bytes(item) / 1024))


def read_units(items: list) -> int:
    """A Scan page's strongly consistent read units: one per 4 KB of the page's items together."""
    return max(1, math.ceil(sum(item_bytes(i) for i in items) / 4096))


class Meter:
    """A token bucket of capacity units a second (None: unmetered), shared by every worker;
    `taken` counts what it let through, for the bench and the tests."""

    def __init__(self, per_second: Optional[float], clock: Clock = REAL):
        self.per_second = per_second
        self.clock = clock
        self.tokens = per_second or 0.0
        self.stamp = clock.now()
        self.taken = 0.0
        self.lock = threading.Lock()

    def take(self, units: float, stop: Optional[threading.Event] = None, deadline: Optional[Deadline] = None) -> None:
        """Wait until `units` may be spent; returns early (nothing taken) at the stop or the
        deadline: a big page on a 1-unit table owes minutes, and the caller stops at its checkpoint."""
        if not self.per_second:
            self.taken += units
            return
        while True:
            if deadline is not None and deadline.expired:
                return
            with self.lock:
                now = self.clock.now()
                self.tokens = min(self.per_second, self.tokens + (now - self.stamp) * self.per_second)
                self.stamp = now
                if self.tokens >= min(units, self.per_second):
                    self.tokens -= units      # may go below zero for an item above a second's worth
                    self.taken += units
                    return
                short = min(units, self.per_second) - self.tokens
            pause = short / self.per_second
            if deadline is not None:
                pause = min(pause, max(deadline.remaining(), 0.01))
            if self.clock.wait(stop, pause):
                return


def capacity_rate(description: dict, side: str, share: float) -> Optional[float]:
    """Units a second a migration may spend on a table: `share` of its provisioned capacity for
    `side` ("ReadCapacityUnits" / "WriteCapacityUnits"); None for on-demand (capped in items)."""
    billing = (description.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    units = (description.get("ProvisionedThroughput") or {}).get(side) or 0
    if billing == "PAY_PER_REQUEST" or not units:
        return None
    return max(0.5, share * units)


@dataclass
class Counts:
    read: int = 0
    written: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, read: int, written: int) -> None:
        with self.lock:
            self.read += read
            self.written += written


class Throttled:
    """What a throttled call gave: nothing yet."""


THROTTLE_BACKOFF = Backoff(0.1, 5.0)
UNPROCESSED_BACKOFF = Backoff(0.05, 5.0)


def backed_off(function: Callable, stop: threading.Event, deadline: Optional[Deadline], what: str,
               clock: Clock = REAL):
    """`function()`, throttling answered with backoff (after botocore's own retries) until the
    deadline or the stop; anything else raises."""
    def attempt():
        try:
            return function()
        except AwsError as exc:
            if exc.code not in THROTTLED:
                raise
            return Throttled()
    answered = poll(attempt, lambda value: not isinstance(value, Throttled), THROTTLE_BACKOFF, deadline,
                    clock=clock, stop=stop)
    if not answered.done:
        raise Stopped(f"{what}: still throttled when the copy had to stop")
    return answered.value


def until_processed(send: Callable[[dict], dict], request: dict, deadline: Optional[Deadline], clock: Clock,
                    stopped: str) -> None:
    """`send(request)` returns what the server left unprocessed (UnprocessedItems / -Keys): sent
    again with backoff until nothing is left, or Stopped(`stopped`) at the deadline."""
    pending = [request]

    def once() -> dict:
        pending[0] = send(pending[0])
        return pending[0]
    if not poll(once, lambda left: not left, UNPROCESSED_BACKOFF, deadline, clock=clock).done:
        raise Stopped(stopped)


def write_batches(client, table: str, requests: list, stop: threading.Event, deadline: Optional[Deadline],
                  clock: Clock = REAL) -> int:
    """BatchWriteItem of `requests` 25 at a time, UnprocessedItems re-sent with backoff."""
    written = 0

    def send(batch: dict) -> dict:
        nonlocal written
        answer = backed_off(lambda: call(client, "BatchWriteItem", "dynamodb", RequestItems=batch),
                            stop, deadline, f"writing {table}", clock)
        left = answer.get("UnprocessedItems") or {}
        written += sum(len(v) for v in batch.values()) - sum(len(v) for v in left.values())
        return left
    for start in range(0, len(requests), BATCH):
        until_processed(send, {table: requests[start:start + BATCH]}, deadline, clock,
                        f"writing {table}: items still unprocessed when the copy had to stop")
    return written


def read_batches(client, table: str, keys: list, stop: threading.Event, deadline: Optional[Deadline],
                 clock: Clock = REAL) -> list:
    """Consistent BatchGetItem of `keys` 100 at a time, UnprocessedKeys asked again with
    backoff: the items found (a key without one: absent)."""
    found: list = []

    def send(request: dict) -> dict:
        answer = backed_off(lambda: call(client, "BatchGetItem", "dynamodb", RequestItems=request),
                            stop, deadline, f"reading {table}", clock)
        found.extend(answer.get("Responses", {}).get(table, []))
        return answer.get("UnprocessedKeys") or {}
    for start in range(0, len(keys), 100):
        until_processed(send, {table: {"Keys": keys[start:start + 100], "ConsistentRead": True}}, deadline, clock,
                        f"reading {table}: keys still unprocessed when the copy had to stop")
    return found


PageHandler = Callable[[int, list], int]          # (segment, wire items) -> items written
Checkpoint = Callable[[int, Optional[dict], int, int], None]   # (segment, last key or None, read, written)


@dataclass
class Scan:
    """A parallel Scan of `table` in `segments`, resumable from `start` ({segment: key or DONE})."""

    client: object
    table: str
    segments: int = DEFAULT_SEGMENTS
    start: dict = field(default_factory=dict)
    meter: Optional[Meter] = None          # the source's read capacity
    deadline: Optional[Deadline] = None    # when to stop, at a page boundary
    clock: Clock = field(default=REAL, repr=False)
    consistent: bool = True
    page_limit: Optional[int] = PAGE_ITEMS   # items a page: memory stays one page a worker, whatever the backend
    filter: dict = field(default_factory=dict)   # extra Scan parameters (a projection)

    def run(self, handle: PageHandler, checkpoint: Optional[Checkpoint] = None,
            tick: Optional[Callable[[], None]] = None) -> None:
        """Every page of every segment through `handle`, then `checkpoint`; `tick` about every
        second from the calling thread (progress). Ctrl-C stops every worker after its page."""
        stop = threading.Event()
        todo = [s for s in range(self.segments) if self.start.get(s) != DONE]
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="scan") as pool:
            futures = [pool.submit(self._segment, s, handle, checkpoint, stop) for s in todo]
            try:
                while True:
                    done, running = wait(futures, timeout=1.0, return_when=FIRST_EXCEPTION)
                    if tick:
                        tick()
                    failed = [f for f in done if f.exception() is not None]
                    if failed or not running:
                        stop.set()
                        wait(futures)
                        if failed:
                            raise failed[0].exception()   # type: ignore[misc]
                        return
            except BaseException:
                stop.set()
                wait(futures)       # each worker finishes and checkpoints its page
                raise

    def _segment(self, segment: int, handle: PageHandler, checkpoint: Optional[Checkpoint],
                 stop: threading.Event) -> None:
        key = self.start.get(segment)
        owed = 0      # read units of the page before: paid before the next read, never after the last
        while True:
            if stop.is_set():
                return
            if owed and self.meter is not None:
                self.meter.take(owed, stop, self.deadline)
            if self.deadline is not None and self.deadline.expired:
                raise Stopped(f"the migration's --timeout passed; every segment of {self.table} is checkpointed")
            params = dict(TableName=self.table, Segment=segment, TotalSegments=self.segments,
                          ConsistentRead=self.consistent, **self.filter)
            if key:
                params["ExclusiveStartKey"] = key
            if self.page_limit:
                params["Limit"] = self.page_limit
            page = backed_off(lambda p=params: call(self.client, "Scan", "dynamodb", **p), stop, self.deadline,
                              f"reading {self.table}", self.clock)
            items = page.get("Items", [])
            owed = read_units(items)
            written = handle(segment, items)
            key = page.get("LastEvaluatedKey")
            if checkpoint is not None:
                checkpoint(segment, key, len(items), written)
            if not key:
                return


class Progress:
    """One line on stderr about every second: items, items a second, and an ETA from the
    source's ItemCount (DynamoDB updates it about every 6 hours: an estimate, said so)."""

    QUIET_SECONDS = 10.0   # a line that says nothing new is repeated this often at most

    def __init__(self, label: str, expected: Optional[int], counts: Counts, echo: Callable[[str], None],
                 clock: Clock = REAL):
        self.label, self.expected, self.counts, self.echo, self.clock = label, expected, counts, echo, clock
        self.started = clock.now()
        self.already = counts.read
        self.last: tuple = (-1, -1, 0.0)

    def __call__(self) -> None:
        now = self.clock.now()
        if (self.counts.read, self.counts.written) == self.last[:2] and now - self.last[2] < self.QUIET_SECONDS:
            return
        self.last = (self.counts.read, self.counts.written, now)
        elapsed = max(now - self.started, 1e-6)
        rate = (self.counts.read - self.already) / elapsed
        line = f"{self.label}: {self.counts.read:,} items read, {self.counts.written:,} written, {rate:,.0f} items/s"
        if self.expected and rate > 0 and self.counts.read < self.expected:
            line += f", ETA ~{(self.expected - self.counts.read) / rate:,.0f} s (of ~{self.expected:,} items)"
        self.echo(line)


def copy_items(client, source: str, target: str, start: dict, checkpoint: Optional[Checkpoint] = None,
               transform: Optional[Callable[[dict], Optional[dict]]] = None, read_rate: Optional[float] = None,
               write_rate: Optional[float] = None, segments: int = DEFAULT_SEGMENTS,
               deadline: Optional[Deadline] = None, page_limit: int = PAGE_ITEMS, counts: Optional[Counts] = None,
               expected: Optional[int] = None, echo: Callable[[str], None] = lambda line: None,
               clock: Clock = REAL) -> Counts:
    """Every item of `source` put into `target` (through `transform`, wire item -> wire item or
    None to leave it out), from the segments' positions `start`, `checkpoint` after each page.
    `read_rate` / `write_rate`: capacity units a second (None: on-demand, capped in items/s)."""
    reads = Meter(read_rate, clock)
    writes = Meter(write_rate or ON_DEMAND_ITEMS_PER_SECOND, clock)
    counts = counts if counts is not None else Counts()
    never = threading.Event()

    def handle(segment: int, items: list) -> int:
        requests = []
        for item in items:
            if transform is not None:
                item = transform(item)
                if item is None:
                    continue
            requests.append({"PutRequest": {"Item": item}})
        writes.take(sum(write_units(r["PutRequest"]["Item"]) for r in requests) if write_rate else len(requests),
                    deadline=deadline)
        return write_batches(client, target, requests, never, deadline, clock)

    def counted(segment: int, key: Optional[dict], read: int, written: int) -> None:
        if checkpoint is not None:
            checkpoint(segment, key, read, written)
        else:
            counts.add(read, written)
    label = f"copy {source} -> {target}"
    Scan(client, source, segments, start, reads, deadline, page_limit=page_limit, clock=clock).run(
        handle, counted, tick=Progress(label, expected, counts, echo, clock))
    echo(f"{label}: {counts.read:,} items read, {counts.written:,} written")
    return counts
