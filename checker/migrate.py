"""Migrations: data migrations (scripts that change items in place) and table migrations (a new
table from a new spec, every item copied and verified, then the app's binding switched).

A data migration is `migrations/NNNN_name.py` beside the checklist:

    TABLE = "liked_songs"              # a spec's TableName
    def transform(item):               # plain Python values (TypeDeserializer's)
        if "genre" in item:
            return None                # no change
        return {**item, "genre": "unknown"}

`transform` returns the new item, None for no change, or `checker.migrate.DELETE` (only with
`--allow-deletes`). Each changed item is one UpdateItem that sets or removes only the changed
attributes, conditioned on their old values (a whole-item condition is impossible: expressions
are capped at 4 KB, items reach 400 KB); when the item changed meanwhile, it is read again and
transformed again. A transform must therefore be idempotent: `transform(transform(x))` changes
nothing. Data migrations are forward-only: a file changed after it was applied is refused.

A table migration is declared, not scripted: `tables: {X: {migrate_from: Y}}` in the checklist
(see docs/migrations.md). Everything goes through the ledger (checker/ledger.py).
"""
from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .errors import AwsError, CheckerError, call
from .secrets import clip

if TYPE_CHECKING:
    from .api import Project
    from .diff import ExpectedTable


class _Delete:
    def __repr__(self) -> str:
        return "checker.migrate.DELETE"


DELETE = _Delete()   # what a data migration's transform returns for "delete this item"
MIGRATION_FILE = re.compile(r"(\d{4})_[A-Za-z0-9_]+\.py")
RETRIES = 5          # re-reads of an item that changed under a data migration's update
SAMPLES = 5          # keys a dry run shows


@dataclass(frozen=True)
class DataMigration:
    id: str              # the file's stem: 0001_backfill_genre
    path: Path
    table: str           # a spec's TableName
    transform: Callable
    sha256: str


@dataclass(frozen=True)
class TableMigration:
    target: ExpectedTable  # the new spec, named for the environment
    source: str           # the live table it copies, named for the environment
    transform: Optional[Callable] = None
    transform_name: Optional[str] = None

    @property
    def id(self) -> str:
        return f"table:{self.target.spec_name}"


@dataclass
class MigrationResult:
    id: str
    kind: str             # "data" | "table"
    status: str           # the ledger's status, "pending", "dry-run", "already-applied", ...
    detail: str
    read: int = 0
    written: int = 0
    keys: list = field(default_factory=list)      # keys a dry run would change / that differ
    warnings: list = field(default_factory=list)
    switched: bool = False   # this run pointed the function at another table (the smoke checks follow)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status, "detail": self.detail,
                "read": self.read, "written": self.written, "keys": self.keys, "warnings": self.warnings,
                "switched": self.switched}


# -- loading ----------------------------------------------------------------------------------
def migrations_directory(project: Project) -> Optional[Path]:
    if project.checklist is None:
        return None
    return Path(project.checklist.file).parent / "migrations"


def _import_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"checker_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CheckerError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a user's module: any failure is one line naming it
        raise CheckerError(f"{path}: importing it raised {type(exc).__name__}: {clip(str(exc), 200)}") from None
    return module


def load_data_migrations(project: Project) -> list:
    """Every migrations/NNNN_name.py, in order; any malformed one is an error naming it."""
    directory = migrations_directory(project)
    if directory is None or not directory.is_dir():
        return []
    specs = {t.spec_name: t for t in project.tables}
    found = []
    numbers: dict = {}
    for path in sorted(directory.glob("*.py")):
        if path.name == "__init__.py":
            continue
        match = MIGRATION_FILE.fullmatch(path.name)
        if not match:
            raise CheckerError(f"{path}: a migration file is named NNNN_name.py (four digits, then letters, digits, _)")
        number = match.group(1)
        if number in numbers:
            raise CheckerError(f"{path}: number {number} is taken by {numbers[number]}; numbers are strictly increasing")
        numbers[number] = path.name
        content = path.read_bytes()
        module = _import_file(path)
        table = getattr(module, "TABLE", None)
        transform = getattr(module, "transform", None)
        if not isinstance(table, str) or table not in specs:
            raise CheckerError(f"{path}: TABLE must be a spec's TableName (one of {', '.join(sorted(specs))}); "
                               f"found {clip(repr(table), 80)}")
        if not callable(transform):
            raise CheckerError(f"{path}: needs a function transform(item) returning the new item, None or "
                               "checker.migrate.DELETE")
        found.append(DataMigration(path.stem, path, table, transform, hashlib.sha256(content).hexdigest()))
    return found


