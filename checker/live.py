"""Read what DynamoDB has, for the tables the specs name, and nothing else.

DescribeTable per table: it needs only dynamodb:DescribeTable on those tables and answers
exactly the question. TTL and PITR are read only when the checklist asks for them, and tags only
when the spec states Tags, so a role without those permissions can still plan the rest.

One exception, for apply of a new environment: when most of a first wave of DescribeTables
find nothing, ListTables (100 names a call) tells which of the rest exist, instead of a
DescribeTable each (200 missing tables: 2 calls, not 200). Only apply reads so: a table
ListTables has not shown yet is then sent a CreateTable, refused with ResourceInUseException,
waited for and re-read, never a silent success; plan and check describe every table.
"""
from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from .errors import UNSUPPORTED, AwsError, call, expect, pages
from .model import ExpectedTable, LiveTable

MAX_PARALLEL = 32


def describe_table(client, name: str) -> Optional[dict]:
    """DescribeTable's `Table`, or None when the table does not exist."""
    response = expect(call(client, "DescribeTable", missing_ok=True, TableName=name),
                      ("Table.TableName", "Table.TableStatus", "Table.KeySchema"), "DescribeTable", "dynamodb")
    return response["Table"] if response else None


def read_tags(client, arn: str) -> dict:
    """{key: value} of every tag on the table (ListTagsOfResource pages by NextToken)."""
    tags: dict = {}
    params: dict = {"ResourceArn": arn}
    while True:
        page = call(client, "ListTagsOfResource", **params)
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        if not page.get("NextToken"):
            return tags
        params["NextToken"] = page["NextToken"]


def read_table(client, table: ExpectedTable, description: Optional[dict] = None) -> LiveTable:
    """What DynamoDB has for `table`; `description`: a DescribeTable already made after the last
    change (apply's last poll), so that only TTL, PITR and tags are read here."""
    description = description if description is not None else describe_table(client, table.name)
    if description is None:
        return LiveTable(table.name, None)
    ttl = pitr = tags = None
    unreadable: dict = {}
    if "Tags" in table.spec.request:
        tags = read_tags(client, description["TableArn"])
    if table.ttl_attribute:
        ttl = read_ttl(client, table.name, unreadable)
    if table.point_in_time_recovery:
        pitr = read_pitr(client, table.name, unreadable)
    return LiveTable(table.name, description, ttl, pitr, tags, unreadable)


def read_ttl(client, name: str, unreadable: dict) -> Optional[dict]:
    """DescribeTimeToLive's TimeToLiveDescription; None (reason in `unreadable`) when not implemented."""
    answer = call_if_implemented(client, "DescribeTimeToLive", "TTL", unreadable, TableName=name)
    return None if answer is None else answer.get("TimeToLiveDescription", {})


def read_pitr(client, name: str, unreadable: dict) -> Optional[dict]:
    """The PointInTimeRecoveryDescription; None (reason in `unreadable`) when not implemented."""
    answer = call_if_implemented(client, "DescribeContinuousBackups", "PITR", unreadable, TableName=name)
    return None if answer is None else answer.get("ContinuousBackupsDescription", {}).get(
        "PointInTimeRecoveryDescription", {})


def call_if_implemented(client, operation: str, target: str, unreadable: dict, **params) -> Optional[dict]:
    """The answer, or None with the reason under `unreadable[target]` when this endpoint does not
    implement the operation (dynalite has no TTL or PITR APIs): the diff then names the field as
    not compared instead of the whole plan failing, or of guessing "disabled"."""
    try:
        return call(client, operation, **params)
    except AwsError as exc:
        if exc.code != UNSUPPORTED:
            raise
        unreadable[target] = f"this endpoint does not implement {operation}"
        return None


def in_parallel(function, items: list) -> list:
    """`function` over `items` on a bounded pool (boto3 clients are thread-safe): 200 tables at
    20 ms a call take about a second instead of five (bench/bench_deploy.py)."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(items))) as pool:
        return list(pool.map(function, items))


def describe_tables(client, names: list) -> dict:
    """{name: DescribeTable's `Table` or None}, described concurrently."""
    return dict(zip(names, in_parallel(lambda name: describe_table(client, name), names), strict=True))


def read_tables(client, expected: Iterable[ExpectedTable], list_first: bool = False) -> dict[str, LiveTable]:
    """What DynamoDB has for each table; `list_first` (apply only): see the module's docstring."""
    tables = list(expected)

    def read(some: list, absent: frozenset = frozenset()) -> dict:
        return {live.name: live for live in in_parallel(
            lambda table: LiveTable(table.name, None) if table.name in absent else read_table(client, table), some)}
    if not list_first or len(tables) <= MAX_PARALLEL:
        return read(tables)
    wave, rest = tables[:MAX_PARALLEL], tables[MAX_PARALLEL:]
    found = read(wave)
    listed = listed_tables(client) if sum(not live.exists for live in found.values()) * 2 >= len(wave) else None
    return found | read(rest, frozenset(t.name for t in rest if listed is not None and t.name not in listed))


def table_names(client) -> list:
    """Every table name in the account and region (ListTables, 100 a call)."""
    return [name for page in pages(client, "ListTables", "dynamodb") for name in page.get("TableNames", [])]


def listed_tables(client) -> Optional[set]:
    """table_names, or None when listing is refused (a role without dynamodb:ListTables:
    DescribeTable each, as without the shortcut)."""
    try:
        return set(table_names(client))
    except AwsError:
        return None
