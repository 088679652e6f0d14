"""The migration ledger: a DynamoDB table of checker's own, one item per migration.

It is what makes a migration resumable and a second `migrate` at once impossible: each copy
segment's last key is written here after the page it ends was written (so Ctrl-C, SIGKILL or an
expired credential loses at most one page, rewritten idempotently on resume), and `migrate`
holds a lease item while it runs. Its spec ships with checker (schemas/ledger_table.json); it is
named with the environment's prefix/suffix and created on first use. `export` and `init` leave
it out: it is checker's, not the app's.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..errors import AwsError, CheckerError, call, pages
from ..items import from_json, plain_item, plain_numbers, to_json, wire_item
from ..model import Words
from ..specs import load_schema
from ..text import clip
from .copy import DONE  # a segment's checkpoint once it has read its last page
from .fence import Fence, fence_of_entry

if TYPE_CHECKING:
    from ..environment import Environment

LEDGER_SPEC_NAME = "checker_migrations"
LOCK_ID = "lock"
LEASE_SECONDS = 60.0             # a migrate killed with SIGKILL frees the ledger this long after its last beat
HEARTBEAT_SECONDS = 15.0         # how often a running migrate renews its lease

# statuses of a ledger item
class MigrationStatus(Words):
    """Where a migration stands: the ledger's word for it (a str enum: it is stored and printed
    as its word), or what a run that wrote no ledger item says."""

    PENDING = "pending"                 # no ledger item yet
    RUNNING = "running"
    COPIED = "copied"
    STREAM_LOST = "stream-lost"         # the stream lost records: the next run copies afresh
    VERIFIED = "verified"
    DIFFERS = "differs"
    SWITCHED = "switched"
    ROLLED_BACK = "rolled-back"
    APPLIED = "applied"
    FAILED = "failed"
    DRY_RUN = "dry-run"                 # a dry run: nothing written
    ALREADY_APPLIED = "already-applied"

    @property
    def done(self) -> bool:
        """Nothing left to do: a table migration switched, a data migration applied."""
        return self in (MigrationStatus.SWITCHED, MigrationStatus.APPLIED, MigrationStatus.ALREADY_APPLIED)

    @classmethod
    def of_word(cls, word) -> MigrationStatus:
        """A stored word as a status; a word this checker does not know is an error naming it."""
        try:
            return cls(str(word or cls.PENDING.value))
        except ValueError:
            raise CheckerError(f"the migration ledger holds the status {clip(str(word), 40)!r}, which this "
                               "checker does not know (a newer checker wrote it?)") from None

    @classmethod
    def of(cls, entry: Optional[LedgerEntry]) -> MigrationStatus:
        """The status a ledger entry records (none: pending)."""
        return entry.status if entry is not None else cls.PENDING


@dataclass(frozen=True)
class LedgerEntry:
    """One migration's ledger item, read: what a rerun goes on from."""

    id: str
    status: MigrationStatus
    items_read: int = 0
    items_written: int = 0
    checkpoints: dict = field(default_factory=dict)        # {segment: ExclusiveStartKey or DONE}
    stream_positions: dict = field(default_factory=dict)   # {shard id: sequence number}
    sha256: str = ""                # a data migration's file, as it ran
    variables: tuple = ()           # the function's variables a table migration switched
    imported_at: str = ""           # --via s3: when the import finished
    finished_at: str = ""
    fence: Optional[Fence] = None   # a table the cut-over fenced, still fenced
    fields: dict = field(default_factory=dict, compare=False, repr=False)   # the item as stored

    @classmethod
    def of(cls, plain: dict) -> LedgerEntry:
        checkpoints = {int(segment): DONE if value == DONE else from_json(value)
                       for segment, value in (plain.get("checkpoints") or {}).items()}
        return cls(str(plain["id"]), MigrationStatus.of_word(plain.get("status")), int(plain.get("itemsRead") or 0),
                   int(plain.get("itemsWritten") or 0), checkpoints, dict(plain.get("streamPositions") or {}),
                   str(plain.get("sha256") or ""), tuple(v for v in str(plain.get("variables") or "").split(",") if v),
                   str(plain.get("importedAt") or ""), str(plain.get("finishedAt") or ""),
                   fence_of_entry(plain.get("fence")), plain)

    @property
    def done(self) -> bool:
        return self.status.done


