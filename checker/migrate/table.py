"""A table migration, offline: create the target from its spec, copy every item, verify both
sides item by item (checksums), then switch the function's binding; never delete the source.

Each step records its end in the ledger, so a rerun goes on where the last one stopped: a copy
from its segments' checkpoints, a verified copy straight to the switch. The switch is a
read-modify-write of the function's whole Environment guarded by its RevisionId, made only after
the role is shown to be allowed on the target whatever it is allowed on the source.
"""
from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..apply import apply_plan
from ..errors import AwsError, CheckerError, call
from ..items import plain_item, wire_item
from ..poll import REAL, Clock, Deadline, poll
from ..text import clip
from .declared import MigrationResult, TableMigration, key_names_of
from .fence import Fence, fence_for, fence_record, lift_fence, put_fence
from .ledger import LedgerEntry, MigrationStatus, caller_arn, now_iso
from .options import MigrateOptions
from .s3 import creation_parameters, export_and_import
from .stream import STREAM_POLLS, CatchUp, StreamLost, StreamReader, tail_until_small_lag
from .switch import bound_to, bound_variables, require_role, switch_binding

if TYPE_CHECKING:
    from ..environment import Environment

REPAIR_LIMIT = 10_000  # differing keys a verification round copies again one by one (more: the next round)
VERIFY_ROUNDS = 3
ITEM_LIMIT = 400 * 1024   # DynamoDB's item size limit: a transform that grows an item past it stops the run


def failing(holds: Callable[[dict], bool], keys: list) -> list:
    """The keys `holds` says no to, 8 looked at a time: each look is a few round trips, which
    overlap (a checker far from its tables spends its time waiting on them)."""
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="keys") as pool:
        return [key for key, ok in zip(keys, pool.map(holds, keys), strict=True) if not ok]


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


@dataclass(frozen=True)
class ItemMapping:
    """A user's function from one table's items to the other's (`transform` forward, `reverse`
    back in a rollback), its result checked item by item: a dict with the other table's key,
    storable, under 400 KB; None leaves the item out. No function: the item itself."""
    migration_id: str
    function: Optional[Callable]
    name: str
    role: str                # "transform" or "reverse", as the checklist names it
    key_names: tuple         # the key its results must have
    from_key_names: tuple    # the key of the items it is given (named in errors)

    def wire(self, item: dict) -> Optional[dict]:
        """A wire item -> the other table's wire item, or None to leave it out."""
        if self.function is None:
            return item
        label = f"{self.migration_id}: {self.role} {self.name}"
        try:
            new = self.function(plain_item(item))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's function (sys.exit too): named, stopped
            raise CheckerError(f"{label} raised {type(exc).__name__}: {clip(str(exc), 200)}; stopped at the last "
                               "checkpoint: fix it and run the same command again") from None
        if new is None:
            return None
        shown = json.dumps({k: str(v) for k, v in plain_item({k: item[k] for k in self.from_key_names
                                                              if k in item}).items()})
        if not isinstance(new, dict):
            raise CheckerError(f"{label} returned a {type(new).__name__} for the item {shown}, not an item (a dict) or None")
        missing = [k for k in self.key_names if k not in new or new[k] in (None, "")]
        if missing:
            raise CheckerError(f"{label} returned an item without the key's {', '.join(missing)} for the item "
                               f"{shown}: return None to leave an item out; nothing of it was written")
        try:
            wire = wire_item(new)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise CheckerError(f"{label} returned a value DynamoDB cannot store for the item {shown}: "
                               f"{clip(str(exc), 200)}") from None
        from .copy import item_bytes
        size = item_bytes(wire)
        if size > ITEM_LIMIT:
            raise CheckerError(f"{label} made the item of {shown} {size:,} bytes, over DynamoDB's 400 KB item limit; "
                               f"nothing was switched: fix the {self.role} and run the command again")
        return wire

    def plain(self, item: dict):
        """A plain item -> what the other table should hold for it (plain), or checksum's SKIP."""
        from .checksum import SKIP
        if self.function is None:
            return item
        new = self.function(dict(item))
        return SKIP if new is None else plain_item(wire_item(new))


