"""DynamoDB operations for the liked-songs cache tables.

Table names come from the environment (LIKED_SONGS_TABLE, LIKED_SONGS_METADATA_TABLE), defaulting
to liked_songs and liked_songs_metadata. A missing table surfaces as CacheTableMissing naming the table, so the
cache can degrade instead of crashing the Lambda (the incident this project exists for).
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

import boto3
import botocore.exceptions
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config

BATCH_SIZE = 25  # BatchWriteItem's limit
ADDED_AT_INDEX = "userId-addedAt-index"


THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


class OutOfTime(Exception):
    """The invocation's time ran out while the table was still refusing writes: not a failure;
    the sync pauses and the next invocation goes on."""


class CacheTableMissing(Exception):
    """A cache table, or an index the cache queries, is not there: the cache is off, not broken."""

    def __init__(self, table: str, index: Optional[str] = None):
        self.table = f"{table} index {index}" if index else table
        what = f"index {index} of DynamoDB table {table}" if index else f"DynamoDB table {table}"
        super().__init__(f"{what} does not exist")


class LeaseLost(Exception):
    """Another sync for the user holds the metadata item's lease."""


class UnprocessedItemsLeft(Exception):
    """BatchWriteItem kept returning UnprocessedItems past our retry budget."""


@dataclass(frozen=True)
class CacheTables:
    songs: str = "liked_songs"
    metadata: str = "liked_songs_metadata"

    @classmethod
    def from_environment(cls, environ=os.environ) -> CacheTables:
        return cls(songs=environ.get("LIKED_SONGS_TABLE", cls.songs),
                   metadata=environ.get("LIKED_SONGS_METADATA_TABLE", cls.metadata))


