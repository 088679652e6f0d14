"""`checker export`: adopt an environment that already exists, live tables in, specs out.

`spec_from_table` is pure: DescribeTable's `Table` (and the table's tags) in, the CreateTable
request that would make that table out, with only the fields CreateTable takes and the table
states, named without the environment's prefix/suffix. An on-demand table gets no 0/0
throughput; a stream, encryption or table class appear only when the table has them, so `plan`
against the same account says "In sync" for the exported files.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional


def strip_affixes(name: str, prefix: str, suffix: str) -> Optional[str]:
    """The spec name of a live table name, or None when the name lacks the prefix or suffix."""
    if prefix and not name.startswith(prefix) or suffix and not name.endswith(suffix):
        return None
    stripped = name[len(prefix):len(name) - len(suffix) if suffix else None]
    return stripped or None


def _throughput(value: Optional[dict]) -> dict:
    value = value or {}
    return {"ReadCapacityUnits": value.get("ReadCapacityUnits", 0), "WriteCapacityUnits": value.get("WriteCapacityUnits", 0)}


def _on_demand(value: Optional[dict]) -> Optional[dict]:
    limits = {k: v for k, v in (value or {}).items() if k in ("MaxReadRequestUnits", "MaxWriteRequestUnits") and v != -1}
    return limits or None


def _index(index: dict, provisioned: bool, local: bool = False) -> dict:
    out = {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"],
           "Projection": {k: v for k, v in index.get("Projection", {}).items() if k in ("ProjectionType", "NonKeyAttributes")}}
    if not local:
        if provisioned:
            out["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
        elif _on_demand(index.get("OnDemandThroughput")):
            out["OnDemandThroughput"] = _on_demand(index.get("OnDemandThroughput"))
    return out


def spec_from_table(table: dict, spec_name: str, tags: Optional[dict] = None, aws_managed_keys=frozenset()) -> dict:
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    provisioned = billing == "PROVISIONED"
    key_names = {k["AttributeName"] for k in table["KeySchema"]}
    for index in table.get("GlobalSecondaryIndexes", []) + table.get("LocalSecondaryIndexes", []):
        key_names |= {k["AttributeName"] for k in index["KeySchema"]}
    spec: dict = {
        "TableName": spec_name,
        "AttributeDefinitions": [a for a in table.get("AttributeDefinitions", []) if a["AttributeName"] in key_names],
        "KeySchema": table["KeySchema"],
    }
    if table.get("LocalSecondaryIndexes"):
        spec["LocalSecondaryIndexes"] = [_index(i, provisioned, local=True) for i in table["LocalSecondaryIndexes"]]
    if table.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = [_index(i, provisioned) for i in table["GlobalSecondaryIndexes"]]
    spec["BillingMode"] = billing
    if provisioned:
        spec["ProvisionedThroughput"] = _throughput(table.get("ProvisionedThroughput"))
    elif _on_demand(table.get("OnDemandThroughput")):
        spec["OnDemandThroughput"] = _on_demand(table.get("OnDemandThroughput"))
    stream = table.get("StreamSpecification") or {}
    if stream.get("StreamEnabled"):
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = table.get("SSEDescription") or {}
    if sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING") and sse.get("SSEType", "KMS") == "KMS":
        spec["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
        if sse.get("KMSMasterKeyArn") and sse["KMSMasterKeyArn"] not in aws_managed_keys:
            # an AWS managed key's ARN is this account's: SSEType KMS without a key means it anywhere
            spec["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyArn"]
    table_class = (table.get("TableClassSummary") or {}).get("TableClass")
    if table_class and table_class != "STANDARD":
        spec["TableClass"] = table_class
    if table.get("DeletionProtectionEnabled"):  # off is the default: a spec written with false would
        spec["DeletionProtectionEnabled"] = True  # later plan turning it on as a manual "disable" step
    if tags:
        spec["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    return spec


def checklist_snippet(wishes: dict, unread: Sequence[str] = ()) -> str:
    """The checklist's `tables:` section for the TTL and PITR found ({spec name: {...}}), and a
    comment for each that could not be read (never taken for "off")."""
    notes = [f"# {line}: check it by hand" for line in unread]
    if not wishes:
        return "\n".join(notes + ["# no TTL or point-in-time recovery found on the exported tables: "
                                   "nothing to add to checklist.yaml"])
    lines = notes + ["# add to checklist.yaml:", "tables:"]
    for name, wish in sorted(wishes.items()):
        lines.append(f"  {name}:")
        lines += [f"    {key}: {'true' if value is True else value}" for key, value in wish.items()]
    return "\n".join(lines)