class TableMigrationRun:
    def __init__(self, environment: Environment, ledger, migration: TableMigration, options: MigrateOptions,
                 deadline: Optional[Deadline] = None, echo: Callable[[str], None] = lambda line: None,
                 clock: Clock = REAL, variables: Optional[list] = None, rollback_of: Optional[LedgerEntry] = None):
        self.environment, self.ledger, self.migration, self.options, self.echo = environment, ledger, migration, options, echo
        # a rollback run (reversed_migration): the forward migration's ledger entry, whose fence on the
        # old table is lifted only for the switch back, and the variables that switch named
        self.rollback_of = rollback_of
        self.variables = variables
        self.again = (f"run checker migrate rollback {rollback_of.id} again" if rollback_of is not None
                      else "run checker migrate again")
        self.deadline = deadline   # the migration's --timeout: copies and catch-ups stop at a checkpoint
        self.clock = clock
        self.client = environment.dynamodb()
        self.target = migration.target
        self.key_names = key_names_of(self.target)
        self.source_key_names: tuple = ()   # the live source's, read when the run starts
        self.warnings: list = []
        self.keys: list = []          # keys the user must look at (after the switch: conflicts)
        self.fence: Optional[Fence] = None   # the source's fence, once raised (by this run or a killed one)

    # -- the steps --------------------------------------------------------------------------
    def run(self) -> MigrationResult:
        from .ledger import COPIED, RUNNING, SWITCHED, VERIFIED
        entry = self.own_entry()
        status = entry.status if entry is not None else None
        if status == SWITCHED:
            return self.result(entry, SWITCHED, "switched already; nothing to do")
        self.fence = entry.fence if entry is not None else None      # a killed run's fence is still up
        source = call(self.client, "DescribeTable", "dynamodb", missing_ok=True, TableName=self.migration.source)
        if source is None:
            raise CheckerError(f"{self.migration.id}: the source table {self.migration.source} does not exist; "
                               "nothing to migrate (remove migrate_from and run checker apply)")
        if self.rollback_of is None:      # a rollback's target is the old table, as the switch left it
            self.prepare_target(source["Table"])
        if entry is None:
            self.ledger.put(self.migration.id, kind="table", status=RUNNING, source=self.migration.source,
                            target=self.target.name, transform=self.migration.transform_name or "",
                            startedAt=now_iso(), caller=caller_arn(self.environment), itemsRead=0, itemsWritten=0,
                            checkpoints={}, **({"forSwitchAtMs": self.rollback_of.fields.get("switchedAtMs") or 0}
                                               if self.rollback_of is not None else {}))
        self.source_key_names = tuple(k["AttributeName"] for k in source["Table"]["KeySchema"])
        variables = self.variables if self.variables is not None else bound_variables(self.environment,
                                                                                      self.target.spec_name)
        if self.fence is not None and bound_to(self.environment, variables, self.target.name):
            return self.switched_already(entry, variables)
        try:
            online = self.online(source["Table"], entry, status)
            if online is None and variables and self.options.switch:
                # offline: the user's word that the app does not write, made true: its writes are refused
                self.raise_fence()
            if status not in (COPIED, VERIFIED, MigrationStatus.DIFFERS):   # a finished copy is not copied again
                self.copy_beside(online, entry if status != MigrationStatus.STREAM_LOST else None, source["Table"])
                self.ledger.update(self.migration.id, status=COPIED, copiedAt=now_iso())
            if online is not None:
                online.catch_up.after_copy()
                tail_until_small_lag(online.reader, online.catch_up, self.deadline, online.save, clock=self.clock)
                self.echo(f"{self.migration.id}: caught up from the stream: {online.catch_up.replayed} change(s) "
                          f"replayed ({online.reader.polls} polls)")
            # a copy verified by an earlier run (--no-switch, or killed since) is verified again: the app
            # wrote meanwhile, and the keys it wrote since that verification are known only to this run
            self.verify(online)
            if not self.options.switch:
                self.unfence_unless_switched(variables)
                return self.result(self.ledger.get(self.migration.id), VERIFIED,
                                   f"copied and verified into {self.target.name}; the switch is pending (--no-switch)")
            return self.cut_over(online, variables)
        except StreamLost:
            # writes the target may lack: only a fresh copy (every checkpoint and stream position dropped) is sound
            self.unfence_unless_switched(variables)
            self.ledger.update(self.migration.id, status=MigrationStatus.STREAM_LOST, checkpoints={}, streamPositions={},
                               itemsRead=0, itemsWritten=0)
            raise
        except BaseException:
            self.unfence_unless_switched(variables)
            raise

    def own_entry(self) -> Optional[LedgerEntry]:
        """This migration's ledger entry to go on from, or None to start afresh: after a rollback
        the migration forward again copies afresh (the rollback's fence on the target lifted: the
        app is to write there again), and a rollback's entry left by an earlier rollback does not
        count either."""
        from .ledger import ROLLED_BACK
        entry = self.ledger.get(self.migration.id)
        if entry is not None and self.rollback_of is not None and \
                (entry.fields.get("forSwitchAtMs") or 0) != (self.rollback_of.fields.get("switchedAtMs") or 0):
            return None
        if entry is not None and entry.status is ROLLED_BACK:
            if entry.fence is not None and entry.fence.table == self.target.name:
                lift_fence(self.environment, entry.fence)
            self.echo(f"{self.migration.id}: rolled back before: migrating again, copied afresh into {self.target.name}")
            return None
        return entry

    def prepare_target(self, source: dict) -> None:
        """The target created from its spec (or, --via s3, checked to be importable), after the
        gate on what it would drop."""
        self.gate(source)
        if self.options.via != "s3":
            self.create_target()
            return
        if self.migration.transform is not None:
            raise CheckerError(f"{self.migration.id}: --via s3 imports the export as it is and cannot run the "
                               f"transform {self.migration.transform_name}; nothing was done: migrate without "
                               "--via s3 (the parallel Scan transforms every item)")
        creation_parameters(self.target.spec.request)    # an LSI target is refused before anything is done

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
        resumed = (dict(entry.stream_positions) if entry is not None
                   and status in (COPIED, VERIFIED, MigrationStatus.DIFFERS) else {})
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
        from ..diff import diff_table
        from ..model import Action, LiveTable
        replaced = [c for c in diff_table(_without_source(self.target), LiveTable(self.target.name, exists["Table"]))
                    if c.action is Action.REPLACE_TABLE]
        if replaced:       # diffed before anything is written into it
            raise CheckerError(f"{self.migration.id}: {self.target.name} exists, but not as its spec says "
                               f"({clip('; '.join(c.detail for c in replaced), 300)}): nothing was written into it; "
                               "rename the spec's table, or delete that table yourself if it is a leftover")
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
        from .ledger import checkpoints_of, resumed_segments
        target = call(self.client, "DescribeTable", "dynamodb", TableName=self.target.name)["Table"]
        segments = resumed_segments(self.ledger, self.migration.id, self.ledger.get(self.migration.id),
                                    self.options.segments, self.echo)
        counts = Counts(entry.items_read, entry.items_written) if entry is not None else Counts()

        def checkpoint(segment, key, read, written):
            counts.add(read, written)
            self.ledger.checkpoint(self.migration.id, segment, key, read, written)
        copy_items(self.client, self.migration.source, self.target.name, checkpoints_of(entry), checkpoint,
                   transform=self.transformed if self.migration.transform is not None else None,
                   read_rate=capacity_rate(source, "ReadCapacityUnits", self.options.capacity_share),
                   write_rate=capacity_rate(target, "WriteCapacityUnits", self.options.capacity_share),
                   segments=segments, deadline=self.deadline, page_limit=self.options.page_items,
                   clock=self.clock,
                   counts=counts, expected=int(source.get("ItemCount") or 0) or None, echo=self.echo)

    def transformed(self, item: dict) -> Optional[dict]:
        return self.forward().wire(item)

    def expected(self, item: dict):
        """What verification expects in the target for a plain source item."""
        return self.forward().plain(item)

    def forward(self) -> ItemMapping:
        return ItemMapping(self.migration.id, self.migration.transform, self.migration.transform_name or "",
                           "transform" if self.rollback_of is None else "reverse", self.key_names, self.source_key_names)

    def verify(self, online: Optional[Online] = None) -> None:
        """Both sides read whole and checksummed by bucket. Where they differ, each differing key
        is copied again from the source (a replay: its state now) and compared again; online, a
        key still differing is one the app keeps writing: it is compared again under the fence,
        where the app cannot write. A few rounds; what still differs stops the migration at
        `differs`, and the same command re-verifies and repairs again."""
        from .checksum import differing_keys, table_checksum
        from .copy import Scan
        from .ledger import DIFFERS, VERIFIED
        from .stream import key_json

        def scan(name: str) -> Scan:
            return Scan(self.client, name, self.options.segments, page_limit=self.options.page_items, clock=self.clock)
        repair = online.catch_up if online is not None else CatchUp(
            self.client, self.migration.source, self.target.name, self.key_names,
            self.transformed if self.migration.transform is not None else None, copying=False)
        moved = set(self.key_names) != set(self.source_key_names)
        if online is not None:
            online.catch_up.touched.clear()   # from here on, every key the app writes is compared at the cut-over
        repaired = deferred = 0
        for _ in range(VERIFY_ROUNDS):
            self.echo(f"{self.migration.id}: verifying every item of {self.migration.source} against {self.target.name}")
            mine = table_checksum(scan(self.migration.source), self.key_names, self.expected)
            theirs = table_checksum(scan(self.target.name), self.key_names)
            buckets = mine.differing_buckets(theirs)
            if not buckets:
                break
            origins: dict = {}
            keys = differing_keys(scan(self.migration.source), scan(self.target.name), self.key_names, buckets,
                                  self.expected, limit=REPAIR_LIMIT, origins=origins,
                                  source_key_names=self.source_key_names)
            if online is not None:
                tail_until_small_lag(online.reader, online.catch_up, self.deadline, online.save, clock=self.clock)
            still = failing(functools.partial(self.caught_up, repair, origins=origins), keys)
            repaired += len(keys) - len(still)
            if online is not None and not moved:
                for key in still:                  # the app writes it still: compared under the fence
                    online.catch_up.touched[key_json(wire_item(key))] = wire_item(key)
                deferred += len(still)
                still = []
            if not still and len(keys) < REPAIR_LIMIT:
                break
        else:
            shown = "; ".join(json.dumps({k: str(v) for k, v in key.items()}) for key in still)
            self.ledger.update(self.migration.id, status=DIFFERS, verifiedAt=now_iso())
            raise CheckerError(f"{self.migration.id}: {self.target.name} differs from {self.migration.source} "
                               f"({mine.count} item(s) expected, {theirs.count} found) after {VERIFY_ROUNDS} rounds "
                               f"of repair; not switched. Differing keys: {clip(shown, 600)}; {self.again}: it "
                               "verifies and repairs again")
        if repaired or deferred:
            self.echo(f"{self.migration.id}: {repaired} differing key(s) copied again and matched; {deferred} the "
                      "app keeps writing, compared again under the fence")
        self.ledger.update(self.migration.id, status=VERIFIED, verifiedAt=now_iso(), checksum=mine.total,
                           itemCount=mine.count)

    def caught_up(self, catch_up: CatchUp, key: dict, origins: dict, attempts: int = 3) -> bool:
        """A key that differed while the app wrote: replayed and compared again, a few times (the
        app may write it again between the two reads). Under a new key schema the source items
        behind it are replayed: the one the target's item came from (when it carries the
        source's key) and the one that mapped to it when verification read the source."""
        from .checksum import key_name
        moved = set(self.key_names) != set(self.source_key_names)
        sources = [key] if not moved else self.sources_of(key, origins.get(key_name(key)))
        if not sources:
            # no source item maps to it and the target's item names none: a leftover (an item the app
            # moved or deleted; in a rollback, since the switch), deleted if it is still what was read.
            # A source item written meanwhile that maps here is a key the stream names: it is
            # compared again under the fence
            self.delete_leftover(key)
            return self.same_now(key, [])
        for _ in range(attempts):
            for source in sources:
                catch_up.replay(wire_item(source), stale=[wire_item(key)] if moved else None)
            if self.same_now(key, sources):
                return True
        return False

    def delete_leftover(self, key: dict) -> None:
        from .stream import unchanged_condition
        found = call(self.client, "GetItem", "dynamodb", TableName=self.target.name, Key=wire_item(key),
                     ConsistentRead=True).get("Item")
        if found is None:
            return
        try:
            call(self.client, "DeleteItem", "dynamodb", TableName=self.target.name, Key=wire_item(key),
                 **unchanged_condition(wire_item(key), found))
        except AwsError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise

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

    # -- the cut-over ---------------------------------------------------------------------
    def raise_fence(self) -> Fence:
        """Deny the app's writes to the source (recorded in the ledger before anything relies on it).
        First the role is proven allowed on the target: a fence denies writes on the source, and
        the role would then seem to need less there."""
        if self.fence is None and self.environment.function_name:
            if bound_to(self.environment, bound_variables(self.environment, self.target.spec_name), self.target.name):
                raise CheckerError(f"{self.migration.id}: the function's binding already names {self.target.name}, "
                                   "but checker did not switch it (no fence of its own in the ledger): the app writes "
                                   f"{self.target.name} now; copying from {self.migration.source} would overwrite its "
                                   "writes. Nothing done: point the binding back, or remove migrate_from")
            if self.rollback_of is None:   # back: the role was proven on the old table before it was left
                require_role(self.environment, None, self.migration.source, self.target.name, self.target)
        fence = fence_for(self.environment, self.migration.source, caller_arn(self.environment))
        self.ledger.update(self.migration.id, fence=fence_record(fence), fencedAt=now_iso())
        put_fence(self.environment, fence)
        self.fence = fence
        self.echo(f"{self.migration.id}: fenced: {fence.describe()}")
        return fence

    def unfence_unless_switched(self, variables: list) -> None:
        """A run that stops before the switch gives the source back to the app; once the binding
        names the target (a switch made, even by a run killed right after), the fence stays."""
        fence = self.fence
        if fence is None:
            return
        try:
            if variables and bound_to(self.environment, variables, self.target.name):
                return
            left = self.rollback_of.fence if self.rollback_of is not None else None
            if left is not None:    # a rollback that did not switch back: the old table stays fenced
                put_fence(self.environment, left)
            lift_fence(self.environment, fence)
            self.ledger.update(self.migration.id, fence={})
            self.echo(f"{self.migration.id}: the fence is lifted: the app writes {self.migration.source} again")
            self.fence = None
        except (AwsError, CheckerError) as exc:
            self.warnings.append(f"the fence could not be lifted ({exc}): the app's writes to {self.migration.source} "
                                 f"are still denied; {self.again}, or `aws iam delete-role-policy "
                                 f"--role-name {fence.role} --policy-name {fence.policy}`")
            self.echo(f"{self.migration.id}: WARNING: {self.warnings[-1]}")

    def cut_over(self, online: Optional[Online], variables: list) -> MigrationResult:
        """Fence the source, wait for its stream to go quiet (the evidence the fence holds), verify
        every key written since the verification, switch, and leave the source fenced."""
        from .ledger import SWITCHED
        if not variables:   # nothing of checker's to switch: the migration ends at the verified copy
            self.warnings.append(f"no lambda.bindings variable names {self.target.spec_name}: nothing switched; point "
                                 f"the app at {self.target.name} with its deploy")
            self.ledger.update(self.migration.id, status=SWITCHED, switchedAt=now_iso(), variables="")
            return self.result(self.ledger.get(self.migration.id), SWITCHED,
                               f"copied and verified into {self.target.name}; no binding to switch; "
                               f"{self.migration.source} is kept")
        self.ledger.require()   # a run whose lease was taken never fences nor switches
        started = self.clock.now()
        fence = self.raise_fence()
        if not bound_to(self.environment, variables, self.target.name):
            if online is not None:
                self.echo(f"{self.migration.id}: waiting for {self.migration.source}'s stream to stay quiet for "
                          f"{self.options.fence_quiet:g} s (the evidence that the fence holds)")
                self.settle(online, started)
                self.verify_touched(online)
            self.ledger.require()
        if self.rollback_of is not None and self.rollback_of.fence is not None:
            lift_fence(self.environment, self.rollback_of.fence)   # back: the old table takes the app's writes again
        switched = switch_binding(self.environment, variables, self.migration.source, self.target.name, self.target,
                                  self.warnings, self.echo, proven=bool(self.environment.function_name))
        paused = self.clock.now() - started
        if online is not None:
            self.breaches(online)
        self.ledger.update(self.migration.id, status=SWITCHED, switchedAt=now_iso(), switchedAtMs=int(self.clock.wall() * 1000),
                           variables=",".join(variables), pauseSeconds=round(paused, 3))
        self.echo(f"{self.migration.id}: the app's writes were refused for {paused:.1f} s (from the fence to the "
                  "switch's end)")
        detail = (f"{self.migration.source} -> {self.target.name}: copied, verified, {', '.join(variables)} switched; "
                  f"writes paused {paused:.1f} s" if switched else f"{', '.join(variables)} already named {self.target.name}")
        detail += (f"; {self.migration.source} is kept, fenced ({fence.describe()}): after your retention period, "
                   f"`aws dynamodb delete-table --table-name {self.migration.source}`")
        return self.result(self.ledger.get(self.migration.id), SWITCHED, detail, switched)

    def switched_already(self, entry: Optional[LedgerEntry], variables: list) -> MigrationResult:
        """The binding names the target though the ledger does not say switched, and the ledger
        records checker's fence: a run killed between the switch and its ledger write (the switch
        came after the fenced verification). Recorded; nothing copied (the app writes there now)."""
        from .ledger import SWITCHED
        self.ledger.update(self.migration.id, status=SWITCHED, switchedAt=now_iso(),
                           switchedAtMs=int(self.clock.wall() * 1000), variables=",".join(variables))
        return self.result(self.ledger.get(self.migration.id), SWITCHED,
                           f"{', '.join(variables)} were switched to {self.target.name} by a run that stopped before "
                           f"recording it; {self.migration.source} stays fenced ({self.fence.describe() if self.fence else ''})")

    def settle(self, online: Online, started: float) -> None:
        """Replay until the fenced source's stream has been quiet for `fence_quiet` seconds; still
        written `fence_settle` seconds after the fence: it does not hold (another writer, or IAM
        not consistent yet): refused (the caller lifts the fence)."""
        quiet = self.options.fence_quiet
        limit = max(self.options.fence_settle, quiet + 1.0)
        last = [started]

        def look() -> float:
            records = online.reader.poll()
            online.catch_up.apply(records)
            online.save()
            if records:
                last[0] = self.clock.now()
            return self.clock.now() - last[0]
        waited = poll(look, lambda calm: calm >= quiet, STREAM_POLLS, Deadline(limit, clock=self.clock), clock=self.clock)
        if not waited.done:
            raise CheckerError(f"{self.migration.id}: writes to {self.migration.source} still arrived {limit:g} s after "
                               f"the fence ({self.fence.describe() if self.fence else ''}): it does not hold (a writer "
                               "other than the function's role, or a backend that does not enforce IAM); the fence is "
                               "lifted, nothing was switched")

    def verify_touched(self, online: Online) -> None:
        """Every key a record named since the full verification began, compared source against
        target (consistent reads, 100 keys a request: this runs while the app's writes wait),
        replayed once more where they differ; one still differing: refused."""
        touched = list(online.catch_up.touched.values())
        online.catch_up.touched.clear()
        if not touched:
            return
        wrong = self.not_holding(touched)
        if wrong:
            online.catch_up.replay_all([(key, [], 0.0) for key in wrong])
            wrong = self.not_holding(wrong)
        if wrong:
            shown = "; ".join(json.dumps(plain_item(k), default=str) for k in wrong[:20])
            raise CheckerError(f"{self.migration.id}: {len(wrong)} key(s) written during the migration differ between "
                               f"{self.migration.source} and {self.target.name} under the fence: {clip(shown, 600)}; "
                               f"the fence is lifted, nothing was switched; {self.again}")
        self.echo(f"{self.migration.id}: {len(touched)} key(s) written since the verification checked under the fence")

    def not_holding(self, source_keys: list) -> list:
        """The source keys (wire) at which the target does not hold what the source's item, read
        now, maps to; a deleted (or dropped) item must be absent where it was (under the same key
        schema; a moved one: its replay deleted it)."""
        from ..items import canonical
        from .checksum import key_name
        from .copy import read_batches
        never = threading.Event()

        def name(key: dict) -> str:       # numbers as DynamoDB normalises them: 1.50 and 1.5 are one key
            return key_name(plain_item(key))

        def by_key(items: list, key_names: tuple) -> dict:
            return {name({k: item[k] for k in key_names}): item for item in items}
        sources = by_key(read_batches(self.client, self.migration.source, source_keys, never, None),
                         self.source_key_names)
        wrong: list = []
        wanted: list = []     # (source key, target key (wire), the expected plain item or None)
        for key in source_keys:
            found = sources.get(name(key))
            expected = self.expected(plain_item(found)) if found is not None else None
            if not isinstance(expected, dict):      # deleted, or left out by the transform
                if set(self.key_names) == set(key):
                    wanted.append((key, key, None))
                continue
            where = {k: expected[k] for k in self.key_names if k in expected}
            if len(where) != len(self.key_names):
                wrong.append(key)
                continue
            wanted.append((key, wire_item(where), expected))
        target_keys = list({name(where): where for _, where, _ in wanted}.values())
        held = by_key(read_batches(self.client, self.target.name, target_keys, never, None) if target_keys else [],
                      self.key_names)
        for key, where, expected in wanted:
            item = held.get(name(where))
            if not (item is None if expected is None else
                    item is not None and canonical(plain_item(item)) == canonical(expected)):
                wrong.append(key)
        return wrong

    def breaches(self, online: Online) -> None:
        """A last look at the source's stream after the switch: a write there passed the fence.
        Replayed where the switched app has not written the key since, else listed."""
        from .stream import tail_for
        online.catch_up.switched = True
        online.catch_up.switched_at = self.clock.wall()
        before = online.catch_up.replayed
        polls = online.reader.polls
        tail_for(online.reader, online.catch_up, 1.0, online.save, clock=self.clock)
        seen = online.catch_up.replayed - before + len(online.catch_up.conflicts) + len(online.catch_up.uncertain)
        if not seen:
            return
        self.warnings.append(f"{seen} write(s) reached {self.migration.source} after the fence was seen to hold "
                             f"({online.reader.polls - polls} polls): another writer than the function's role, or IAM "
                             "was not yet consistent; replayed where the switched app had not written (listed otherwise)")
        conflicts, uncertain = online.catch_up.conflicts, online.catch_up.uncertain
        self.keys += [dict(key, why="written to the source after the fence; the app's version kept") for key in conflicts]
        self.keys += [dict(key, why="created on the source after the fence, written after the switch") for key in uncertain]

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


