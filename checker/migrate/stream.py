"""Online catch-up of a table migration from the source's DynamoDB Stream (`catch_up: stream`).

The reader starts before the copy and runs beside it, so every write the app makes while the copy
runs is seen. Each changed key is *replayed*, not applied from the record: a consistent GetItem
on the source, then a put (or a delete) on the target. Replaying makes the order of records and
of the copy's own writes irrelevant but for one case: a copy that read an item before a change and
writes it after the change's replay. So every key changed during the copy is replayed once more
after the copy has finished: from then on the target only moves forward.

After the switch, invocations already running keep the old variables for up to the function's
Timeout: the reader goes on for that long, and writes a key only where the target still holds
what the source held before the change (the record's old image, transformed): a key the switched
app has written since is a conflict, listed, never overwritten.

The stream must carry old images (OLD_IMAGE or NEW_AND_OLD_IMAGES): a REMOVE, or a change of an
attribute a transform makes into the new key, must delete the target item the old image maps to.
Positions (a sequence number per shard) are checkpointed in the ledger; a resumed reader starts
AFTER_SEQUENCE_NUMBER (TRIM_HORIZON for a shard it never read: replays are idempotent). Records
trimmed before they were read (`TrimmedDataAccessException`: older than 24 hours) are writes lost
to the migration: it fails, and only a fresh copy can start it again.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from ..errors import AwsError, CheckerError, call
from ..items import to_json
from ..poll import REAL, Backoff, Clock, Deadline, poll

VIEWS_WITH_OLD = ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")
SMALL_LAG_SECONDS = 5.0
REPLAY_WORKERS = 8
CATCH_UP_SECONDS = 600.0  # a catch-up that never reaches the tip (the app outpaces it) stops, said so
RECORDS_A_CALL = 1000    # GetRecords' Limit: a poll that returns fewer has reached the shard's tip
PAGES_A_POLL = 20        # a poll reads a shard to its tip, at most this many pages (memory: 20,000 records)
STREAM_POLLS = Backoff(0.2, 0.2)   # while catching up: a poll every 0.2 s
DRAIN_POLLS = Backoff(0.5, 0.5)    # after the switch


class StreamLost(CheckerError):
    """Records were trimmed before they were read: writes the target may lack."""


def stream_problem(description: dict) -> Optional[str]:
    """Why the source's stream cannot carry a catch-up, or None ("" when there is none yet)."""
    spec = description.get("StreamSpecification") or {}
    if not spec.get("StreamEnabled"):
        return ""
    view = spec.get("StreamViewType")
    if view not in VIEWS_WITH_OLD:
        return (f"its stream is {view}: a catch-up needs old images (OLD_IMAGE or NEW_AND_OLD_IMAGES) to delete what "
                "a REMOVE or a key change leaves behind, and a stream's view type cannot change without turning the "
                "stream off, which checker never does")
    return None


def enable_stream(client, table: str) -> None:
    """Turn on a NEW_AND_OLD_IMAGES stream (the checklist's `catch_up: stream` asks for it)."""
    call(client, "UpdateTable", "dynamodb", TableName=table,
         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})


def key_json(key: dict) -> str:
    return to_json(key, sort_keys=True)


