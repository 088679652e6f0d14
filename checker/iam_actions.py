"""DynamoDB's IAM actions, as AWS's Service Authorization Reference lists them ("Actions defined
by Amazon DynamoDB"), and the API operations that are not actions of their own.

IAM actions are not botocore's operation names: TransactWriteItems, ExecuteStatement and friends
authorize nothing themselves; each item inside them is authorized by the action named here. A
test keeps this list in step with botocore's `dynamodb` and `dynamodbstreams` models: every
operation there is an action here or an entry of OPERATIONS_AUTHORIZED_BY.
"""
from __future__ import annotations

ACTIONS = frozenset({
    "BatchGetItem", "BatchWriteItem", "ConditionCheckItem", "CreateBackup", "CreateGlobalTable", "CreateTable",
    "CreateTableReplica", "DeleteBackup", "DeleteItem", "DeleteResourcePolicy", "DeleteTable", "DeleteTableReplica",
    "DescribeBackup", "DescribeContinuousBackups", "DescribeContributorInsights", "DescribeEndpoints",
    "DescribeExport", "DescribeGlobalTable", "DescribeGlobalTableSettings", "DescribeImport",
    "DescribeKinesisStreamingDestination", "DescribeLimits", "DescribeReservedCapacity",
    "DescribeReservedCapacityOfferings", "DescribeStream", "DescribeTable", "DescribeTableReplicaAutoScaling",
    "DescribeTimeToLive", "DisableKinesisStreamingDestination", "EnableKinesisStreamingDestination",
    "ExportTableToPointInTime", "GetAbacStatus", "GetItem", "GetRecords", "GetResourcePolicy", "GetShardIterator",
    "ImportTable", "ListBackups", "ListContributorInsights", "ListExports", "ListGlobalTables", "ListImports",
    "ListStreams", "ListTables", "ListTagsOfResource", "PartiQLDelete", "PartiQLInsert", "PartiQLSelect",
    "PartiQLUpdate", "PurchaseReservedCapacityOfferings", "PutItem", "PutResourcePolicy", "Query",
    "RestoreTableFromAwsBackup", "RestoreTableFromBackup", "RestoreTableToPointInTime", "Scan", "StartAwsBackupJob",
    "TagResource", "UntagResource", "UpdateAbacStatus", "UpdateContinuousBackups", "UpdateContributorInsights",
    "UpdateGlobalTable", "UpdateGlobalTableSettings", "UpdateGlobalTableVersion", "UpdateItem",
    "UpdateKinesisStreamingDestination", "UpdateTable", "UpdateTableReplicaAutoScaling", "UpdateTimeToLive",
    # Operations newer than the reference this list was taken from; AWS names their actions after
    # the operation, as for every operation above that is an action.
    "CancelBulkOperation", "DescribeBulkOperation", "ListBulkOperations", "SearchVectors", "StartBulkPutItems",
})

PARTIQL = ("PartiQLSelect", "PartiQLInsert", "PartiQLUpdate", "PartiQLDelete")
# API operation -> the actions that authorize what it does (the operation itself is no action)
OPERATIONS_AUTHORIZED_BY = {
    "TransactGetItems": ("GetItem",),
    "TransactWriteItems": ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"),
    "ExecuteStatement": PARTIQL,
    "BatchExecuteStatement": PARTIQL,
    "ExecuteTransaction": PARTIQL,
}

# Actions on a table's stream: their resource is arn:...:table/NAME/stream/*, not the table's ARN
STREAM_ACTIONS = frozenset({"DescribeStream", "GetRecords", "GetShardIterator"})

_BY_LOWER = {a.lower(): a for a in ACTIONS}


def action_problem(action: str) -> str | None:
    """Why `dynamodb:X` authorizes nothing (with the nearest real action), or None when it is an
    action. IAM compares action names case-insensitively, and so does this."""
    from .suggest import did_you_mean
    name = action.split(":", 1)[1] if ":" in action else action
    if name.lower() in _BY_LOWER:
        return None
    operation = next((op for op in OPERATIONS_AUTHORIZED_BY if op.lower() == name.lower()), None)
    if operation:
        needed = ", ".join(f"dynamodb:{a}" for a in OPERATIONS_AUTHORIZED_BY[operation])
        return f"{action} is an API operation, not an IAM action: it is authorized by {needed} (those its items use)"
    return f"{action} is not a DynamoDB IAM action" + did_you_mean(name, ACTIONS, prefix="dynamodb:")