def keys_differing(scan: Callable, source: str, target: str, key_names: tuple, mapping: Callable,
                   extra: Optional[list] = None) -> tuple:
    """(every key (plain, of `key_names`) at which `target` does not hold what `source`'s items
    map to, how many items they map to); `extra`: filled with the keys only `target` holds. Two
    checksummed scans, then only the buckets that differ read again key by key."""
    from .checksum import differing_keys, table_checksum
    mine = table_checksum(scan(source), key_names, mapping)
    buckets = mine.differing_buckets(table_checksum(scan(target), key_names))
    if not buckets:
        return [], mine.count
    return differing_keys(scan(source), scan(target), key_names, buckets, mapping, limit=None, extra=extra), mine.count


def copied_back(client, scan: Callable, migration: TableMigration, source_keys: tuple, back: ItemMapping,
                echo: Callable[[str], None]) -> int:
    """After the copy back (the target fenced): delete from the source the keys the target no
    longer maps to (the app deleted or moved them since the switch), then prove the source holds
    exactly what the target maps back to. Returns the item count."""
    extra: list = []
    differing, count = keys_differing(scan, migration.target.name, migration.source, source_keys, back.plain, extra)
    if len(differing) != len(extra):
        raise CheckerError(f"{migration.id}: {len(differing) - len(extra)} item(s) of {migration.source} differ from "
                           f"what {migration.target.name} maps back to after the copy back (a writer the fence does "
                           "not cover, or a reverse that is not the transform's inverse?); nothing was switched back")
    for key in extra:
        call(client, "DeleteItem", "dynamodb", TableName=migration.source, Key=wire_item(key))
    echo(f"{migration.id}: {len(extra)} key(s) deleted from {migration.source} (the app deleted or moved them "
         "since the switch)")
    if extra and keys_differing(scan, migration.target.name, migration.source, source_keys, back.plain)[0]:
        raise CheckerError(f"{migration.id}: {migration.source} differs from {migration.target.name} after the copy "
                           "back: a writer the fence does not cover? nothing was switched back")
    return count