RUNNING, COPIED, VERIFIED, SWITCHED, APPLIED, FAILED, DIFFERS, ROLLED_BACK = (
    MigrationStatus.RUNNING, MigrationStatus.COPIED, MigrationStatus.VERIFIED, MigrationStatus.SWITCHED,
    MigrationStatus.APPLIED, MigrationStatus.FAILED, MigrationStatus.DIFFERS, MigrationStatus.ROLLED_BACK)


def ledger_name(prefix: str, suffix: str) -> str:
    return f"{prefix}{LEDGER_SPEC_NAME}{suffix}"


def is_ledger(name: str, prefix: str = "", suffix: str = "") -> bool:
    """A table checker keeps for itself: never exported, never an app's table."""
    return name in (LEDGER_SPEC_NAME, ledger_name(prefix, suffix))


def _wire(fields: dict) -> dict:
    """Ledger fields in DynamoDB's wire form (strings, numbers, maps of strings; a status is its word)."""
    return wire_item({k: str(v) if isinstance(v, Words) else v for k, v in fields.items()})


def _plain(item: dict) -> dict:
    """A ledger item as plain values, numbers as int or float (a person and JSON read them)."""
    return plain_numbers(plain_item(item))


class Ledger:
    """The ledger table of one environment, through a low-level DynamoDB client."""

    def __init__(self, client, name: str):
        self.client = client
        self.name = name
        self.owner = f"{uuid.uuid4()}"
        self.holding = False      # inside lease(): a heartbeat renews it
        self.lost = ""            # why the lease is no longer ours (its heartbeat found it taken)
        self.renewed = 0.0        # time.monotonic() of the last renewal

    # -- the table ------------------------------------------------------------------------
    def exists(self) -> bool:
        return call(self.client, "DescribeTable", "dynamodb", missing_ok=True, TableName=self.name) is not None

    def ensure(self, timeout: float = 300) -> None:
        """Create the ledger table on first use and wait until it is ACTIVE."""
        if self.exists():
            return
        request = dict(load_schema("ledger_table.json"), TableName=self.name)
        try:
            call(self.client, "CreateTable", "dynamodb", **request)
        except AwsError as exc:
            if exc.code != "ResourceInUseException":
                raise
        from ..wait import wait_until_active
        waited = wait_until_active(self.client, [self.name], timeout)
        if not waited.ready:
            raise CheckerError(f"the migration ledger {self.name} did not become ACTIVE within {timeout:g} s")

    # -- items ----------------------------------------------------------------------------
    def entries(self) -> dict:
        """{migration id: its LedgerEntry}; {} before the ledger exists."""
        if not self.exists():
            return {}
        found = {}
        for page in pages(self.client, "Scan", "dynamodb", TableName=self.name, ConsistentRead=True):
            for item in page.get("Items", []):
                plain = _plain(item)
                if plain.get("id") != LOCK_ID:
                    found[str(plain.get("id"))] = self.entry(plain)
        return found

    def get(self, migration_id: str) -> Optional[LedgerEntry]:
        item = self._read(migration_id)
        return self.entry(item) if item else None

    def entry(self, plain: dict) -> LedgerEntry:
        """The item read as an entry; one edited by hand into something else (a checkpoint that
        is not JSON, `itemsRead: 'lots'`) is one line naming it and how to recover."""
        try:
            return LedgerEntry.of(plain)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            item_id = clip(str(plain.get("id")), 80)
            raise CheckerError(f"ledger {self.name}: the item {item_id!r} is malformed ({clip(str(exc), 120)}); "
                               "it was edited by hand? Restore it from `aws dynamodb get-item --table-name "
                               f"{self.name} --key '{{\"id\": {{\"S\": \"{item_id}\"}}}}'` and fix the attribute, or "
                               "remove checkpoints/itemsRead/itemsWritten (the copy then starts again from the "
                               "beginning, which is safe)") from None

    def _read(self, item_id: str) -> Optional[dict]:
        item = call(self.client, "GetItem", "dynamodb", TableName=self.name, Key={"id": {"S": item_id}},
                    ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def put(self, migration_id: str, **fields) -> None:
        self.require()
        item = {"id": {"S": migration_id}} | _wire(fields)
        call(self.client, "PutItem", "dynamodb", TableName=self.name, Item=item)

    def update(self, migration_id: str, **fields) -> None:
        self.require()
        names = {f"#f{n}": k for n, k in enumerate(fields)}
        values = {f":v{n}": value for n, value in enumerate(_wire(fields).values())}
        call(self.client, "UpdateItem", "dynamodb", TableName=self.name, Key={"id": {"S": migration_id}},
             UpdateExpression="SET " + ", ".join(f"#f{n} = :v{n}" for n in range(len(fields))),
             ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def checkpoint(self, migration_id: str, segment: int, last_key: Optional[dict], read: int, written: int) -> None:
        """Segment `segment` has read and written everything up to `last_key` (None: all of it)."""
        self.require()
        call(self.client, "UpdateItem", "dynamodb", TableName=self.name, Key={"id": {"S": migration_id}},
             UpdateExpression="SET #cp.#segment = :key ADD itemsRead :read, itemsWritten :written",
             ExpressionAttributeNames={"#cp": "checkpoints", "#segment": str(segment)},
             ExpressionAttributeValues={":key": {"S": DONE if last_key is None else to_json(last_key)},
                                        ":read": {"N": str(read)}, ":written": {"N": str(written)}})

    # -- the lease ------------------------------------------------------------------------
    @contextmanager
    def lease(self, caller: str):
        """One `migrate` at a time per environment: the lock item, held while the block runs. A
        heartbeat thread renews it every HEARTBEAT_SECONDS whatever phase runs (a copy, a long
        verification, the catch-up, the switch, the drain); it expires LEASE_SECONDS after the
        last renewal, so a run killed with SIGKILL frees the environment within a minute, and a
        run that finds its lease taken stops before its next write (`require`)."""
        now = time.time()
        item = {"id": {"S": LOCK_ID}, "owner": {"S": self.owner}, "caller": {"S": caller},
                "host": {"S": socket.gethostname()}, "pid": {"N": str(os.getpid())},
                "since": {"N": str(int(now))}, "expiresAt": {"N": str(int(now + LEASE_SECONDS))}}
        try:
            call(self.client, "PutItem", "dynamodb", TableName=self.name, Item=item,
                 # the type test first: a hand-edited string expiry is not compared (moto fails on it)
                 ConditionExpression="attribute_not_exists(id) OR (attribute_type(expiresAt, :number) AND expiresAt < :now)",
                 ExpressionAttributeValues={":now": {"N": str(int(now))}, ":number": {"S": "N"}})
        except AwsError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
            held = self._read(LOCK_ID) or {}
            if not (self._take_over_from_the_dead(held, item) or self._take_over_malformed(held, item)):
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_seconds(held.get("since"))))
                until = time.strftime("%H:%M:%SZ", time.gmtime(_seconds(held.get("expiresAt"))))
                raise CheckerError(f"another checker migrate is running on this environment (ledger {self.name}, "
                                   f"since {since}, by {held.get('caller', 'unknown')} on {held.get('host', 'a host')}); "
                                   f"a running one renews its lease every {HEARTBEAT_SECONDS:g} s: if it was killed, "
                                   f"its lease expires at {until} ({LEASE_SECONDS:g} s after its last renewal; at once "
                                   "when the same command runs on its host) and the same command then goes on where "
                                   "it stopped") from None
        self.holding, self.lost, self.renewed = True, "", time.monotonic()
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._beat, args=(stop,), name="ledger-heartbeat", daemon=True)
        heartbeat.start()
        try:
            yield self
        finally:
            stop.set()
            heartbeat.join()
            self.release()

    def release(self) -> None:
        """Free the lease if it is still ours (also what a run stopped hard does on its way out)."""
        self.holding = False
        try:
            call(self.client, "DeleteItem", "dynamodb", TableName=self.name, Key={"id": {"S": LOCK_ID}},
                 ConditionExpression="#owner = :me", ExpressionAttributeNames={"#owner": "owner"},
                 ExpressionAttributeValues={":me": {"S": self.owner}})
        except CheckerError:
            pass   # taken over after an expiry: not ours to free

    def _take_over_malformed(self, held: dict, item: dict) -> bool:
        """A lock item whose expiry is not a number (edited by hand) would never expire: taken
        over, conditioned on it still being that item (its owner, or none)."""
        expires = held.get("expiresAt")     # _plain makes numbers int or float; a BOOL is no number
        if isinstance(expires, (int, float)) and not isinstance(expires, bool):
            return False
        owner = held.get("owner")
        condition: dict = ({"ConditionExpression": "#owner = :was", "ExpressionAttributeNames": {"#owner": "owner"},
                      "ExpressionAttributeValues": {":was": {"S": str(owner)}}} if isinstance(owner, str)
                     else {"ConditionExpression": "attribute_not_exists(#owner)",
                           "ExpressionAttributeNames": {"#owner": "owner"}})
        try:
            call(self.client, "PutItem", "dynamodb", TableName=self.name, Item=item, **condition)
        except AwsError as exc:
            if exc.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _take_over_from_the_dead(self, held: dict, item: dict) -> bool:
        """A lease whose holder ran on this host as a process that no longer exists (SIGKILL, a
        crash): taken over at once, conditioned on it still being that holder's."""
        if held.get("host") != socket.gethostname() or not held.get("pid") or not held.get("owner"):
            return False
        try:
            os.kill(int(held["pid"]), 0)
            return False                    # alive (or not ours to signal): it holds the lease
        except ProcessLookupError:
            pass
        except (PermissionError, ValueError, OverflowError):
            return False
        try:
            call(self.client, "PutItem", "dynamodb", TableName=self.name, Item=item,
                 ConditionExpression="#owner = :dead", ExpressionAttributeNames={"#owner": "owner"},
                 ExpressionAttributeValues={":dead": {"S": str(held["owner"])}})
        except AwsError as exc:
            if exc.code == "ConditionalCheckFailedException":
                return False                # another run took it first
            raise
        return True

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                self.renew()
            except CheckerError as exc:
                self.lost = str(exc)
                return
            except Exception:  # noqa: BLE001 - a renewal that could not be sent: the next beat tries again
                if time.monotonic() - self.renewed > LEASE_SECONDS:
                    self.lost = (f"the ledger's lease ({self.name}) could not be renewed for {LEASE_SECONDS:g} s: "
                                 "another checker migrate may hold it now; stopping")
                    return

    def renew(self) -> None:
        if not self.holding:
            return
        try:
            call(self.client, "UpdateItem", "dynamodb", TableName=self.name, Key={"id": {"S": LOCK_ID}},
                 UpdateExpression="SET expiresAt = :until", ConditionExpression="#owner = :me",
                 ExpressionAttributeNames={"#owner": "owner"},
                 ExpressionAttributeValues={":until": {"N": str(int(time.time() + LEASE_SECONDS))},
                                            ":me": {"S": self.owner}})
            self.renewed = time.monotonic()
        except AwsError as exc:
            if exc.code == "ConditionalCheckFailedException":
                raise CheckerError(f"the ledger's lease ({self.name}) was taken by another checker migrate "
                                   "after it expired; stopping") from None
            raise

    def require(self) -> None:
        """Inside the lease: still ours (else a CheckerError: stop before writing anything more)."""
        if self.holding and self.lost:
            raise CheckerError(self.lost)