def plain(value):
    """DynamoDB's Decimals back to int/float, so items serialise to JSON as the API sent them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def plain_client(resource):
    """A low-level client beside `resource` (its region, endpoint and configuration), for the
    song writes. boto3's resource layer converts every attribute through the service model and
    botocore validates every parameter: on a full sync that costs more CPU than DynamoDB's own
    work (bench/bench_sync.py). The songs' items are made by the cache (strings and integers),
    so they are put in wire form once (`typed`) and sent unvalidated. Its credentials come from
    the default chain, as the handler's resource's do; pass `client` to the store for any other."""
    meta = resource.meta.client.meta
    # few botocore retries: write_batch backs off on throttling itself, between calls, where it can
    # see the invocation's remaining time (botocore's own backoff would sleep past it)
    return boto3.client("dynamodb", region_name=meta.region_name, endpoint_url=meta.endpoint_url,
                        config=meta.config.merge(Config(parameter_validation=False,
                                                        retries={"mode": "standard", "total_max_attempts": 3})))


class LikedSongsStore:
    def __init__(self, resource=None, tables: Optional[CacheTables] = None,
                 max_batch_attempts: int = 8, backoff: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep, write_concurrency: int = 4, client=None):
        self.resource = resource or boto3.resource("dynamodb")
        self._client = client
        self._client_lock = threading.Lock()
        self.tables = tables or CacheTables.from_environment()
        self.songs = self.resource.Table(self.tables.songs)
        self.metadata = self.resource.Table(self.tables.metadata)
        self.max_batch_attempts = max_batch_attempts
        self.backoff = backoff
        self.sleep = sleep
        self.write_concurrency = write_concurrency

    def _call(self, table: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code"), error.get("Message", "").lower()
            index = kwargs.get("IndexName")
            # DynamoDB says ValidationException for a missing index; some emulators ResourceNotFound
            if index and code in ("ValidationException", "ResourceNotFoundException") and "index" in message:
                raise CacheTableMissing(table, index) from None
            if code == "ResourceNotFoundException":
                raise CacheTableMissing(table) from None
            if error.get("Code") == "ConditionalCheckFailedException":
                raise LeaseLost(table) from None
            raise

    # -- metadata -------------------------------------------------------------------------
    def get_metadata(self, user_id: str) -> Optional[dict]:
        response = self._call(self.tables.metadata, self.metadata.get_item,
                              Key={"userId": user_id}, ConsistentRead=True)
        item = response.get("Item")
        return plain(item) if item else None

    def set_sync_status(self, user_id: str, status: str, reason: Optional[str] = None) -> None:
        """Change only the status fields, keeping the rest of the metadata as it was."""
        expression = "SET syncStatus = :status, syncError = :reason"
        self._call(self.tables.metadata, self.metadata.update_item, Key={"userId": user_id},
                   UpdateExpression=expression,
                   ExpressionAttributeValues={":status": status, ":reason": reason or ""})

    def delete_metadata(self, user_id: str) -> None:
        self._call(self.tables.metadata, self.metadata.delete_item, Key={"userId": user_id})

    # -- the sync lease -------------------------------------------------------------------
    # One sync a user at a time: a sync holds `syncLease` (its id) on the metadata item until
    # `syncLeaseUntil`. Taking it is one conditional UpdateItem; a sync that crashed frees it by
    # expiry. Without it, two overlapping syncs can delete each other's newest tracks.
    def take_lease(self, user_id: str, lease_id: str, now_ms: int, until_ms: int) -> bool:
        """The user's sync lease: free, expired, ours already, or handed over by a sync that ran
        out of time (`resumeLease`, see hand_over_lease): one caller takes a handed-over lease,
        atomically, and it is then nobody else's."""
        try:
            self._call(self.tables.metadata, self.metadata.update_item, Key={"userId": user_id},
                       UpdateExpression="SET syncLease = :id, syncLeaseUntil = :until REMOVE resumeLease",
                       ConditionExpression="attribute_not_exists(syncLease) OR syncLeaseUntil < :now OR syncLease = :id "
                                           "OR syncLease = resumeLease",
                       ExpressionAttributeValues={":id": lease_id, ":until": until_ms, ":now": now_ms})
        except LeaseLost:
            return False
        return True

    def release_lease(self, user_id: str, lease_id: str) -> None:
        try:
            self._call(self.tables.metadata, self.metadata.update_item, Key={"userId": user_id},
                       UpdateExpression="REMOVE syncLease, syncLeaseUntil", ConditionExpression="syncLease = :id",
                       ExpressionAttributeValues={":id": lease_id})
        except LeaseLost:
            pass  # expired and taken by another sync: nothing of ours to release

    def put_metadata_holding(self, item: dict, lease_id: str) -> None:
        """Write the sync's metadata (which releases the lease) only while still holding it."""
        self._call(self.tables.metadata, self.metadata.put_item, Item=item,
                   ConditionExpression="syncLease = :id", ExpressionAttributeValues={":id": lease_id})

    def hand_over_lease(self, item: dict, lease_id: str, until_ms: int) -> None:
        """Write a paused sync's metadata and keep the lease for its continuation until `until_ms`:
        the next sync call takes it over (take_lease), and a sync nobody resumes frees it then."""
        handed = uuid.uuid4().hex
        self.put_metadata_holding({**item, "syncLease": handed, "syncLeaseUntil": until_ms, "resumeLease": handed},
                                  lease_id)

    # -- songs ----------------------------------------------------------------------------
    def put_songs(self, items: Iterable[dict]) -> int:
        with self.song_writer() as writer:
            writer.put(items)
        return writer.written

    def delete_songs(self, user_id: str, track_ids: Iterable[str]) -> int:
        with self.song_writer() as writer:
            writer.delete(user_id, track_ids)
        return writer.written

    def song_writer(self, out_of_time: Optional[Callable[[], bool]] = None,
                    throttled: Optional[Callable[[], None]] = None) -> SongWriter:
        return SongWriter(self, self.write_concurrency, out_of_time, throttled)

    def cached_index(self, user_id: str) -> dict:
        """{trackId: (contentHash, addedAt)} of the user's cached songs: what a full sync compares
        and where, in Spotify's newest-first order, each cached track would be."""
        kwargs = {"KeyConditionExpression": Key("userId").eq(user_id),
                  "ProjectionExpression": "trackId, contentHash, addedAt"}
        return {item["trackId"]: (item.get("contentHash", ""), int(item.get("addedAt") or 0))
                for item in self._query(kwargs, None, 1000)}

    @property
    def client(self):
        """Made on the first write (a request that writes nothing does not pay for it), once, by
        whichever writer thread comes first."""
        with self._client_lock:
            if self._client is None:
                self._client = plain_client(self.resource)
            return self._client

    def write_batch(self, batch: list, out_of_time: Optional[Callable[[], bool]] = None,
                    throttled: Optional[Callable[[], None]] = None) -> int:
        """One BatchWriteItem of wire-form requests, re-sending UnprocessedItems with backoff until
        none are left. A table over its capacity (UnprocessedItems, or throttling errors after
        botocore's retries) is backed off, never fatal: with `out_of_time`, the writes go on
        until it says the invocation's time is up (then OutOfTime, and the sync pauses); without
        it, a table that takes nothing for `max_batch_attempts` calls fails."""
        pending = {self.tables.songs: batch}
        left = len(batch)
        stalled = 0
        while True:
            try:
                response = self._call(self.tables.songs, self.client.batch_write_item, RequestItems=pending)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in THROTTLED:
                    raise
                response = {"UnprocessedItems": pending}   # nothing taken this time
            pending = response.get("UnprocessedItems") or {}
            now_left = sum(len(v) for v in pending.values())
            if not now_left:
                return len(batch)
            stalled = 0 if now_left < left else stalled + 1
            left = now_left
            if throttled is not None:
                throttled()   # the table pushes back: the reader narrows its window of pages
            if out_of_time is not None and out_of_time():
                raise OutOfTime(f"{left} of {len(batch)} writes still unprocessed when the invocation's time ran out")
            if out_of_time is None and stalled >= self.max_batch_attempts:
                raise UnprocessedItemsLeft(f"{left} of {len(batch)} writes still unprocessed after "
                                           f"{self.max_batch_attempts} calls without progress")
            self.sleep(min(self.backoff * 2 ** min(stalled, 7), 5.0))

    def query_songs(self, user_id: str, newest_first: bool = True, limit: Optional[int] = None,
                    page_size: int = 1000) -> Iterator[dict]:
        """A user's cached songs through the addedAt index, `page_size` items a Query call, so a
        reader that stops early (removal detection) reads only the pages it needs."""
        kwargs = {"IndexName": ADDED_AT_INDEX, "KeyConditionExpression": Key("userId").eq(user_id),
                  "ScanIndexForward": not newest_first}
        yield from self._query(kwargs, limit, page_size)

    def cached_ids_newest_first(self, user_id: str) -> Iterator[str]:
        """The user's cached track ids in the order Spotify lists them (addedAt, newest first)."""
        kwargs = {"IndexName": ADDED_AT_INDEX, "KeyConditionExpression": Key("userId").eq(user_id),
                  "ScanIndexForward": False, "ProjectionExpression": "trackId"}
        for item in self._query(kwargs, None, 1000):
            yield item["trackId"]

    def track_ids(self, user_id: str) -> Iterator[str]:
        kwargs = {"KeyConditionExpression": Key("userId").eq(user_id), "ProjectionExpression": "trackId"}
        for item in self._query(kwargs, None, 1000):
            yield item["trackId"]

    def _pages(self, kwargs: dict) -> Iterator[dict]:
        """Query responses one page at a time, following LastEvaluatedKey (the resource API has
        no paginator that keeps Python types)."""
        while True:
            response = self._call(self.tables.songs, self.songs.query, **kwargs)
            yield response
            if "LastEvaluatedKey" not in response:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": response["LastEvaluatedKey"]}

    def _query(self, kwargs: dict, limit: Optional[int], page_size: int) -> Iterator[dict]:
        wanted = page_size if limit is None else max(1, min(limit, page_size))
        returned = 0
        for response in self._pages({**kwargs, "Limit": wanted}):
            for item in response.get("Items", []):
                yield plain(item)
                returned += 1
                if limit is not None and returned >= limit:
                    return

    def count_songs(self, user_id: str) -> int:
        kwargs = {"KeyConditionExpression": Key("userId").eq(user_id), "Select": "COUNT"}
        return sum(response.get("Count", 0) for response in self._pages(kwargs))

    def clear_user(self, user_id: str) -> int:
        """Delete one user's cached songs and metadata; other users' items are never touched."""
        removed = self.delete_songs(user_id, list(self.track_ids(user_id)))
        self.delete_metadata(user_id)
        return removed