def rollback(environment: Environment, ledger, migration: TableMigration, options: Optional[MigrateOptions] = None,
             echo: Callable[[str], None] = lambda line: None, clock: Clock = REAL) -> MigrationResult:
    """The cut-over's mirror. Online (`catch_up: stream`, unless --offline): the forward path run
    backwards while the app writes the new table: its stream read, every item copied back
    (through the checklist's `reverse` when a transform or a key change made it), the catch-up,
    the verification, then the new table fenced, drained, its touched keys checked, and the
    binding switched back: the app's writes wait only for the cut-over. Offline: the new table
    fenced for the whole copy back. Reshaped without a `reverse`: refused before anything is
    done, every key of the target the app wrote since the switch listed (what going back by
    hand must carry)."""
    from .copy import Scan
    from .ledger import SWITCHED
    options = options or MigrateOptions()
    entry = ledger.get(migration.id) if ledger.exists() else None
    if entry is None or entry.status is not SWITCHED:
        raise CheckerError(f"{migration.id}: nothing to roll back (ledger: {entry.status if entry else 'no entry'}); "
                           "only a switched table migration rolls back")
    client = environment.dynamodb()
    target_keys = key_names_of(migration.target)
    source = call(client, "DescribeTable", "dynamodb", TableName=migration.source)["Table"]
    source_keys = tuple(k["AttributeName"] for k in source["KeySchema"])

    def scan(name: str) -> Scan:
        return Scan(client, name, options.segments, page_limit=options.page_items, clock=clock)
    reshaped = set(source_keys) != set(target_keys) or migration.transform is not None
    if reshaped and migration.reverse is None:
        forward = ItemMapping(migration.id, migration.transform, migration.transform_name or "", "transform",
                              target_keys, source_keys)
        written, _ = keys_differing(scan, migration.source, migration.target.name, target_keys, forward.plain)
        for key in written:
            echo(f"{migration.id}: written since the switch: {json.dumps({k: str(v) for k, v in key.items()})}")
        raise CheckerError(f"{migration.id}: {migration.target.name} has another key schema than {migration.source} "
                           f"(or a transform made it) and the checklist gives no reverse (tables: "
                           f"{migration.target.spec_name}: reverse: module:function, mapping its items back): "
                           f"nothing was switched back, the app stays on {migration.target.name}. {len(written)} of its "
                           "keys were written, moved or deleted by the app since the switch"
                           + (" (listed above, one a line): going back by hand must carry them" if written else ""))
    variables = list(entry.variables) or bound_variables(environment, migration.target.spec_name)
    if migration.target.catch_up == "stream" and not options.offline:
        return _rollback_online(environment, ledger, migration, entry, source, reshaped, variables, options, echo, clock)
    back = ItemMapping(migration.id, migration.reverse if reshaped else None, migration.reverse_name or "", "reverse",
                       source_keys, target_keys)
    return _rollback_fenced(environment, ledger, migration, entry, scan, back, variables, options, echo, clock)