def load_callable(reference: str, directories: list) -> Callable:
    """`module:function`, the module's file found in the checklist's folder (or migrations/) and
    loaded from there, never from sys.modules (two projects' `shape.py` are two modules), else an
    installed module."""
    module_name, _, function_name = reference.partition(":")
    relative = Path(*module_name.split("."))
    path = next((p for d in directories for p in (Path(d) / f"{relative}.py", Path(d) / relative / "__init__.py")
                 if p.is_file()), None)
    if path is not None:
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - a user's module
            raise CheckerError(f"transform {reference}: importing {module_name} raised {type(exc).__name__}: "
                               f"{clip(str(exc), 200)} (looked in {', '.join(str(d) for d in directories)} first)") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise CheckerError(f"transform {reference}: {module_name} has no function {function_name}")
    return function


def load_table_migrations(project: Project) -> list:
    migrations = []
    for table in project.tables:
        if not table.migrate_from:
            continue
        transform = None
        if table.transform:
            base = Path(project.checklist.file).parent if project.checklist else Path(".")
            transform = load_callable(table.transform, [base, base / "migrations"])
        migrations.append(TableMigration(table, table.migrate_from, transform, table.transform))
    return migrations


# -- values -----------------------------------------------------------------------------------
def to_dynamo(value):
    """A transform's value as boto3 serialises it: floats become Decimals (TypeSerializer refuses floats)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo(v) for v in value]
    return value


def plain_item(item: dict) -> dict:
    from boto3.dynamodb.types import TypeDeserializer
    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in item.items()}


def wire_item(item: dict) -> dict:
    from boto3.dynamodb.types import TypeSerializer
    serializer = TypeSerializer()
    return {k: serializer.serialize(to_dynamo(v)) for k, v in item.items()}


def same(a, b) -> bool:
    from .checksum import canonical
    return canonical(to_dynamo(a)) == canonical(to_dynamo(b))


def key_names_of(table) -> tuple:
    return tuple(k["AttributeName"] for k in table.spec.request["KeySchema"])


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
    names, values, conditions, clauses = {}, {}, [], []
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


def caller_arn(project: Project) -> str:
    try:
        return str(call(project.aws.client("sts"), "GetCallerIdentity", "sts")["Arn"])
    except CheckerError:
        return "unknown (sts:GetCallerIdentity did not answer)"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- data migrations ----------------------------------------------------------------------------
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
        try:
            return self.migration.transform(copy.deepcopy(item))
        except Exception as exc:  # noqa: BLE001 - the user's transform: named, stopped, resumable
            raise CheckerError(f"{self.migration.path.name}: transform raised {type(exc).__name__}: "
                               f"{clip(str(exc), 200)} on the item with key {shown_key(item, self.key_names)}; "
                               "stopped at the last checkpoint: fix it and run checker migrate again") from None

    def page(self, segment: int, items: list) -> int:
        written = 0
        for wire in items:
            written += self.item(plain_item(wire))
        return written

    def item(self, old: dict) -> int:
        for _ in range(RETRIES):
            new = self.transformed(old)
            if new is None:
                return 0
            if new is DELETE:
                return self.delete(old)
            if not isinstance(new, dict):
                raise CheckerError(f"{self.migration.path.name}: transform returned {type(new).__name__}; expected "
                                   "a dict (the new item), None or checker.migrate.DELETE")
            try:
                request = update_request(self.table_name, self.key_names, old, new)
            except ValueError as exc:
                raise CheckerError(f"{self.migration.path.name}: transform {exc} "
                                   f"(key {shown_key(old, self.key_names)})") from None
            except TypeError as exc:   # a value DynamoDB cannot hold (a datetime, an object)
                raise CheckerError(f"{self.migration.path.name}: transform returned a value DynamoDB cannot store "
                                   f"({clip(str(exc), 160)}) for key {shown_key(old, self.key_names)}") from None
            if request is None:
                return 0
            if self.dry_run:
                return self.sample(old, changed_names(self.key_names, old, new))
            try:
                call(self.client, "UpdateItem", "dynamodb", **request)
                return 1
            except AwsError as exc:
                if exc.code != "ConditionalCheckFailedException":
                    raise
            fresh = call(self.client, "GetItem", "dynamodb", TableName=self.table_name, ConsistentRead=True,
                         Key=wire_item({k: old[k] for k in self.key_names})).get("Item")
            if fresh is None:
                return 0    # deleted meanwhile: nothing to migrate
            old = plain_item(fresh)
        raise CheckerError(f"{self.migration.path.name}: the item with key {shown_key(old, self.key_names)} kept "
                           f"changing under the migration ({RETRIES} tries); run checker migrate again")

    def delete(self, old: dict) -> int:
        if not self.allow_deletes:
            raise CheckerError(f"{self.migration.path.name}: transform returned DELETE for the item with key "
                               f"{shown_key(old, self.key_names)}; deleting needs --allow-deletes")
        if self.dry_run:
            return self.sample(old, ["(the whole item: DELETE)"])
        call(self.client, "DeleteItem", "dynamodb", TableName=self.table_name,
             Key=wire_item({k: old[k] for k in self.key_names}))
        return 1

    def sample(self, old: dict, names: list) -> int:
        self.would_change += 1
        if len(self.samples) < SAMPLES:
            self.samples.append({"key": shown_key(old, self.key_names), "attributes": names})
        return 0


def run_data_migration(project: Project, ledger, migration: DataMigration, dry_run: bool = False,
                       allow_deletes: bool = False, deadline: Optional[float] = None,
                       segments: int = 4, echo: Callable[[str], None] = lambda line: None,
                       page_limit: int = 500) -> MigrationResult:
    from .copy import Counts, Progress, Scan
    from .ledger import APPLIED, FAILED, RUNNING, checkpoints_of
    entry = ledger.get(migration.id) if ledger.exists() else None
    if entry and entry.get("sha256") != migration.sha256:
        raise changed_file(migration, entry)
    if entry and entry.get("status") == APPLIED:
        return MigrationResult(migration.id, "data", "already-applied", f"applied {entry.get('finishedAt')}; nothing to do",
                               int(entry.get("itemsRead") or 0), 0)
    table = next(t for t in project.tables if t.spec_name == migration.table)
    run = DataRun(project.dynamodb(), migration, table.name, key_names_of(table), allow_deletes, dry_run)
    counts = Counts()
    scan = Scan(project.dynamodb(), table.name, segments, {} if dry_run else checkpoints_of(entry),
                deadline=deadline, page_limit=page_limit)
    progress = Progress(f"{migration.id} on {table.name}", None, counts, echo)
    if dry_run:
        def counted(segment: int, items: list) -> int:
            counts.add(len(items), 0)
            return run.page(segment, items)
        scan.run(counted, tick=progress)
        return MigrationResult(migration.id, "data", "dry-run",
                               f"{run.would_change} of {counts.read} item(s) in {table.name} would change; nothing written",
                               counts.read, 0, run.samples)
    if entry is None:
        ledger.put(migration.id, kind="data", status=RUNNING, table=table.name, file=str(migration.path.name),
                   sha256=migration.sha256, startedAt=now_iso(), caller=caller_arn(project), itemsRead=0,
                   itemsWritten=0, checkpoints={})
    else:
        ledger.update(migration.id, status=RUNNING)

    def checkpoint(segment, key, read, written):
        counts.add(read, written)
        ledger.checkpoint(migration.id, segment, key, read, written)
    try:
        scan.run(run.page, checkpoint, tick=progress)
    except CheckerError as exc:
        ledger.update(migration.id, status=FAILED, error=clip(str(exc), 500))
        raise
    ledger.update(migration.id, status=APPLIED, finishedAt=now_iso())
    done = ledger.get(migration.id) or {}
    return MigrationResult(migration.id, "data", APPLIED,
                           f"{int(done.get('itemsWritten') or 0)} of {int(done.get('itemsRead') or 0)} item(s) in "
                           f"{table.name} changed", int(done.get("itemsRead") or 0), int(done.get("itemsWritten") or 0))


# -- what is pending --------------------------------------------------------------------------
def pending(project: Project, live: Optional[dict] = None) -> list:
    """[(migration, ledger entry or None)] of every migration not finished in this environment:
    table migrations whose source exists and that are not switched, data migrations not applied."""
    from .ledger import APPLIED, SWITCHED
    from .live import describe_tables
    entries = project.ledger().entries()
    found = []
    table_migrations = load_table_migrations(project)
    if live is None:
        described = describe_tables(project.dynamodb(), [m.source for m in table_migrations])
    else:
        described = {m.source: (live[m.source].description if m.source in live else None) for m in table_migrations}
    for migration in table_migrations:
        entry = entries.get(migration.id)
        if described.get(migration.source) is not None and (entry or {}).get("status") != SWITCHED:
            found.append((migration, entry))
    for data in load_data_migrations(project):
        entry = entries.get(data.id)
        if entry and entry.get("sha256") != data.sha256:
            raise changed_file(data, entry)
        if (entry or {}).get("status") != APPLIED:
            found.append((data, entry))
    return found


def changed_file(migration: DataMigration, entry: dict) -> CheckerError:
    from .ledger import APPLIED
    return CheckerError(f"{migration.path}: changed since it was {'applied' if entry.get('status') == APPLIED else 'started'} "
                        f"(sha256 {str(entry.get('sha256'))[:12]}... then, {migration.sha256[:12]}... now); data "
                        "migrations are forward-only: restore the file and write a new migration")


def pending_changes(project: Project, live: dict) -> list:
    """plan's entries for pending migrations (a missing target's is the diff's already)."""
    from .diff import Change, migrate_table_change
    from .results import Action
    changes = []
    for migration, entry in pending(project, live):
        state = f"ledger: {entry['status']}" if entry else "not started"
        if isinstance(migration, TableMigration):
            target = live.get(migration.target.name)
            if target is not None and target.exists:
                changes.append(migrate_table_change(migration.target, state))
        else:
            table = next(t.name for t in project.tables if t.spec_name == migration.table)
            changes.append(Change(table, Action.MIGRATE_DATA, f"data migration {migration.id} ({state}): "
                                  "`checker migrate` applies it", False))
    return changes


