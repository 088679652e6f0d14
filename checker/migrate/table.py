"""A table migration, offline: create the target from its spec, copy every item, verify both
sides item by item (checksums), then switch the function's binding; never delete the source.

Each step records its end in the ledger, so a rerun goes on where the last one stopped: a copy
from its segments' checkpoints, a verified copy straight to the switch. The switch is a
read-modify-write of the function's whole Environment guarded by its RevisionId, made only after
the role is shown to be allowed on the target whatever it is allowed on the source.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..apply import apply_plan
from ..errors import AwsError, CheckerError, call
from ..items import plain_item, wire_item
from ..poll import REAL, Clock, Deadline
from ..text import clip
from .declared import MigrateOptions, MigrationResult, TableMigration, key_names_of
from .ledger import LedgerEntry, MigrationStatus, caller_arn, now_iso
from .s3 import creation_parameters, export_and_import
from .stream import CatchUp, StreamLost, StreamReader, tail_until_small_lag
from .switch import bound_variables, switch_binding

if TYPE_CHECKING:
    from ..environment import Environment

RECHECK_LIMIT = 1000   # keys written during an online verification that are re-read one by one; more: not proven


def weaker_protections(source: dict, source_extras: dict, target) -> list:
    """What the live source has that the target's spec and wishes would drop."""
    spec = target.spec.request
    found = []
    wanted_sse = (spec.get("SSESpecification") or {}).get("SSEType")
    if (source.get("SSEDescription") or {}).get("SSEType") == "KMS" and wanted_sse != "KMS":
        found.append("SSE with a KMS key (the target's spec has none)")
    if source.get("DeletionProtectionEnabled") and not spec.get("DeletionProtectionEnabled"):
        found.append("deletion protection")
    if source_extras.get("pitr") and not target.point_in_time_recovery:
        found.append("point-in-time recovery")
    if source_extras.get("ttl") and not target.ttl_attribute:
        found.append(f"TTL on {source_extras['ttl']}")
    return found


def source_extras(client, name: str) -> dict:
    from ..live import read_pitr, read_ttl
    unreadable: dict = {}
    ttl = read_ttl(client, name, unreadable) or {}
    pitr = read_pitr(client, name, unreadable) or {}
    return {"ttl": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None,
            "pitr": pitr.get("PointInTimeRecoveryStatus") == "ENABLED"}


