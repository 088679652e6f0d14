"""DynamoDB operations for the liked-songs cache tables.

Table names come from the environment (LIKED_SONGS_TABLE, LIKED_SONGS_METADATA_TABLE), defaulting
to liked_songs and liked_songs_metadata. A missing table surfaces as CacheTableMissing naming the table, so the
cache can degrade instead of crashing the Lambda (the incident this project exists for).
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

import boto3
import botocore.exceptions
from boto3.dynamodb.conditions import Key

BATCH_SIZE = 25  # BatchWriteItem's limit
ADDED_AT_INDEX = "userId-addedAt-index"


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


def chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def plain(value):
    """DynamoDB's Decimals back to int/float, so items serialise to JSON as the API sent them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class LikedSongsStore:
    def __init__(self, resource=None, tables: Optional[CacheTables] = None,
                 max_batch_attempts: int = 8, backoff: float = 0.05,
                 sleep: Callable[[float], None] = time.sleep, write_concurrency: int = 4):
        self.resource = resource or boto3.resource("dynamodb")
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
        try:
            self._call(self.tables.metadata, self.metadata.update_item, Key={"userId": user_id},
                       UpdateExpression="SET syncLease = :id, syncLeaseUntil = :until",
                       ConditionExpression="attribute_not_exists(syncLease) OR syncLeaseUntil < :now OR syncLease = :id",
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

    # -- songs ----------------------------------------------------------------------------
    def put_songs(self, items: Iterable[dict]) -> int:
        return self._batch_write({"PutRequest": {"Item": item}} for item in items)

    def delete_songs(self, user_id: str, track_ids: Iterable[str]) -> int:
        return self._batch_write({"DeleteRequest": {"Key": {"userId": user_id, "trackId": t}}}
                                  for t in track_ids)

    def _batch_write(self, requests: Iterator[dict]) -> int:
        """BatchWriteItem 25 requests a call, up to `write_concurrency` calls at once (a bounded
        window: at most that many batches are held in memory)."""
        batches = chunks(requests, BATCH_SIZE)
        if self.write_concurrency <= 1:
            return sum(self._write_batch(batch) for batch in batches)
        written = 0
        with ThreadPoolExecutor(max_workers=self.write_concurrency) as pool:
            while True:
                window = list(itertools.islice(batches, self.write_concurrency))
                if not window:
                    return written
                written += sum(pool.map(self._write_batch, window))

    def _write_batch(self, batch: list) -> int:
        """One BatchWriteItem, re-sending UnprocessedItems with backoff until none are left. The
        budget counts calls that made no progress: a table that takes half of each call still
        finishes, one that takes nothing for `max_batch_attempts` calls fails."""
        pending = {self.tables.songs: batch}
        left = len(batch)
        stalled = 0
        while True:
            response = self._call(self.tables.songs, self.resource.batch_write_item, RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            now_left = sum(len(v) for v in pending.values())
            if not now_left:
                return len(batch)
            stalled = 0 if now_left < left else stalled + 1
            left = now_left
            if stalled >= self.max_batch_attempts:
                raise UnprocessedItemsLeft(f"{left} of {len(batch)} writes still unprocessed after "
                                           f"{self.max_batch_attempts} calls without progress")
            self.sleep(min(self.backoff * 2 ** stalled, 5.0))

    def query_songs(self, user_id: str, newest_first: bool = True, limit: Optional[int] = None,
                    page_size: int = 1000) -> Iterator[dict]:
        """A user's cached songs through the addedAt index, `page_size` items a Query call, so a
        reader that stops early (removal detection) reads only the pages it needs."""
        kwargs = {"IndexName": ADDED_AT_INDEX, "KeyConditionExpression": Key("userId").eq(user_id),
                  "ScanIndexForward": not newest_first}
        yield from self._query(kwargs, limit, page_size)

    def content_hashes(self, user_id: str) -> dict:
        """{trackId: contentHash} of the user's cached songs ("" for items written before hashes)."""
        kwargs = {"KeyConditionExpression": Key("userId").eq(user_id), "ProjectionExpression": "trackId, contentHash"}
        return {item["trackId"]: item.get("contentHash", "") for item in self._query(kwargs, None, 1000)}

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
