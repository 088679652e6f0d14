"""Read what DynamoDB has, for the tables the specs name, and nothing else.

DescribeTable per table (not ListTables): it needs only dynamodb:DescribeTable on those tables
and answers exactly the question. TTL and PITR are read only when the checklist asks for them,
so a role without those permissions can still plan the rest.
"""
from __future__ import annotations

from typing import Iterable, Optional

import botocore.exceptions
from botocore import xform_name

from .diff import ExpectedTable, LiveTable
from .errors import CheckerError, describe_aws_error


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def call(client, operation: str, **params):
    """Call one API operation, turning any failure into a one-line CheckerError."""
    try:
        return getattr(client, xform_name(operation))(**params)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise CheckerError(describe_aws_error(exc, operation)) from exc


def describe_table(client, name: str) -> Optional[dict]:
    """DescribeTable's `Table`, or None when the table does not exist."""
    try:
        return client.describe_table(TableName=name)["Table"]
    except botocore.exceptions.ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return None
        raise CheckerError(describe_aws_error(exc, "DescribeTable")) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise CheckerError(describe_aws_error(exc, "DescribeTable")) from exc


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
