"""The shared model: what the specs expect, what DynamoDB has, the changes between them and a
table's readiness. The ground floor: no I/O, and nothing of checker imported, so every floor
above (diff, live, wait, apply, checks, migrate) speaks of the same things.

Enums are `str` enums so a value serialises to the same words the JSON and text outputs have
always used (`"create-table"`), while code compares members, not spelled-out strings.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional


class Words(str, Enum):
    """An enum whose members are their words wherever they are printed or serialised."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

class Action(Words):
    """What a change of a plan is about; its word is what plan prints and JSON carries."""

    CREATE_TABLE = "create-table"
    CREATE_INDEX = "create-index"
    REPLACE_TABLE = "replace-table"
    REPLACE_INDEX = "replace-index"
    RETIRING_INDEX = "retiring-index"   # live, not in the spec (renamed there): dropped by a person, never by checker
    UPDATE_BILLING = "update-billing"
    UPDATE_THROUGHPUT = "update-throughput"
    UPDATE_INDEX_THROUGHPUT = "update-index-throughput"
    UPDATE_ON_DEMAND_LIMITS = "update-on-demand-limits"
    UPDATE_INDEX_ON_DEMAND_LIMITS = "update-index-on-demand-limits"
    UPDATE_STREAM = "update-stream"
    UPDATE_SSE = "update-sse"
    UPDATE_TABLE_CLASS = "update-table-class"
    ENABLE_DELETION_PROTECTION = "enable-deletion-protection"
    DISABLE_DELETION_PROTECTION = "disable-deletion-protection"
    TAG_TABLE = "tag-table"
    UPDATE_TTL = "update-ttl"
    ENABLE_TTL = "enable-ttl"
    ENABLE_PITR = "enable-pitr"
    MIGRATE_TABLE = "migrate-table"  # a new table filled from an old one: `checker migrate`, never apply
    MIGRATE_DATA = "migrate-data"    # a data migration not yet applied: `checker migrate`
    NOT_COMPARED = "not-compared"   # a stated field the diff cannot compare: named, never a change
    NOT_READY = "not-ready"         # a table or index still building: in sync, not usable yet


MIGRATIONS = (Action.MIGRATE_TABLE, Action.MIGRATE_DATA)


class Gate(Words):
    """What must be said before apply makes an automatic change."""

    NONE = ""
    CAPACITY = "capacity"           # billing switches and capacity decreases: --allow-capacity-changes


@dataclass(frozen=True)
class TableSpec:
    """A validated CreateTable request and the file it came from."""

    file: str
    request: dict
    logical_id: str = ""           # a template's resource (checker/iac): the name the checklist uses, in every
                                   # environment; the request's TableName is then its live name, used as is
    generated_name: bool = False   # the template gives no TableName: CloudFormation names it (the stack's)
    wishes: dict = field(default_factory=dict, compare=False)   # TTL and PITR a template states

    @property
    def name(self) -> str:
        return self.logical_id or self.request["TableName"]

    @property
    def index_names(self) -> frozenset:
        """Its global and local secondary indexes' names."""
        return frozenset(i["IndexName"] for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
                         for i in self.request.get(key, []))

    @property
    def global_index_names(self) -> frozenset:
        """Its GSIs' names: what a table must have, each ACTIVE, to be ready."""
        return frozenset(i["IndexName"] for i in self.request.get("GlobalSecondaryIndexes", []))

    def for_environment(self, prefix: str = "", suffix: str = "") -> TableSpec:
        """The same spec with the environment's table name; index names are never renamed. A
        template's table is named by the template for its environment: no prefix or suffix."""
        request = copy.deepcopy(self.request)
        if not self.logical_id:
            request["TableName"] = f"{prefix}{self.name}{suffix}"
        return TableSpec(self.file, request)


@dataclass(frozen=True)
class ExpectedTable:
    """A spec already named for its environment, plus what the checklist wishes beyond CreateTable."""

    spec: TableSpec
    ttl_attribute: Optional[str] = None
    point_in_time_recovery: bool = False
    spec_name: str = ""   # the TableName in the spec file, before the environment's prefix/suffix
    migrate_from: Optional[str] = None   # the live table `checker migrate` copies into this one (environment's name)
    transform: Optional[str] = None      # module:function for that copy
    reverse: Optional[str] = None        # module:function mapping its items back (rollback)
    catch_up: Optional[str] = None       # "stream": online, the app writing throughout
    owner: str = ""                      # the template that declares it ("template.yaml (LikedSongs)"): its deploy
                                         # makes and changes it, never apply unless asked (--create)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class LiveTable:
    """What DynamoDB said. `description` is DescribeTable's `Table`, None when the table is absent;
    `ttl` / `pitr` are read only when the checklist asks for them, `tags` (ListTagsOfResource, as
    {key: value}) only when the spec states Tags."""

    name: str
    description: Optional[dict]
    ttl: Optional[dict] = None
    pitr: Optional[dict] = None
    tags: Optional[dict] = None
    unreadable: dict = field(default_factory=dict)  # "TTL" / "PITR" -> why this endpoint could not say

    @property
    def exists(self) -> bool:
        return self.description is not None