def reversed_migration(migration: TableMigration, source: dict, reshaped: bool) -> TableMigration:
    """A rollback as a table migration of its own (its ledger item `table:NEW:rollback`): from
    the new table into the old one (`source`, its DescribeTable), which exists and holds what it
    held at the switch; through the reverse when the keys or the items changed."""
    from ..model import ExpectedTable, TableSpec
    request = {"TableName": migration.source, "KeySchema": source["KeySchema"],
               "AttributeDefinitions": source.get("AttributeDefinitions", [])}
    old = ExpectedTable(TableSpec(f"(the live table {migration.source})", request), spec_name=migration.source,
                        catch_up="stream")
    return TableMigration(old, migration.target.name, migration.reverse if reshaped else None,
                          migration.reverse_name if reshaped else None, ledger_id=f"{migration.id}:rollback")


def _rollback_online(environment: Environment, ledger, migration: TableMigration, entry: LedgerEntry, source: dict,
                     reshaped: bool, variables: list, options: MigrateOptions, echo: Callable[[str], None],
                     clock: Clock) -> MigrationResult:
    from .ledger import ROLLED_BACK, SWITCHED
    back = reversed_migration(migration, source, reshaped)
    done = TableMigrationRun(environment, ledger, back, options, None, echo=echo, clock=clock, variables=variables,
                             rollback_of=entry).run()
    if done.status is not SWITCHED:
        raise CheckerError(f"{migration.id}: the rollback stopped at {done.status}: {done.detail}")
    reverse = ledger.get(back.id)
    fence = reverse.fence if reverse is not None else None
    paused = float(reverse.fields.get("pauseSeconds") or 0) if reverse is not None else 0.0
    ledger.update(migration.id, status=ROLLED_BACK, rolledBackAt=now_iso(), fence=fence_record(fence) if fence else {},
                  rollbackPauseSeconds=round(paused, 3))
    detail = (f"{', '.join(variables)} -> {migration.source} again: copied back while the app wrote, caught up, "
              f"verified; writes paused {paused:.1f} s; {migration.target.name} is kept"
              + (f", fenced ({fence.describe()})" if fence else ""))
    return MigrationResult(migration.id, "table", ROLLED_BACK, detail, done.read, done.written, keys=done.keys,
                           warnings=done.warnings, switched=True)