_SERIALIZER = TypeSerializer()


def typed(item: dict) -> dict:
    """An item in DynamoDB's wire form for the low-level client. Songs hold strings and integers
    only, written inline (TypeSerializer alone was a quarter of a full sync's CPU); any other
    value goes through TypeSerializer."""
    return {name: {"S": value} if type(value) is str else {"N": str(value)} if type(value) is int
            else _SERIALIZER.serialize(value) for name, value in item.items()}


class SongWriter:
    """Writes songs while the caller goes on producing them: BatchWriteItem 25 requests a call,
    up to `concurrency` calls at once, at most twice that many batches waiting (memory stays
    bounded however long the library). A full sync reads Spotify's pages and writes the previous
    ones at the same time, so it takes as long as the slower of the two, not their sum.

    How many calls are in flight adapts to the table (`allowed`, between 1 and `concurrency`):
    halved whenever DynamoDB pushes back (UnprocessedItems, throttling), one more after each call
    it took whole. A table at its capacity then gets one writer backing off, not `concurrency` of
    them each burning its retries.

    Leaving the `with` block waits for every batch; the first failure is raised there (or at the
    next put), and batches not yet sent are cancelled."""

    def __init__(self, store: LikedSongsStore, concurrency: int, out_of_time: Optional[Callable[[], bool]] = None,
                 throttled: Optional[Callable[[], None]] = None):
        self.store = store
        self.out_of_time = out_of_time
        self.throttled = throttled
        self.concurrency = max(1, concurrency)
        self.allowed = self.smallest = self.concurrency
        self.written = 0
        self._pending: list = []
        self._in_flight: deque = deque()
        self._pool: Optional[ThreadPoolExecutor] = None
        self._gate = threading.Condition()
        self._running = 0

    def __enter__(self) -> SongWriter:
        if self.concurrency > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="song-writer")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._send(self._pending)
                self._pending = []
                while self._in_flight:
                    self.written += self._in_flight.popleft().result()
        finally:
            if self._pool:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def put(self, items: Iterable[dict]) -> None:
        self._add({"PutRequest": {"Item": typed(item)}} for item in items)

    def delete(self, user_id: str, track_ids: Iterable[str]) -> None:
        self._add({"DeleteRequest": {"Key": typed({"userId": user_id, "trackId": t})}} for t in track_ids)

    def _add(self, requests: Iterable[dict]) -> None:
        for request in requests:
            self._pending.append(request)
            if len(self._pending) == BATCH_SIZE:
                self._send(self._pending)
                self._pending = []

    def _send(self, batch: list) -> None:
        if not batch:
            return
        if self._pool is None:
            self.written += self.store.write_batch(batch, self.out_of_time, self.throttled)
            return
        while self._in_flight and (self._in_flight[0].done() or len(self._in_flight) >= 2 * self.concurrency):
            self.written += self._in_flight.popleft().result()
        self._in_flight.append(self._pool.submit(self._write, batch))

    def _write(self, batch: list) -> int:
        with self._gate:
            self._gate.wait_for(lambda: self._running < self.allowed)
            self._running += 1
        pushed_back = False

        def throttled() -> None:
            nonlocal pushed_back
            pushed_back = True
            with self._gate:
                self.allowed = max(1, self.allowed // 2)
                self.smallest = min(self.smallest, self.allowed)
            if self.throttled is not None:
                self.throttled()
        try:
            return self.store.write_batch(batch, self.out_of_time, throttled)
        finally:
            with self._gate:
                self._running -= 1
                if not pushed_back:
                    self.allowed = min(self.concurrency, self.allowed + 1)
                self._gate.notify_all()