class TableMigrationRun:
    def __init__(self, environment: Environment, ledger, migration: TableMigration, options: MigrateOptions,
                 deadline: Optional[Deadline] = None, echo: Callable[[str], None] = lambda line: None,
                 clock: Clock = REAL):
        self.environment, self.ledger, self.migration, self.options, self.echo = environment, ledger, migration, options, echo
        self.deadline = deadline   # the migration's --timeout: copies and catch-ups stop at a checkpoint
        self.clock = clock
        self.client = environment.dynamodb()
        self.target = migration.target
        self.key_names = key_names_of(self.target)
        self.source_key_names: tuple = ()   # read from the live source when a catch-up needs them
        self.warnings: list = []
        self.keys: list = []          # keys the user must look at (after the switch: conflicts)

    # -- the steps --------------------------------------------------------------------------
    def run(self) -> MigrationResult:
        from .ledger import COPIED, RUNNING, SWITCHED, VERIFIED
        entry = self.ledger.get(self.migration.id)
        status = entry.status if entry is not None else None
        if status == SWITCHED:
            return self.result(entry, SWITCHED, "switched already; nothing to do")
        source = call(self.client, "DescribeTable", "dynamodb", missing_ok=True, TableName=self.migration.source)
        if source is None:
            raise CheckerError(f"{self.migration.id}: the source table {self.migration.source} does not exist; "
                               "nothing to migrate (remove migrate_from and run checker apply)")
        self.gate(source["Table"])
        if self.options.via == "s3":
            creation_parameters(self.target.spec.request)    # an LSI target is refused before anything is done
        else:
            self.create_target()
        if entry is None:
            self.ledger.put(self.migration.id, kind="table", status=RUNNING, source=self.migration.source,
                            target=self.target.name, transform=self.migration.transform_name or "",
                            startedAt=now_iso(), caller=caller_arn(self.environment), itemsRead=0, itemsWritten=0,
                            checkpoints={})
        try:
            online = self.online(source["Table"], entry, status)
            if status not in (COPIED, VERIFIED):
                self.copy_beside(online, entry if status != MigrationStatus.STREAM_LOST else None, source["Table"])
                self.ledger.update(self.migration.id, status=COPIED, copiedAt=now_iso())
            if online is not None:
                online.catch_up.after_copy()
                tail_until_small_lag(online.reader, online.catch_up, self.deadline, online.save, clock=self.clock)
                self.echo(f"{self.migration.id}: caught up from the stream: {online.catch_up.replayed} change(s) "
                          f"replayed ({online.reader.polls} polls)")
            if status != VERIFIED:
                self.verify(online)
            if not self.options.switch:
                return self.result(self.ledger.get(self.migration.id), VERIFIED,
                                   f"copied and verified into {self.target.name}; the switch is pending (--no-switch)")
            return self.switch(online)
        except StreamLost:
            # writes the target may lack: only a fresh copy (every checkpoint and stream position dropped) is sound
            self.ledger.update(self.migration.id, status=MigrationStatus.STREAM_LOST, checkpoints={}, streamPositions={},
                               itemsRead=0, itemsWritten=0)
            raise

    def online(self, source: dict, entry: Optional[LedgerEntry], status: Optional[MigrationStatus]
               ) -> Optional[Online]:
        """With `catch_up: stream`: the source's stream (turned on when off), read from now on; a
        copy that did not finish is caught up from the stream's start again (its replays then
        cover every key it may have written stale)."""
        from ..wait import wait_until_active
        from .ledger import COPIED, VERIFIED
        from .stream import CatchUp, StreamReader, enable_stream, stream_problem
        if self.target.catch_up != "stream":
            return None
        self.source_key_names = tuple(k["AttributeName"] for k in source["KeySchema"])
        problem = stream_problem(source)
        if problem:
            raise CheckerError(f"{self.migration.id}: {self.migration.source}: {problem}")
        unavailable = (f"{self.migration.id}: this endpoint has no working DynamoDB Streams API (dynalite and "
                       "roto-aws have none); an online migration needs one: stop the app's writes and pass --offline")
        if problem == "":
            self.echo(f"{self.migration.id}: turning on a NEW_AND_OLD_IMAGES stream on {self.migration.source}")
            try:
                enable_stream(self.client, self.migration.source)
            except AwsError as exc:
                raise CheckerError(f"{unavailable} ({exc})") from None
            wait_until_active(self.client, [self.migration.source], self.options.create_timeout)
            source = call(self.client, "DescribeTable", "dynamodb", TableName=self.migration.source)["Table"]
        resumed = dict(entry.stream_positions) if entry is not None and status in (COPIED, VERIFIED) else {}
        if not source.get("LatestStreamArn"):
            raise CheckerError(unavailable)
        reader = StreamReader(self.environment.aws.client("dynamodbstreams"), source["LatestStreamArn"], resumed)
        try:
            reader.start(at_latest=entry is None)
        except StreamLost:
            raise
        except AwsError as exc:
            raise CheckerError(f"{unavailable} ({exc})") from None
        transform = self.transformed if self.migration.transform is not None else None
        return Online(reader, CatchUp(self.client, self.migration.source, self.target.name, self.key_names, transform),
                      lambda: self.ledger.update(self.migration.id, streamPositions=dict(reader.positions)))

    def copy_beside(self, online: Optional[Online], entry: Optional[LedgerEntry], source: dict) -> None:
        if self.options.via == "s3":
            self.import_from_export(entry)   # the stream is replayed after the import, from before the export
            return
        if online is None:
            self.copy(entry, source)
            return
        tailer = Tailer(online)
        tailer.start()
        try:
            self.copy(entry, source)
        finally:
            tailer.finish()

    def gate(self, source: dict) -> None:
        weaker = weaker_protections(source, source_extras(self.client, self.migration.source), self.target)
        if weaker and not self.options.allow_weaker_target:
            raise CheckerError(f"{self.migration.id}: the target {self.target.name} would drop what the source "
                               f"{self.migration.source} has: {', '.join(weaker)}; add it to the target's spec or "
                               "checklist, or pass --allow-weaker-target")
        self.warnings += [f"the target drops {w} (--allow-weaker-target)" for w in weaker]

    def create_target(self) -> None:
        from ..diff import diff_tables
        from ..wait import wait_until_active
        exists = call(self.client, "DescribeTable", "dynamodb", missing_ok=True, TableName=self.target.name)
        if exists is None:
            changes = diff_tables([_without_source(self.target)], {})
            self.echo(f"{self.migration.id}: creating {self.target.name}")
            applied, waited = apply_plan(self.environment, changes, timeout=self.options.create_timeout)
            if not applied.ok or waited is None or not waited.ready:
                problems = "; ".join(f"{o.change.action}: {o.status} {o.message}" for o in applied.outcomes
                                     if not o.status.made) or "not ACTIVE in time"
                raise CheckerError(f"{self.migration.id}: creating {self.target.name} did not succeed ({problems})")
            return
        waited = wait_until_active(self.client, [self.target.name], self.options.create_timeout)
        if not waited.ready:
            raise CheckerError(f"{self.migration.id}: {self.target.name} (or one of its indexes) is not ACTIVE")

    def import_from_export(self, entry: Optional[LedgerEntry]) -> None:
        from ..diff import diff_tables
        from ..model import LiveTable
        from ..wait import wait_until_active
        exists = call(self.client, "DescribeTable", "dynamodb", missing_ok=True, TableName=self.target.name)
        if exists is not None and not (entry is not None and entry.imported_at):
            raise CheckerError(f"{self.migration.id}: {self.target.name} exists; ImportTable creates its own table: "
                               "migrate without --via s3 (the parallel Scan copies into an existing table)")
        if exists is None:
            if not self.options.bucket:
                raise CheckerError("--via s3 needs --bucket NAME (the export's S3 bucket)")
            prefix = f"{self.options.prefix.rstrip('/')}/{self.target.name}-{int(self.clock.wall())}"
            export_and_import(self.environment, self.migration.source, self.target.spec.request,
                              self.options.bucket, prefix, self.deadline, self.echo, self.clock)
            self.ledger.update(self.migration.id, importedAt=now_iso(), exportPrefix=prefix)
        waited = wait_until_active(self.client, [self.target.name], self.options.create_timeout)
        if not waited.ready:
            raise CheckerError(f"{self.migration.id}: the imported {self.target.name} did not become ACTIVE")
        # what TableCreationParameters cannot carry (a stream, tags, deletion protection, the table class)
        described = call(self.client, "DescribeTable", "dynamodb", TableName=self.target.name)["Table"]
        changes = [c for c in diff_tables([_without_source(self.target)], {self.target.name: LiveTable(
            self.target.name, described)}) if c.automatic]
        if changes:
            applied, _ = apply_plan(self.environment, changes, timeout=self.options.create_timeout)
            if not applied.ok:
                raise CheckerError(f"{self.migration.id}: after the import, {self.target.name} could not be made "
                                   "as its spec says: " + "; ".join(f"{o.change.action}: {o.status}" for o in applied.outcomes))

    def copy(self, entry: Optional[LedgerEntry], source: dict) -> None:
        from .copy import Counts, capacity_rate, copy_items
        from .ledger import checkpoints_of
        target = call(self.client, "DescribeTable", "dynamodb", TableName=self.target.name)["Table"]
        counts = Counts(entry.items_read, entry.items_written) if entry is not None else Counts()

        def checkpoint(segment, key, read, written):
            counts.add(read, written)
            self.ledger.checkpoint(self.migration.id, segment, key, read, written)
        copy_items(self.client, self.migration.source, self.target.name, checkpoints_of(entry), checkpoint,
                   transform=self.transformed if self.migration.transform is not None else None,
                   read_rate=capacity_rate(source, "ReadCapacityUnits", self.options.capacity_share),
                   write_rate=capacity_rate(target, "WriteCapacityUnits", self.options.capacity_share),
                   segments=self.options.segments, deadline=self.deadline, page_limit=self.options.page_items,
                   clock=self.clock,
                   counts=counts, expected=int(source.get("ItemCount") or 0) or None, echo=self.echo)

    def transformed(self, item: dict) -> Optional[dict]:
        try:
            new = self.migration.transform(plain_item(item))   # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the user's transform: named, stopped, resumable
            raise CheckerError(f"{self.migration.id}: transform {self.migration.transform_name} raised "
                               f"{type(exc).__name__}: {clip(str(exc), 200)}; stopped at the last checkpoint: "
                               "fix it and run checker migrate again") from None
        return wire_item(new) if new is not None else None

    def expected(self, item: dict):
        """What verification expects in the target for a plain source item."""
        from .checksum import SKIP
        if self.migration.transform is None:
            return item
        new = self.migration.transform(dict(item))
        return SKIP if new is None else plain_item(wire_item(new))

    def verify(self, online: Optional[Online] = None) -> None:
        from .checksum import differing_keys, table_checksum
        from .copy import Scan
        from .ledger import DIFFERS, VERIFIED

        def scan(name: str) -> Scan:
            return Scan(self.client, name, self.options.segments, page_limit=self.options.page_items, clock=self.clock)
        self.echo(f"{self.migration.id}: verifying every item of {self.migration.source} against {self.target.name}")
        mine = table_checksum(scan(self.migration.source), self.key_names, self.expected)
        theirs = table_checksum(scan(self.target.name), self.key_names)
        buckets = mine.differing_buckets(theirs)
        rechecked = 0
        if buckets:
            limit = RECHECK_LIMIT if online is not None else 20
            origins: dict = {}
            keys = differing_keys(scan(self.migration.source), scan(self.target.name), self.key_names, buckets,
                                  self.expected, limit=limit, origins=origins, source_key_names=self.source_key_names)
            if online is not None and len(keys) < limit:
                # the app wrote while both sides were read: replay, then look again, key by key
                tail_until_small_lag(online.reader, online.catch_up, self.deadline, online.save, clock=self.clock)
                rechecked = len(keys)
                keys = [k for k in keys if not self.caught_up(online, k, origins)]
        if buckets and keys:
            shown = "; ".join(json.dumps({k: str(v) for k, v in key.items()}) for key in keys)
            self.ledger.update(self.migration.id, status=DIFFERS, verifiedAt=now_iso())
            raise CheckerError(f"{self.migration.id}: {self.target.name} differs from {self.migration.source} "
                               f"({mine.count} item(s) expected, {theirs.count} found); not switched. Differing keys: "
                               f"{clip(shown, 600)}; run checker migrate again to copy again")
        if rechecked:
            self.echo(f"{self.migration.id}: {rechecked} key(s) the app wrote during verification re-checked one by one")
        self.ledger.update(self.migration.id, status=VERIFIED, verifiedAt=now_iso(), checksum=mine.total,
                           itemCount=mine.count)

    def caught_up(self, online: Online, key: dict, origins: dict, attempts: int = 3) -> bool:
        """A key that differed while the app wrote: replayed and compared again, a few times (the
        app may write it again between the two reads). Under a new key schema the source items
        behind it are replayed: the one the target's item came from (when it carries the
        source's key) and the one that mapped to it when verification read the source."""
        from .checksum import key_name
        moved = set(self.key_names) != set(self.source_key_names)
        sources = [key] if not moved else self.sources_of(key, origins.get(key_name(key)))
        if not sources:
            # no source item maps to it and the target's item names none: right if nothing is there
            # (an item the catch-up has moved away since); else not proven
            return self.same_now(key, [])
        for _ in range(attempts):
            for source in sources:
                online.catch_up.replay(wire_item(source), stale=[wire_item(key)] if moved else None)
            if self.same_now(key, sources):
                return True
        return False

    def sources_of(self, key: dict, origin: Optional[dict]) -> list:
        """The source keys a target key may come from: its item's (stale ones first: replaying
        them deletes what moved away) and the one verification saw map to it."""
        found = call(self.client, "GetItem", "dynamodb", TableName=self.target.name, Key=wire_item(key),
                     ConsistentRead=True).get("Item")
        held = plain_item(found) if found is not None else {}
        candidates = [{k: held[k] for k in self.source_key_names}] if all(k in held for k in self.source_key_names) else []
        if origin and origin not in candidates:
            candidates.append(origin)
        return candidates

    def same_now(self, key: dict, sources: Optional[list] = None) -> bool:
        """The target, read consistently now, holds what each source item (read now) maps to,
        and at `key` nothing else."""
        from .checksum import SKIP, canonical

        def get(table: str, wanted: dict) -> Optional[dict]:
            item = call(self.client, "GetItem", "dynamodb", TableName=table, Key=wire_item(wanted),
                        ConsistentRead=True).get("Item")
            return plain_item(item) if item is not None else None
        at_key = get(self.target.name, key)
        expected_at_key = None
        for source in sources if sources is not None else [key]:
            item = get(self.migration.source, source)
            expected = self.expected(item) if item is not None else SKIP
            if not isinstance(expected, dict):     # SKIP: the transform drops it
                continue
            where = {k: expected[k] for k in self.key_names if k in expected}
            held = at_key if where == key else get(self.target.name, where)
            if held is None or canonical(held) != canonical(expected):
                return False
            if where == key:
                expected_at_key = expected
        return at_key is None if expected_at_key is None else True

    # -- the switch -----------------------------------------------------------------------
    def switch(self, online: Optional[Online] = None) -> MigrationResult:
        from .ledger import SWITCHED
        variables = bound_variables(self.environment, self.target.spec_name)
        if not variables:   # nothing of checker's to switch: the migration ends at the verified copy
            self.warnings.append(f"no lambda.bindings variable names {self.target.spec_name}: nothing switched; point "
                                 f"the app at {self.target.name} with its deploy")
            self.ledger.update(self.migration.id, status=SWITCHED, switchedAt=now_iso(), variables="")
            return self.result(self.ledger.get(self.migration.id), SWITCHED,
                               f"copied and verified into {self.target.name}; no binding to switch; "
                               f"{self.migration.source} is kept")
        self.ledger.require()   # a run whose lease was taken never switches
        switched = switch_binding(self.environment, variables, self.migration.source, self.target.name, self.target,
                                  self.warnings, self.echo)
        if online is not None:
            self.drain_after_switch(online)
        self.ledger.update(self.migration.id, status=SWITCHED, switchedAt=now_iso(), switchedAtMs=int(self.clock.wall() * 1000),
                           variables=",".join(variables))
        detail = (f"{self.migration.source} -> {self.target.name}: copied, verified, {', '.join(variables)} switched"
                  if switched else f"{', '.join(variables)} already named {self.target.name}")
        detail += (f"; {self.migration.source} is kept: after your retention period, "
                   f"`aws dynamodb delete-table --table-name {self.migration.source}`")
        return self.result(self.ledger.get(self.migration.id), SWITCHED, detail, switched)

    def drain_after_switch(self, online: Online) -> None:
        """Invocations already running keep the old variables for up to the function's Timeout:
        their writes to the source are replayed for that long, never over the switched app's."""
        from .stream import tail_for
        config = call(self.environment.aws.client("lambda"), "GetFunctionConfiguration", "lambda",
                      FunctionName=self.environment.function_name)
        seconds = float(config.get("Timeout") or 3) + 1
        self.echo(f"{self.migration.id}: replaying the source's stream for {seconds:g} s more (the function's "
                  "Timeout: invocations that started before the switch)")
        online.catch_up.switched = True
        online.catch_up.switched_at = self.clock.wall()
        tail_for(online.reader, online.catch_up, seconds, online.save, clock=self.clock)
        conflicts, uncertain = online.catch_up.conflicts, online.catch_up.uncertain
        if conflicts:
            self.warnings.append(f"{len(conflicts)} key(s) written to the source by invocations that started before "
                                 "the switch were also written by the switched app; the app's version was kept (the "
                                 "keys are listed: look at each)")
        if uncertain:
            self.warnings.append(f"{len(uncertain)} key(s) created on the source just before the switch (or moved to "
                                 f"a new key) were written to {self.target.name} after it; if the switched app deleted "
                                 "or moved one meanwhile, delete it again (the keys are listed)")
        self.keys += [dict(key, why="the app's version kept") for key in conflicts]
        self.keys += [dict(key, why="created (or moved) before the switch, written after it") for key in uncertain]

    def result(self, entry: Optional[LedgerEntry], status: MigrationStatus, detail: str, switched: bool = False
               ) -> MigrationResult:
        read, written = (entry.items_read, entry.items_written) if entry is not None else (0, 0)
        return MigrationResult(self.migration.id, "table", status, detail, read, written, keys=list(self.keys),
                               warnings=list(self.warnings), switched=switched)