def _rollback_fenced(environment: Environment, ledger, migration: TableMigration, entry: LedgerEntry, scan: Callable,
                     back: ItemMapping, variables: list, options: MigrateOptions, echo: Callable[[str], None],
                     clock: Clock) -> MigrationResult:
    """Offline: the new table fenced for the whole copy back, then verified, then switched back."""
    from .copy import copy_items
    from .ledger import ROLLED_BACK
    client = environment.dynamodb()
    warnings: list = []
    ledger.require()
    started = clock.now()
    fence = fence_for(environment, migration.target.name, caller_arn(environment))
    ledger.update(migration.id, rollbackFence=fence_record(fence))
    put_fence(environment, fence)
    echo(f"{migration.id}: fenced: {fence.describe()}; the app's writes wait for the switch back")
    try:
        clock.sleep(options.fence_quiet)     # IAM's settle; the verification below is the evidence
        echo(f"{migration.id}: copying {migration.target.name} back into {migration.source}")
        copy_items(client, migration.target.name, migration.source, {},
                   transform=back.wire if back.function is not None else None,
                   segments=options.segments, page_limit=options.page_items, clock=clock, echo=echo)
        expected = copied_back(client, scan, migration, back.key_names, back, echo)
        if entry.fence is not None:
            lift_fence(environment, entry.fence)
        ledger.require()
        switch_binding(environment, variables, migration.target.name, migration.source, None, warnings, echo)
    except BaseException:
        if not bound_to(environment, variables, migration.source):
            if entry.fence is not None:
                put_fence(environment, entry.fence)     # the app stays on the target: the source stays fenced
            lift_fence(environment, fence)
            ledger.update(migration.id, rollbackFence={})
        raise
    paused = clock.now() - started
    ledger.update(migration.id, status=ROLLED_BACK, rolledBackAt=now_iso(), fence=fence_record(fence),
                  rollbackPauseSeconds=round(paused, 3))
    detail = (f"{', '.join(variables)} -> {migration.source} again, holding every item of {migration.target.name} "
              f"({expected}); writes paused {paused:.1f} s; {migration.target.name} is kept, fenced")
    return MigrationResult(migration.id, "table", ROLLED_BACK, detail, warnings=warnings, switched=True)
