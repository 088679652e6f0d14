"""Terraform: the `aws_dynamodb_table` resources of `terraform show -json` output, of a plan
(`planned_values`) or of a state (`values`), child modules included, as CreateTable requests.

Terraform has already evaluated every expression for its workspace, so a document is one
environment's; its spec names are the resources' addresses (`aws_dynamodb_table.liked`,
`module.cache.aws_dynamodb_table.songs`), which the checklist's bindings and permissions use.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def is_terraform_json(text: str) -> bool:
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return False
    try:
        document = json.loads(text)
    except ValueError:
        return False
    return isinstance(document, dict) and "format_version" in document and (
        "values" in document or "planned_values" in document)


def resources(module: Any) -> list:
    """Every resource of a module and its child modules."""
    if not isinstance(module, dict):
        return []
    listed, children = module.get("resources"), module.get("child_modules")
    found = [r for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []
    for child in children if isinstance(children, list) else []:
        found += resources(child)
    return found


def terraform_specs(path: Path, text: str) -> tuple:
    """([TableSpec], [Problem]) of every managed aws_dynamodb_table."""
    from ..inputs import InputError, parse_json
    from ..specs import Problem
    try:
        document = parse_json(text)
    except InputError as exc:
        return [], [Problem(str(path), exc.where, exc.message)]
    values = document.get("planned_values") or document.get("values") or {}
    if not isinstance(values, dict):
        return [], [Problem(str(path), "$.values", "not a map, as terraform show -json writes it")]
    specs, problems = [], []
    for resource in resources(values.get("root_module")):
        if resource.get("type") != "aws_dynamodb_table" or resource.get("mode", "managed") != "managed":
            continue
        address = str(resource.get("address") or f"aws_dynamodb_table.{resource.get('name') or '?'}")
        where = f"$.{address}"
        table = resource.get("values") or {}
        if not isinstance(table, dict):
            problems.append(Problem(str(path), where, "its values are not a map, as terraform show -json writes them"))
            continue
        if not table.get("name"):
            problems.append(Problem(str(path), where, "no name: the plan does not know it yet (computed); checker "
                                                      "does not guess it"))
            continue
        from .cloudformation import table_spec
        try:
            request, wishes = table_request(table), wishes_of(table)
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            problems.append(Problem(str(path), where, f"not an aws_dynamodb_table's values as terraform show -json "
                                                      f"writes them ({type(exc).__name__}: {exc})"))
            continue
        found = table_spec(path, address, request, wishes, where)
        if isinstance(found, list):
            problems += [Problem(p.file, p.path.replace(f"{where}.Properties", where, 1), p.message) for p in found]
        else:
            specs.append(found)
    return specs, problems


def key_schema(hash_key: Any, range_key: Any) -> list:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def projection(index: dict) -> dict:
    found: dict = {"ProjectionType": index.get("projection_type") or "ALL"}
    if index.get("non_key_attributes"):
        found["NonKeyAttributes"] = list(index["non_key_attributes"])
    return found


def table_request(table: dict) -> dict:
    """An aws_dynamodb_table's values as a CreateTable request."""
    billing = table.get("billing_mode") or "PROVISIONED"
    request: dict = {"TableName": table["name"],
                     "AttributeDefinitions": [{"AttributeName": a.get("name"), "AttributeType": a.get("type")}
                                              for a in table.get("attribute") or []],
                     "KeySchema": key_schema(table.get("hash_key"), table.get("range_key")),
                     "BillingMode": billing}
    provisioned = billing == "PROVISIONED"
    if provisioned:
        request["ProvisionedThroughput"] = {"ReadCapacityUnits": int(table.get("read_capacity") or 0),
                                            "WriteCapacityUnits": int(table.get("write_capacity") or 0)}
    indexes = []
    for index in table.get("global_secondary_index") or []:
        found = {"IndexName": index.get("name"), "KeySchema": key_schema(index.get("hash_key"), index.get("range_key")),
                 "Projection": projection(index)}
        if provisioned:
            found["ProvisionedThroughput"] = {"ReadCapacityUnits": int(index.get("read_capacity") or 0),
                                              "WriteCapacityUnits": int(index.get("write_capacity") or 0)}
        indexes.append(found)
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    local = [{"IndexName": index.get("name"), "KeySchema": key_schema(table.get("hash_key"), index.get("range_key")),
              "Projection": projection(index)} for index in table.get("local_secondary_index") or []]
    if local:
        request["LocalSecondaryIndexes"] = local
    if table.get("stream_enabled"):
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.get("stream_view_type")}
    sse = (table.get("server_side_encryption") or [None])[0]
    if isinstance(sse, dict) and sse.get("enabled"):
        request["SSESpecification"] = {"Enabled": True, "SSEType": "KMS",
                                       **({"KMSMasterKeyId": sse["kms_key_arn"]} if sse.get("kms_key_arn") else {})}
    if table.get("table_class"):
        request["TableClass"] = table["table_class"]
    if table.get("deletion_protection_enabled"):
        request["DeletionProtectionEnabled"] = True
    if table.get("tags"):
        request["Tags"] = [{"Key": k, "Value": str(v)} for k, v in sorted(table["tags"].items())]
    return request


def wishes_of(table: dict) -> dict:
    ttl = (table.get("ttl") or [None])[0]
    pitr = (table.get("point_in_time_recovery") or [None])[0]
    return {"ttl_attribute": ttl.get("attribute_name") if isinstance(ttl, dict) and ttl.get("enabled") else None,
            "point_in_time_recovery": bool(isinstance(pitr, dict) and pitr.get("enabled"))}