@dataclass
class StreamReader:
    """Every shard of one stream, read in order; positions {shard: sequence number or "closed"}."""

    streams: object                 # a dynamodbstreams client
    stream_arn: str
    positions: dict = field(default_factory=dict)
    iterators: dict = field(default_factory=dict)
    polls: int = 0
    at_tip: bool = True             # the last poll read every shard to its tip

    def start(self, at_latest: bool) -> None:
        """Iterators for every shard not closed: LATEST when starting before a copy, else from the
        positions (TRIM_HORIZON where a shard has none)."""
        for shard in self.shards():
            self._open(shard, at_latest)

    def shards(self) -> list:
        found: list = []
        start: Optional[str] = None
        while True:
            params: dict = {"StreamArn": self.stream_arn, **({"ExclusiveStartShardId": start} if start else {})}
            description = call(self.streams, "DescribeStream", "dynamodbstreams", **params)["StreamDescription"]
            found += description.get("Shards", [])
            start = description.get("LastEvaluatedShardId")
            if not start:
                return found

    def _open(self, shard: dict, at_latest: bool) -> None:
        shard_id = shard["ShardId"]
        position = self.positions.get(shard_id)
        if position == "closed" or shard_id in self.iterators:
            return
        if position:
            params = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": position}
        elif at_latest and not (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber"):
            params = {"ShardIteratorType": "LATEST"}
        elif at_latest:
            self.positions[shard_id] = "closed"    # closed before we started: its records predate the copy
            return
        else:
            params = {"ShardIteratorType": "TRIM_HORIZON"}
        try:
            iterator = call(self.streams, "GetShardIterator", "dynamodbstreams", StreamArn=self.stream_arn,
                            ShardId=shard_id, **params)["ShardIterator"]
        except AwsError as exc:
            if exc.code == "TrimmedDataAccessException":
                raise StreamLost(f"stream records of shard {shard_id} were trimmed before they were read (older "
                                 "than 24 hours): writes made meanwhile may be missing; the migration must copy "
                                 "afresh") from None
            raise
        self.iterators[shard_id] = iterator

    def poll(self) -> list:
        """The records every open shard has now, oldest first per shard; new shards (splits)
        joined. Each shard is read to its tip (up to PAGES_A_POLL full pages): the replay that
        follows reads each changed key once however many records name it, so a bigger batch is
        what lets the catch-up outrun an app that writes the same keys again and again."""
        self.polls += 1
        if self.polls % 10 == 1:
            for shard in self.shards():
                self._open(shard, at_latest=False)
        records: list = []
        self.at_tip = True
        for shard_id in list(self.iterators):
            for _ in range(PAGES_A_POLL):
                page = self._page(shard_id)
                records += page
                if len(page) < RECORDS_A_CALL or shard_id not in self.iterators:
                    break
            else:
                self.at_tip = False
        return records

    def _page(self, shard_id: str) -> list:
        """One GetRecords of a shard, its position and iterator moved on."""
        try:
            answer = call(self.streams, "GetRecords", "dynamodbstreams", ShardIterator=self.iterators[shard_id],
                          Limit=RECORDS_A_CALL)
        except AwsError as exc:
            if exc.code == "TrimmedDataAccessException":
                raise StreamLost(f"stream records of shard {shard_id} were trimmed before they were read: "
                                 "writes made meanwhile may be missing; the migration must copy afresh") from None
            if exc.code == "ExpiredIteratorException":   # 15 minutes without a read
                del self.iterators[shard_id]
                self._open({"ShardId": shard_id}, at_latest=False)
                return []
            raise
        records = answer.get("Records", [])
        for record in records:
            self.positions[shard_id] = record["dynamodb"]["SequenceNumber"]
        following = answer.get("NextShardIterator")
        if following:
            self.iterators[shard_id] = following
        else:
            del self.iterators[shard_id]
            self.positions[shard_id] = "closed"
        return records


@dataclass
class CatchUp:
    """Replays changed keys of the source onto the target."""

    client: object
    source: str
    target: str
    target_keys: tuple
    transform: Optional[Callable[[dict], Optional[dict]]] = None   # wire item -> wire item or None
    during_copy: dict = field(default_factory=dict)                # changed while copying: replayed again after
    conflicts: list = field(default_factory=list)   # after the switch: the app's version kept
    uncertain: list = field(default_factory=list)   # after the switch: written, but the app may have deleted it
    touched: dict = field(default_factory=dict)     # every key a record named since the last clear: re-checked at the cut-over
    replayed: int = 0
    copying: bool = True
    switched: bool = False
    switched_at: float = 0.0                         # epoch seconds the switch took effect
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def mapped(self, item: Optional[dict]) -> Optional[dict]:
        if item is None:
            return None
        return self.transform(item) if self.transform is not None else item

    def target_key(self, item: Optional[dict]) -> Optional[dict]:
        return {k: item[k] for k in self.target_keys} if item is not None and all(k in item for k in self.target_keys) else None

    def apply(self, records: list) -> None:
        """Each key a batch changed, replayed once (a replay reads the key's state now: several
        records of one key need one replay), REPLAY_WORKERS keys at a time: the catch-up has to
        outrun the app's writes."""
        changed: dict = {}
        for record in records:
            change = record["dynamodb"]
            name = key_json(change["Keys"])
            first = changed.setdefault(name, (change["Keys"], [], created_at(record)))
            self.touched[name] = change["Keys"]
            first[1].append(change.get("OldImage"))
            if self.copying:
                _, stale = self.during_copy.setdefault(name, (change["Keys"], {}))
                if set(change["Keys"]) != set(self.target_keys):
                    # a new key schema: where the copy may have written an old version of this item
                    old = self.target_key(self.mapped(change.get("OldImage")))
                    if old is not None:
                        stale[key_json(old)] = old
        self.replay_all([(key, old_images, created) for key, old_images, created in changed.values()])

    def replay_all(self, work: list) -> None:
        """Jobs (source key, old images, created[, stale target keys]) replayed. Before the switch,
        in batches: the keys' states read 100 at a time (BatchGetItem, consistent), the writes
        sent 25 at a time, REPLAY_WORKERS batches at once: a replay costs a few round trips per
        hundred keys, not two per key, so the catch-up outruns the app. After the switch (each
        write guarded by what the target held) or when two jobs would write one target key (a
        transform that maps two items to one key: their order matters), one key at a time."""
        if not self.switched and len(work) > 1 and self.replay_batched(work):
            return
        if len(work) <= 1:
            for job in work:
                self.replay(*job)
            return
        with ThreadPoolExecutor(max_workers=min(REPLAY_WORKERS, len(work)), thread_name_prefix="replay") as pool:
            list(pool.map(lambda job: self.replay(*job), work))

    def replay_batched(self, work: list) -> bool:
        """False (nothing written) when two of the jobs write one target key."""
        from .copy import read_batches, write_batches
        never = threading.Event()
        chunks = [[job[0] for job in work[start:start + 100]] for start in range(0, len(work), 100)]
        source_key_names = tuple(work[0][0])
        with ThreadPoolExecutor(max_workers=min(REPLAY_WORKERS, len(chunks)), thread_name_prefix="replay") as pool:
            found = [item for items in pool.map(lambda keys: read_batches(self.client, self.source, keys, never, None),
                                                chunks) for item in items]
        current = {key_json({k: item[k] for k in source_key_names}): item for item in found}
        requests, names = [], set()
        for job in work:
            source_key, old_images, stale = job[0], job[1], (job[3] if len(job) > 3 else None)
            deletes, put = self.writes_for(source_key, current.get(key_json(source_key)), old_images, stale)
            for key in [*deletes, *([self.target_key(put)] if put is not None else [])]:
                if key_json(key) in names:
                    return False
                names.add(key_json(key))
            requests += [{"DeleteRequest": {"Key": key}} for key in deletes]
            if put is not None:
                requests.append({"PutRequest": {"Item": put}})
        batches = [requests[start:start + 25] for start in range(0, len(requests), 25)]
        if batches:
            with ThreadPoolExecutor(max_workers=min(REPLAY_WORKERS, len(batches)), thread_name_prefix="replay") as pool:
                list(pool.map(lambda batch: write_batches(self.client, self.target, batch, never, None), batches))
        with self.lock:
            self.replayed += len(work)
        return True

    def writes_for(self, source_key: dict, current: Optional[dict], old_images: Optional[list],
                   stale: Optional[list]) -> tuple:
        """(target keys to delete, the target item to put or None) that make the target hold
        what the source holds now at `source_key` (`current`, a wire item or None): the new
        state at its key; nothing at the keys its old images (and `stale`) mapped to."""
        new = self.mapped(current)
        befores = [self.mapped(image) for image in old_images or []]
        new_key = self.target_key(new)
        deletes = {key_json(k): k for k in [*(self.target_key(b) for b in befores), *(stale or [])]
                   if k is not None and k != new_key}
        if new is None and not deletes and new_key is None and not any(befores):
            # no old image (a record of a resumed run, a replay after the copy): the key maps to itself
            key = {k: source_key[k] for k in self.target_keys if k in source_key}
            if len(key) == len(self.target_keys):   # a new key schema: the source's key names no target item
                deletes[key_json(key)] = key
        return list(deletes.values()), new

    def replay(self, source_key: dict, old_images: Optional[list] = None, created: float = 0.0,
               stale: Optional[list] = None) -> None:
        """The key's state now onto the target, one key; `stale`: target keys an older version
        of the item may have been written at (a transform that makes a changed attribute into
        the key). After the switch each write is guarded (still_ours)."""
        current = call(self.client, "GetItem", "dynamodb", TableName=self.source, Key=source_key,
                       ConsistentRead=True).get("Item")
        deletes, new = self.writes_for(source_key, current, old_images, stale)
        guards: dict = {}       # after the switch: {target key: the condition that it is as we read it}
        if self.switched:
            looked = self.still_ours([self.mapped(image) for image in old_images or []], self.mapped(current),
                                     created, source_key)
            if looked is None:
                return
            guards = looked

        def guard(key: Optional[dict]) -> dict:
            return guards.get(key_json(key), {}) if key is not None else {}
        new_key = self.target_key(new)
        try:
            for old_key in deletes:   # a REMOVE, or a change of what the transform makes into the key
                call(self.client, "DeleteItem", "dynamodb", TableName=self.target, Key=old_key, **guard(old_key))
            if new is not None:
                call(self.client, "PutItem", "dynamodb", TableName=self.target, Item=new, **guard(new_key))
        except AwsError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise
            # the switched app wrote the key between our read of the target and this write: its version stays
            with self.lock:
                self.conflicts.append(shown_key(new_key or next(iter(deletes), source_key), source_key))
            return
        with self.lock:
            self.replayed += 1

    def still_ours(self, befores: list, new: Optional[dict], created: float = 0.0,
                   source_key: Optional[dict] = None) -> Optional[dict]:
        """After the switch: does the target, at every key this replay writes, still hold a state
        the source held since the last replay (an old image of this batch, or the source's item
        now), or nothing (a key the item moves to)? Then the switched app has not written there,
        and each write is guarded by what was read ({target key: condition}): the app may write
        between this read and ours. None: the app's version, a conflict.

        One case no state can tell: a key created on the source before the switch (or, under a new
        key schema, an item moved to a new key), replayed after it, and absent from the target:
        never copied, or deleted (moved) since by the switched app. It is written (nothing lost)
        and listed as uncertain."""
        from ..items import canonical, plain_item
        states = [*befores, new]      # the first: the state before the batch's first change

        def same(a: Optional[dict], b: Optional[dict]) -> bool:
            return (a is None and b is None) or (a is not None and b is not None
                                                and canonical(plain_item(a)) == canonical(plain_item(b)))
        written = {key_json(k): k for k in (self.target_key(state) for state in states) if k is not None}
        guards: dict = {}
        for name, key in written.items():
            found = call(self.client, "GetItem", "dynamodb", TableName=self.target, Key=key,
                         ConsistentRead=True).get("Item")
            # what the target holds at this key while the source is in each state: ours, if one of them
            ours = [state if self.target_key(state) == key else None for state in states]
            if not any(same(found, state) for state in ours):
                with self.lock:
                    self.conflicts.append(shown_key(key, source_key))
                return None
            # nothing where the item lands, and nothing there before this batch (a key created, or an
            # item moved to a new key, before the switch): the switched app may have deleted or moved it
            if found is None and ours[0] is None and new is not None and self.target_key(new) == key \
                    and created < self.switched_at:
                with self.lock:
                    self.uncertain.append(shown_key(key, source_key))
            guards[name] = unchanged_condition(key, found)
        return guards

    def after_copy(self) -> None:
        """The copy's last writes may be older than a replay made during it: replay those keys
        again (deleting where an older version of a moved item may have been written)."""
        self.copying = False
        self.replay_all([(key, [], 0.0, list(stale.values())) for key, stale in self.during_copy.values()])
        self.during_copy.clear()


def shown_key(key: dict, source_key: Optional[dict] = None) -> dict:
    """A wire key as the user reads it: {"userId": "u1", "trackId": "t1"}; under a new key
    schema, with the source item's key beside it (which item it came from)."""
    return {k: next(iter(v.values())) for k, v in {**(source_key or {}), **key}.items()}


EXPRESSION_LIMIT = 4000    # DynamoDB's limit on an expression string is 4 KB
VALUES_BUDGET = 64 * 1024  # the compared values, beside an item of up to 400 KB in the same request


def unchanged_condition(key: dict, found: Optional[dict]) -> dict:
    """A ConditionExpression that holds only while the target item is still `found` (absent:
    None): every attribute equal, as many as fit in an expression and in VALUES_BUDGET (the
    key's always, then the small attributes first: an app's write changes a timestamp or a
    version far more often than a blob)."""
    names: dict = {}
    values: dict = {}
    if found is None:
        names["#k0"] = next(iter(key))
        return {"ConditionExpression": "attribute_not_exists(#k0)", "ExpressionAttributeNames": names}
    terms: list = []
    size = {name: len(json.dumps(value, default=str)) for name, value in found.items()}
    ordered = list(key) + sorted((name for name in found if name not in key), key=lambda name: (size[name], name))
    spent = 0
    for n, name in enumerate(ordered):
        term = f"#a{n} = :a{n}"
        spent += size[name]
        if len(" AND ".join(terms + [term])) > EXPRESSION_LIMIT or (terms and spent > VALUES_BUDGET):
            break
        terms.append(term)
        names[f"#a{n}"], values[f":a{n}"] = name, found[name]
    return {"ConditionExpression": " AND ".join(terms), "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values}


def created_at(record: dict) -> float:
    """A record's ApproximateCreationDateTime in epoch seconds (botocore parses it to a datetime)."""
    value = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if value is None:
        return 0.0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def tail_until_small_lag(reader: StreamReader, catch_up: CatchUp, deadline: Optional[Deadline],
                         save: Callable[[], None], small: float = SMALL_LAG_SECONDS, quiet_polls: int = 2,
                         clock: Clock = REAL) -> None:
    """Poll and replay until the stream is nearly drained: `quiet_polls` polls in a row whose
    newest record is under `small` seconds old (or none at all)."""
    quiet = [0]

    def replay() -> int:
        records = reader.poll()
        catch_up.apply(records)
        save()
        # at the shard's tip (not a full page) with records that are fresh, or none: the lag is small
        newest = max((created_at(r) for r in records), default=0.0)
        fresh = newest == 0.0 or clock.wall() - newest < small
        quiet[0] = quiet[0] + 1 if not records or (reader.at_tip and fresh) else 0
        return quiet[0]

    def within_the_run(_quiet: int, _elapsed: float) -> None:
        if deadline is not None and deadline.expired:
            raise CheckerError("the migration's --timeout passed while catching up from the stream; run again to resume")
    caught = poll(replay, lambda polls: polls >= quiet_polls, STREAM_POLLS, Deadline(CATCH_UP_SECONDS, clock=clock),
                  each=within_the_run, clock=clock)
    if not caught.done:
        raise CheckerError(f"the catch-up has not reached the stream's tip in {CATCH_UP_SECONDS / 60:g} minutes: the "
                           "app writes faster than the changes are replayed; nothing was switched; run again when "
                           "it writes less (or migrate --offline)")


def tail_for(reader: StreamReader, catch_up: CatchUp, seconds: float, save: Callable[[], None],
             clock: Clock = REAL) -> None:
    """Poll and replay for `seconds` (after the switch: the function's Timeout)."""
    def replay() -> None:
        catch_up.apply(reader.poll())
        save()
    poll(replay, lambda _: False, DRAIN_POLLS, Deadline(seconds, clock=clock), clock=clock)
