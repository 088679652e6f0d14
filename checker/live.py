"""Read what DynamoDB has, for the tables the specs name, and nothing else.

DescribeTable per table (not ListTables): it needs only dynamodb:DescribeTable on those tables
and answers exactly the question. TTL and PITR are read only when the checklist asks for them,
so a role without those permissions can still plan the rest.
"""
from __future__ import annotations

from typing import Iterable, Optional

from .diff import ExpectedTable, LiveTable
from .errors import call


def describe_table(client, name: str) -> Optional[dict]:
    """DescribeTable's `Table`, or None when the table does not exist."""
    response = call(client, "DescribeTable", missing_ok=True, TableName=name)
    return response["Table"] if response else None


def read_table(client, table: ExpectedTable) -> LiveTable:
    description = describe_table(client, table.name)
    if description is None:
        return LiveTable(table.name, None)
    ttl = pitr = None
    if table.ttl_attribute:
        ttl = call(client, "DescribeTimeToLive", TableName=table.name).get("TimeToLiveDescription", {})
    if table.point_in_time_recovery:
        backups = call(client, "DescribeContinuousBackups", TableName=table.name)
        pitr = backups.get("ContinuousBackupsDescription", {}).get("PointInTimeRecoveryDescription", {})
    return LiveTable(table.name, description, ttl, pitr)


def read_tables(client, expected: Iterable[ExpectedTable]) -> dict[str, LiveTable]:
    return {table.name: read_table(client, table) for table in expected}