def resumed_segments(ledger: Ledger, migration_id: str, entry: Optional[LedgerEntry], asked: int,
                     echo) -> int:
    """The parallel Scan's segment count for a copy: a resumed run's checkpoints hold a position
    per segment of the count they were made with, so that count is reused (another --segments
    would skip parts of the table or read them twice); a fresh copy records the one asked."""
    recorded = entry.fields.get("copySegments") if entry is not None else None
    if entry is not None and entry.checkpoints and isinstance(recorded, int) and recorded != asked:
        echo(f"{migration_id}: resuming with {recorded} segments, as its checkpoints were made (not --segments {asked})")
        return recorded
    if entry is not None and not entry.checkpoints:
        ledger.update(migration_id, copySegments=asked)
    return asked


def _seconds(value) -> float:
    """A stored epoch, or 0 for what is not one (shown, never trusted)."""
    try:
        return float(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0.0


def checkpoints_of(entry: Optional[LedgerEntry]) -> dict:
    """{segment: ExclusiveStartKey or DONE} a resumed copy starts from."""
    return dict(entry.checkpoints) if entry is not None else {}


def ledger_of(environment: Environment) -> Ledger:
    """The migration ledger of an environment, named with its prefix/suffix."""
    return Ledger(environment.dynamodb(), ledger_name(environment.table_prefix, environment.table_suffix))


def caller_arn(environment: Environment) -> str:
    try:
        return str(call(environment.client("sts"), "GetCallerIdentity", "sts")["Arn"])
    except CheckerError:
        return "unknown (sts:GetCallerIdentity did not answer)"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