# -- running them ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MigrateOptions:
    """What `checker migrate` was told (see its --help)."""

    offline: bool = False
    switch: bool = True
    dry_run: bool = False
    allow_deletes: bool = False
    allow_weaker_target: bool = False
    segments: int = 4
    capacity_share: float = 0.5
    timeout: Optional[float] = None
    page_items: int = 500
    via: str = "scan"                 # "s3": DynamoDB's export to S3 and import from it
    bucket: Optional[str] = None
    prefix: str = "checker-migrations"


def describe_pending(todo: list) -> list:
    """One phrase per pending migration, for a prompt."""
    return [m.id if isinstance(m, DataMigration) else f"{m.source} -> {m.target.name}" for m, _ in todo]


def run_pending(project: Project, todo: list, options: MigrateOptions,
                echo: Callable[[str], None] = lambda line: None) -> list:
    """Every migration of `todo` (from pending()): table migrations first, then data migrations
    in order, under the ledger's lease; a dry run writes nothing, the ledger included."""
    from .table_migration import Options, TableMigrationRun
    tables = [m for m, _ in todo if isinstance(m, TableMigration)]
    datas = [m for m, _ in todo if isinstance(m, DataMigration)]
    offline_only = [m for m in tables if m.target.catch_up != "stream"]
    if offline_only and not options.offline and not options.dry_run:
        raise CheckerError(f"table migration(s) pending: {', '.join(f'{m.source} -> {m.target.name}' for m in offline_only)}; "
                           "without `catch_up: stream` a copy is offline: stop the app's writes to the source, then "
                           "pass --offline")
    deadline = time.monotonic() + options.timeout if options.timeout else None
    ledger = project.ledger()
    if options.dry_run:
        return [MigrationResult(m.id, "table", "dry-run", f"would create {m.target.name} if missing, copy {m.source} "
                                "into it, verify every item, then switch") for m in tables] + [
            run_data_migration(project, ledger, m, dry_run=True, allow_deletes=options.allow_deletes,
                               segments=options.segments, echo=echo) for m in datas]
    ledger.ensure()
    table_options = Options(switch=options.switch, allow_weaker=options.allow_weaker_target, segments=options.segments,
                            share=options.capacity_share, deadline=deadline, page_limit=options.page_items,
                            via=options.via, bucket=options.bucket, prefix=options.prefix)
    results = []
    with ledger.lease(caller_arn(project)):
        for migration in tables:
            results.append(TableMigrationRun(project, ledger, migration, table_options, echo=echo).run())
        for data in datas:
            results.append(run_data_migration(project, ledger, data, allow_deletes=options.allow_deletes,
                                              deadline=deadline, segments=options.segments, echo=echo,
                                              page_limit=options.page_items))
    return results