@dataclass
class Online:
    reader: StreamReader
    catch_up: CatchUp
    save: Callable[[], None]     # the stream positions into the ledger


class Tailer(threading.Thread):
    """The stream read and replayed while the copy runs (iterators expire after 15 minutes unread)."""

    def __init__(self, online: Online, interval: float = 0.5):
        super().__init__(name="stream-tailer", daemon=True)
        self.online, self.interval = online, interval
        self.stopping = threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.online.catch_up.apply(self.online.reader.poll())
                self.online.save()
            except BaseException as exc:  # noqa: BLE001 - raised in the migration's thread by finish()
                self.error = exc
                return

    def finish(self) -> None:
        self.stopping.set()
        self.join()
        if self.error is not None:
            raise self.error


def _without_source(table):
    import dataclasses
    return dataclasses.replace(table, migrate_from=None)


def keys_only_in(client, table: str, other: str, key_names: tuple, limit: int = 50) -> tuple:
    """(how many, up to `limit` of them) keys of `table` that `other` does not hold."""
    from ..errors import pages
    names = {f"#k{n}": k for n, k in enumerate(key_names)}
    count, shown = 0, []   # type: tuple[int, list]
    for page in pages(client, "Scan", "dynamodb", TableName=table, ProjectionExpression=", ".join(names),
                      ExpressionAttributeNames=names):
        keys = page.get("Items", [])
        for start in range(0, len(keys), 100):
            chunk = keys[start:start + 100]
            found: list = []
            request = {other: {"Keys": chunk, "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}}
            while request:
                answer = call(client, "BatchGetItem", "dynamodb", RequestItems=request)
                found += answer.get("Responses", {}).get(other, [])
                request = answer.get("UnprocessedKeys") or {}
            have = {json.dumps(k, sort_keys=True) for k in found}
            for key in chunk:
                if json.dumps(key, sort_keys=True) not in have:
                    count += 1
                    if len(shown) < limit:
                        shown.append({k: str(v) for k, v in plain_item(key).items()})
    return count, shown


def rollback(environment: Environment, ledger, migration: TableMigration, echo: Callable[[str], None] = lambda line: None
             ) -> MigrationResult:
    """Switch the binding back to the source (same guard), and list the keys written only to the
    target since the switch: the app's writes there, which the source does not have."""
    from .ledger import ROLLED_BACK, SWITCHED
    entry = ledger.get(migration.id) if ledger.exists() else None
    if entry is None or entry.status is not SWITCHED:
        raise CheckerError(f"{migration.id}: nothing to roll back (ledger: {entry.status if entry else 'no entry'}); "
                           "only a switched table migration rolls back")
    warnings: list = []
    variables = list(entry.variables) or bound_variables(
        environment, migration.target.spec_name)
    ledger.require()
    switch_binding(environment, variables, migration.target.name, migration.source, None, warnings, echo)
    count, keys = keys_only_in(environment.dynamodb(), migration.target.name, migration.source,
                               key_names_of(migration.target))
    ledger.update(migration.id, status=ROLLED_BACK, rolledBackAt=now_iso())
    detail = (f"{', '.join(variables)} -> {migration.source} again; {count} key(s) were written only to "
              f"{migration.target.name} since the switch")
    return MigrationResult(migration.id, "table", ROLLED_BACK, detail, keys=keys, warnings=warnings, switched=True)
