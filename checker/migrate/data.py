"""A data migration run: every item of one table through the migration's transform, each change
one UpdateItem conditioned on the old values of exactly the attributes it touches (a whole-item
condition is impossible: expressions are capped at 4 KB, items reach 400 KB); an item that
changed meanwhile is read again and transformed again. Checkpointed in the ledger."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..errors import AwsError, CheckerError, call
from ..items import plain_item, same, to_dynamo, wire_item
from ..poll import REAL, Clock, Deadline
from ..text import clip
from .declared import DELETE, DataMigration, MigrationResult, changed_file, key_names_of
from .ledger import MigrationStatus, caller_arn, now_iso

if TYPE_CHECKING:
    from ..environment import Environment

RETRIES = 5          # re-reads of an item that changed under a data migration's update
WRITTEN, UNCHANGED, CHANGED_SINCE = "written", "unchanged", "changed-since"   # what one item's write did
SAMPLES = 5          # keys a dry run shows


def update_request(table_name: str, key_names: tuple, old: dict, new: dict) -> Optional[dict]:
    """The UpdateItem that turns `old` into `new`, conditioned on the old values of exactly the
    attributes it touches; None when nothing changes. A changed key is an error: that is a table
    migration."""
    from boto3.dynamodb.types import TypeSerializer
    serializer = TypeSerializer()
    moved = [k for k in key_names if not same(old.get(k), new.get(k))]
    if moved:
        raise ValueError(f"changes the key attribute(s) {', '.join(moved)}: a data migration keeps keys "
                         "(a new key schema is a table migration: migrate_from)")
    sets = {k: v for k, v in new.items() if k not in key_names and (k not in old or not same(old[k], v))}
    removes = [k for k in old if k not in new]
    if not sets and not removes:
        return None
    # the item must still exist: an UpdateItem creates the item it names, and one the app deleted
    # after the Scan read it would come back as a {key, new attribute} ghost
    names, values, conditions, clauses = {"#key": key_names[0]}, {}, ["attribute_exists(#key)"], []
    for n, (name, value) in enumerate(sets.items()):
        names[f"#s{n}"] = name
        values[f":s{n}"] = serializer.serialize(to_dynamo(value))
        clauses.append(f"#s{n} = :s{n}")
        if name in old:
            values[f":o{n}"] = serializer.serialize(to_dynamo(old[name]))
            conditions.append(f"#s{n} = :o{n}")
        else:
            conditions.append(f"attribute_not_exists(#s{n})")
    for n, name in enumerate(removes):
        names[f"#r{n}"] = name
        values[f":r{n}"] = serializer.serialize(to_dynamo(old[name]))
        conditions.append(f"#r{n} = :r{n}")
    expression = ("SET " + ", ".join(clauses) if clauses else "") + (
        " REMOVE " + ", ".join(f"#r{n}" for n in range(len(removes))) if removes else "")
    return {"TableName": table_name, "Key": wire_item({k: old[k] for k in key_names}),
            "UpdateExpression": expression.strip(), "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


def changed_names(key_names: tuple, old: dict, new: dict) -> list:
    return sorted({k for k, v in new.items() if k not in key_names and (k not in old or not same(old[k], v))}
                  | {k for k in old if k not in new})


def shown_key(item: dict, key_names: tuple) -> dict:
    return {k: str(item.get(k)) for k in key_names}


@dataclass
class DataRun:
    """One data migration over one table: the per-item work every Scan page goes through."""

    client: object
    migration: DataMigration
    table_name: str
    key_names: tuple
    allow_deletes: bool = False
    dry_run: bool = False
    would_change: int = 0
    samples: list = field(default_factory=list)

    def transformed(self, item: dict):
        transform = self.migration.transform
        assert transform is not None, "a data migration runs imported()"
        try:
            return transform(copy.deepcopy(item))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's transform (sys.exit too): named, stopped
            raise CheckerError(f"{self.migration.path.name}: transform raised {type(exc).__name__}: "
                               f"{clip(str(exc), 200)} on the item with key {shown_key(item, self.key_names)}; "
                               "stopped at the last checkpoint: fix it and run checker migrate again") from None

    def page(self, segment: int, items: list) -> int:
        written = 0
        for wire in items:
            written += self.item(plain_item(wire))
        return written

    def item(self, old: dict) -> int:
        """1 when the item was changed; an item that changed since it was read (a failed
        condition) is read again and transformed again."""
        for _ in range(RETRIES):
            new = self.transformed(old)
            if new is None:
                return 0
            if new is DELETE:
                outcome = self.delete(old)
            elif isinstance(new, dict):
                outcome = self.update(old, new)
            else:
                raise CheckerError(f"{self.migration.path.name}: transform returned {type(new).__name__}; expected "
                                   "a dict (the new item), None or checker.migrate.DELETE")
            if outcome is not CHANGED_SINCE:
                return 1 if outcome is WRITTEN else 0
            fresh = call(self.client, "GetItem", "dynamodb", TableName=self.table_name, ConsistentRead=True,
                         Key=wire_item({k: old[k] for k in self.key_names})).get("Item")
            if fresh is None:
                return 0    # deleted meanwhile: nothing to migrate
            old = plain_item(fresh)
        raise CheckerError(f"{self.migration.path.name}: the item with key {shown_key(old, self.key_names)} kept "
                           f"changing under the migration ({RETRIES} tries); run checker migrate again")

    def update(self, old: dict, new: dict) -> str:
        try:
            request = update_request(self.table_name, self.key_names, old, new)
        except ValueError as exc:
            raise CheckerError(f"{self.migration.path.name}: transform {exc} "
                               f"(key {shown_key(old, self.key_names)})") from None
        except TypeError as exc:   # a value DynamoDB cannot hold (a datetime, an object)
            raise CheckerError(f"{self.migration.path.name}: transform returned a value DynamoDB cannot store "
                               f"({clip(str(exc), 160)}) for key {shown_key(old, self.key_names)}") from None
        if request is None:
            return UNCHANGED
        if self.dry_run:
            self.sample(old, changed_names(self.key_names, old, new))
            return UNCHANGED
        try:
            call(self.client, "UpdateItem", "dynamodb", **request)
            return WRITTEN
        except AwsError as exc:
            if exc.code == "ValidationException" and "size" in exc.aws_message.lower():
                raise CheckerError(f"{self.migration.path.name}: the transform's item for key "
                                   f"{shown_key(old, self.key_names)} is over DynamoDB's 400 KB item limit; "
                                   "nothing was written for it: fix the transform and run checker migrate "
                                   "again") from None
            if exc.code != "ConditionalCheckFailedException":
                raise
        return CHANGED_SINCE

    def delete(self, old: dict) -> str:
        """Conditioned on the item being as it was read (the key and as many attributes as an
        expression holds): what the app wrote since is not deleted unseen, it is transformed again."""
        from .stream import unchanged_condition
        if not self.allow_deletes:
            raise CheckerError(f"{self.migration.path.name}: transform returned DELETE for the item with key "
                               f"{shown_key(old, self.key_names)}; deleting needs --allow-deletes")
        if self.dry_run:
            self.sample(old, ["(the whole item: DELETE)"])
            return UNCHANGED
        key = wire_item({k: old[k] for k in self.key_names})
        try:
            call(self.client, "DeleteItem", "dynamodb", TableName=self.table_name, Key=key,
                 **unchanged_condition(key, wire_item(old)))
        except AwsError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
            return CHANGED_SINCE
        return WRITTEN

    def sample(self, old: dict, names: list) -> int:
        self.would_change += 1
        if len(self.samples) < SAMPLES:
            self.samples.append({"key": shown_key(old, self.key_names), "attributes": names})
        return 0


FINAL_PASSES = 3     # after the checkpointed pass: whole passes until one finds nothing left to change


@dataclass
class Left:
    count: int
    samples_keys: list


def final_passes(environment: Environment, run: DataRun, table: str, segments: int, deadline: Optional[Deadline],
                 page_limit: int, clock: Clock, echo: Callable[[str], None], migration_id: str) -> Optional[Left]:
    """A data migration is applied only when a whole pass finds no item its transform would still
    change: items the app wrote in the old shape while the first pass ran are changed by the next.
    None when the last pass found nothing; else what the last pass still changed."""
    from .copy import Scan
    last: Optional[Left] = None
    for attempt in range(FINAL_PASSES):
        changed = Left(0, [])

        def page(segment: int, items: list, changed: Left = changed) -> int:
            written = 0
            for wire in items:
                if run.item(plain_item(wire)):
                    written += 1
                    if len(changed.samples_keys) < SAMPLES:
                        changed.samples_keys.append(shown_key(plain_item(wire), run.key_names))
            changed.count += written
            return written
        Scan(environment.dynamodb(), table, segments, {}, deadline=deadline, page_limit=page_limit,
             clock=clock).run(page)
        if not changed.count:
            return None
        echo(f"{migration_id}: pass {attempt + 2} changed {changed.count} item(s) written in the old shape meanwhile")
        last = changed
    return last


def run_data_migration(environment: Environment, ledger, migration: DataMigration, dry_run: bool = False,
                       allow_deletes: bool = False, deadline: Optional[Deadline] = None,
                       segments: int = 4, echo: Callable[[str], None] = lambda line: None,
                       page_limit: int = 500, clock: Clock = REAL) -> MigrationResult:
    from .copy import Counts, Progress, Scan
    from .ledger import APPLIED, FAILED, RUNNING, checkpoints_of, resumed_segments
    entry = ledger.get(migration.id) if ledger.exists() else None
    if entry and entry.status is APPLIED and entry.sha256 != migration.sha256:
        raise changed_file(migration, entry)
    if entry and entry.status is APPLIED:
        return MigrationResult(migration.id, "data", MigrationStatus.ALREADY_APPLIED,
                               f"applied {entry.finished_at}; nothing to do", entry.items_read, 0)
    table = next(t for t in environment.tables if t.spec_name == migration.table)
    run = DataRun(environment.dynamodb(), migration, table.name, key_names_of(table), allow_deletes, dry_run)
    counts = Counts()
    scan = Scan(environment.dynamodb(), table.name, segments, {} if dry_run else checkpoints_of(entry),
                deadline=deadline, page_limit=page_limit, clock=clock)
    progress = Progress(f"{migration.id} on {table.name}", None, counts, echo, clock)
    if dry_run:
        def counted(segment: int, items: list) -> int:
            counts.add(len(items), 0)
            return run.page(segment, items)
        scan.run(counted, tick=progress)
        return MigrationResult(migration.id, "data", MigrationStatus.DRY_RUN,
                               f"{run.would_change} of {counts.read} item(s) in {table.name} would change; nothing written",
                               counts.read, 0, run.samples)
    if entry is None:
        ledger.put(migration.id, kind="data", status=RUNNING, table=table.name, file=str(migration.path.name),
                   sha256=migration.sha256, startedAt=now_iso(), caller=caller_arn(environment), itemsRead=0,
                   itemsWritten=0, checkpoints={})
    elif entry.sha256 != migration.sha256:
        # a run that failed (or was killed), then the file fixed: it goes on from its checkpoints with
        # the fixed file, and the final pass below runs the fixed transform over every item
        ran_with = [*str(entry.fields.get("sha256s") or entry.sha256).split(","), migration.sha256]
        echo(f"{migration.id}: the file changed since the run that stopped (sha256 {entry.sha256[:12]}... then, "
             f"{migration.sha256[:12]}... now): going on with it")
        ledger.update(migration.id, status=RUNNING, sha256=migration.sha256, sha256s=",".join(ran_with))
    else:
        ledger.update(migration.id, status=RUNNING)
    scan.segments = resumed_segments(ledger, migration.id, ledger.get(migration.id), segments, echo)

    def checkpoint(segment, key, read, written):
        counts.add(read, written)
        ledger.checkpoint(migration.id, segment, key, read, written)
    try:
        scan.run(run.page, checkpoint, tick=progress)
        left = final_passes(environment, run, table.name, segments, deadline, page_limit, clock, echo, migration.id)
    except CheckerError as exc:
        ledger.update(migration.id, status=FAILED, error=clip(str(exc), 500))
        raise
    if left:
        shown = "; ".join(json.dumps(key) for key in left.samples_keys)
        message = (f"{migration.id}: {left.count} item(s) of {table.name} still have the old shape after "
                   f"{FINAL_PASSES} passes (the app keeps writing it: {clip(shown, 400)}); not applied: deploy the "
                   "code that writes the new shape first (expand), then run checker migrate again (migrate), "
                   "then remove the old shape's readers (contract)")
        ledger.update(migration.id, status=FAILED, error=clip(message, 500))
        raise CheckerError(message)
    ledger.update(migration.id, status=APPLIED, finishedAt=now_iso())
    done = ledger.get(migration.id)
    read, written = (done.items_read, done.items_written) if done else (0, 0)
    return MigrationResult(migration.id, "data", APPLIED, f"{written} of {read} item(s) in {table.name} changed",
                           read, written)