CAPACITY_GATE = Gate.CAPACITY       # billing-mode switches and capacity decreases: opt-in
NOT_COMPARED = Action.NOT_COMPARED  # a stated field the diff cannot compare: named, never a change


@dataclass(frozen=True)
class Change:
    table: str
    action: Action
    detail: str
    automatic: bool
    operation: Optional[str] = None
    params: dict = field(default_factory=dict, compare=False)
    gate: Gate = Gate.NONE  # CAPACITY_GATE: automatic only when capacity changes are allowed
    target: str = ""        # what within the table it is about (an index, a field), for verification
    owner: str = field(default="", compare=False)   # the template owning the table: its deploy makes the change

    @property
    def pending(self) -> bool:
        """A real difference (automatic or manual), as opposed to a note: a field not compared, a
        table still building, an index the spec no longer has (a changed GSI is a new name in the
        spec: the old one retires, dropped by a person when nothing reads it)."""
        return self.action not in (NOT_COMPARED, NOT_READY, Action.RETIRING_INDEX)

    @property
    def key(self) -> tuple:
        """What a re-read after apply matches the change by."""
        return self.table, self.action, self.target

    def to_dict(self) -> dict:
        return {"table": self.table, "action": self.action, "detail": self.detail, "automatic": self.automatic,
                "gate": self.gate or None, "owner": self.owner or None}


NOT_READY = Action.NOT_READY


MISSING = "MISSING"
HOPELESS = {"DELETING", "ARCHIVING", "ARCHIVED", "INACCESSIBLE_ENCRYPTION_CREDENTIALS"}


@dataclass(frozen=True)
class TableState:
    """One table's readiness: its status and those of its indexes that are not yet ACTIVE."""

    name: str
    status: str
    pending_indexes: dict = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.status == "ACTIVE" and not self.pending_indexes

    def summary(self) -> str:
        if self.status != "ACTIVE" or not self.pending_indexes:
            return self.status
        return "ACTIVE, " + ", ".join(f"index {n} {'does not exist' if s == MISSING else s}"
                                      for n, s in sorted(self.pending_indexes.items()))

    @property
    def missing_indexes(self) -> list:
        """Indexes its spec declares that the live table does not have (`checker apply` adds them)."""
        return sorted(n for n, s in self.pending_indexes.items() if s == MISSING)

    def to_dict(self) -> dict:
        return {"table": self.name, "status": self.status, "ready": self.ready,
                "pending_indexes": dict(self.pending_indexes)}


def table_state(name: str, description: Optional[dict], expected_indexes: Iterable[str] = ()) -> TableState:
    """`expected_indexes`: the GSIs its spec declares; one the live table lacks is pending as
    MISSING (a table is not ready for an app that queries an index it does not have)."""
    if description is None:
        return TableState(name, MISSING)
    live = description.get("GlobalSecondaryIndexes", [])
    pending = {i["IndexName"]: index_status(i) for i in live if i.get("IndexStatus") != "ACTIVE"}
    present = {i["IndexName"] for i in live}
    pending |= {index: MISSING for index in expected_indexes if index not in present}
    return TableState(name, description.get("TableStatus", "UNKNOWN"), pending)


def index_status(index: dict) -> str:
    """An index's status, with its backfill's progress where DynamoDB gives it: a Query on a
    backfilling index fails ("Cannot read from backfilling global secondary index")."""
    status = str(index.get("IndexStatus", "UNKNOWN"))
    if not index.get("Backfilling"):
        return status
    progress = [f"{int(index['ItemCount']):,} items" if isinstance(index.get("ItemCount"), int) else "",
                f"{int(index['IndexSizeBytes']):,} bytes" if isinstance(index.get("IndexSizeBytes"), int) else ""]
    shown = ", ".join(p for p in progress if p)
    return f"{status} (backfilling{', ' + shown + ' so far' if shown else ''})"
