"""The `items` check: items the app cannot run without (a user's record holding a refresh token)
exist, with the attributes named present. Read with a consistent GetItem that projects only those
attributes; a result says which are present and never shows a value.

"Present" means there, not NULL and not empty (an empty string, list, map or set is a value the
app cannot use).
"""
from __future__ import annotations

import json
import re

from ..checklist import RequiredItem
from ..context import CheckContext
from ..errors import AwsError
from ..fixes import SKELETON, aws_command, placeholder
from ..results import CheckResult, Status

SEGMENT = re.compile(r"([A-Za-z0-9_-]+)((?:\[[0-9]+\])*)")


def check_items(ctx: CheckContext, log=None) -> list:
    return [check_item(ctx, item) for item in ctx.checklist.items]


def item_id(item: RequiredItem) -> str:
    return f"item:{item.table}:{'/'.join(str(v) for v in item.key.values())}"


def check_item(ctx: CheckContext, item: RequiredItem) -> CheckResult:
    check_id = item_id(item)
    table = next((t for t in ctx.tables if t.spec_name == item.table), None)
    if table is None:
        return CheckResult(check_id, "items", Status.ERROR, f"no table spec has TableName {item.table}")
    try:
        key = typed_key(table.spec.request, item.key)
    except ValueError as exc:
        return CheckResult(check_id, "items", Status.ERROR, f"{ctx.checklist.file}: items: {exc}")
    projection, names = projection_expression(item.attributes)
    params = {"TableName": table.name, "Key": key, "ConsistentRead": True}
    if projection:
        params.update(ProjectionExpression=projection, ExpressionAttributeNames=names)
    expected = "the item, with " + (", ".join(item.attributes) if item.attributes else "no attribute asked for") + \
        " present (values not shown)"
    try:
        answer = ctx.call("dynamodb", "GetItem", **params)
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return CheckResult(check_id, "items", Status.FAIL, f"table {table.name} does not exist",
                               expected=expected, found="ResourceNotFoundException", checker_command="apply")
        raise
    found = answer.get("Item")
    if not isinstance(found, dict):
        return CheckResult(check_id, "items", Status.FAIL, f"no item {describe_key(item)} in {table.name}",
                           expected=expected, found="no such item",
                           remediation=put_item_skeleton(ctx, table.name, key, item.attributes))
    missing = [path for path in item.attributes if not present(found, path)]
    if missing:
        return CheckResult(check_id, "items", Status.FAIL,
                           f"item {describe_key(item)} in {table.name} lacks {', '.join(missing)}", expected=expected,
                           found=f"missing, NULL or empty: {', '.join(missing)}",
                           remediation=update_item_skeleton(ctx, table.name, key, missing))
    return CheckResult(check_id, "items", Status.PASS, f"item {describe_key(item)} in {table.name} is there"
                       + (f" with {', '.join(item.attributes)}" if item.attributes else ""), expected=expected,
                       found="present: " + (", ".join(item.attributes) or "the item"))


def put_item_skeleton(ctx: CheckContext, table: str, key: dict, attributes) -> str:
    """PutItem of the item with its key filled in and each attribute asked for a placeholder
    (checker never writes it: its values may be secrets only the user has); conditioned on the
    item not existing, so a paste never overwrites one the app wrote meanwhile."""
    first = next(iter(key))
    values = {**key, **{name: {"S": placeholder(f"the value of {name}, or another type than S")}
                        for name in (SEGMENT.match(path).group(1) for path in attributes)}}   # type: ignore[union-attr]
    return f"{SKELETON}: " + aws_command(ctx.aws, "dynamodb", "put-item", "--table-name", table, "--item",
                                         json.dumps(values), "--condition-expression", "attribute_not_exists(#k)",
                                         "--expression-attribute-names", json.dumps({"#k": first}))


def update_item_skeleton(ctx: CheckContext, table: str, key: dict, missing: list) -> str:
    """UpdateItem setting the missing attributes to placeholders, on the item that exists; a
    nested path (a.b[0]) is the user's to write."""
    if not all(SEGMENT.fullmatch(path) and "[" not in path for path in missing):
        return "set them as the app expects (checker never writes them)"
    names = {f"#a{n}": path for n, path in enumerate(missing)}
    values = {f":v{n}": {"S": placeholder(f"the value of {path}, or another type than S")} for n, path in enumerate(missing)}
    names["#k"] = next(iter(key))
    return f"{SKELETON}: " + aws_command(
        ctx.aws, "dynamodb", "update-item", "--table-name", table, "--key", json.dumps(key),
        "--update-expression", "SET " + ", ".join(f"#a{n} = :v{n}" for n in range(len(missing))),
        "--condition-expression", "attribute_exists(#k)", "--expression-attribute-names", json.dumps(names),
        "--expression-attribute-values", json.dumps(values))


def describe_key(item: RequiredItem) -> str:
    return ", ".join(f"{k}={v}" for k, v in item.key.items())


def typed_key(request: dict, key: dict) -> dict:
    """The key in DynamoDB's wire form, typed from the spec: exactly its key schema."""
    wanted = [k["AttributeName"] for k in request["KeySchema"]]
    if sorted(key) != sorted(wanted):
        raise ValueError(f"key of {request['TableName']} is {', '.join(wanted)}; the checklist gives "
                         f"{', '.join(map(str, key)) or 'nothing'}")
    types = {a["AttributeName"]: a["AttributeType"] for a in request["AttributeDefinitions"]}
    out = {}
    for name in wanted:
        value, kind = key[name], types[name]
        if kind == "N":
            try:
                float(str(value))
            except ValueError:
                raise ValueError(f"{name} is a number attribute; {value!r} is not a number") from None
        elif kind == "B":
            raise ValueError(f"{name} is a binary attribute: binary keys cannot be given here")
        out[name] = {kind: str(value)}
    return out


def projection_expression(paths) -> tuple:
    """(ProjectionExpression, ExpressionAttributeNames) with a placeholder for every name segment,
    so reserved words (`status`, `name`) and dashes need no care."""
    names: dict = {}
    expressions = []
    for path in paths:
        parts = []
        for segment in path.split("."):
            match = SEGMENT.fullmatch(segment)
            if match is None:
                continue
            placeholder = next((p for p, n in names.items() if n == match.group(1)), f"#a{len(names)}")
            names[placeholder] = match.group(1)
            parts.append(placeholder + match.group(2))
        expressions.append(".".join(parts))
    return ", ".join(expressions), names


def present(item: dict, path: str) -> bool:
    value: object = {"M": item}
    for segment in path.split("."):
        match = SEGMENT.fullmatch(segment)
        if match is None or not isinstance(value, dict) or "M" not in value:
            return False
        value = value["M"].get(match.group(1))
        for index in re.findall(r"\[([0-9]+)\]", match.group(2)):
            if not isinstance(value, dict) or "L" not in value or int(index) >= len(value["L"]):
                return False
            value = value["L"][int(index)]
    if not isinstance(value, dict) or not value or "NULL" in value:
        return False
    (kind, content), = value.items()
    return not (kind in ("S", "B", "L", "M", "SS", "NS", "BS") and len(content) == 0)