def status(project: Project) -> list:
    """Every declared migration and its ledger status (read-only; no ledger: all pending)."""
    entries = project.ledger().entries()
    results = []
    for migration in [*load_table_migrations(project), *load_data_migrations(project)]:
        entry = entries.get(migration.id) or {}
        if isinstance(migration, DataMigration):
            kind, where = "data", migration.table
        else:
            kind, where = "table", f"{migration.source} -> {migration.target.name}"
        counted = f", {int(entry.get('itemsRead') or 0):,} read, {int(entry.get('itemsWritten') or 0):,} written" if entry else ""
        results.append(MigrationResult(migration.id, kind, str(entry.get("status") or "pending"), f"{where}{counted}"))
    return results


def rollback_table(project: Project, migration_id: str, echo: Callable[[str], None] = lambda line: None
                   ) -> MigrationResult:
    from .table_migration import rollback
    migration = find_table_migration(project, migration_id)
    ledger = project.ledger()
    with ledger.lease(caller_arn(project)):
        return rollback(project, ledger, migration, echo=echo)


def find_table_migration(project: Project, migration_id: str) -> TableMigration:
    migrations = load_table_migrations(project)
    found = next((m for m in migrations if m.id == migration_id), None)
    if found is None:
        known = ", ".join(m.id for m in migrations) or "none"
        raise CheckerError(f"{migration_id}: no table migration of that id in the checklist (known: {known})")
    return found
