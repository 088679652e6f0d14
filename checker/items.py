"""The one item codec: DynamoDB's wire form (`{"S": "x"}`) to plain Python values (boto3's
TypeDeserializer: numbers as Decimal, sets as sets) and back, and a canonical form in which
equal DynamoDB values are equal. The ground floor: imports nothing of checker. (The runtime,
spotify_playlist, keeps its own: the Lambda ships without checker.)"""
from __future__ import annotations

import base64
import json
from decimal import Decimal


def canonical(value):
    """A JSON-able form in which equal DynamoDB values are equal and unequal ones differ by type."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (Decimal, int, float)):
        number = Decimal(str(value)).normalize()
        return {"N": "0" if number.is_zero() else format(number, "E")}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)) or type(value).__name__ == "Binary":
        raw = bytes(value.value) if hasattr(value, "value") else bytes(value)
        return {"B": base64.b64encode(raw).decode()}
    if isinstance(value, (set, frozenset)):
        members = [canonical(v) for v in value]
        return {"SET": sorted(members, key=lambda m: json.dumps(m, sort_keys=True))}
    if isinstance(value, (list, tuple)):
        return {"L": [canonical(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: canonical(v) for k, v in sorted(value.items())}}
    raise TypeError(f"not a DynamoDB value: {type(value).__name__}")


def to_dynamo(value):
    """A transform's value as boto3 serialises it: floats become Decimals (TypeSerializer refuses floats)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo(v) for v in value]
    return value


def plain_item(item: dict) -> dict:
    from boto3.dynamodb.types import TypeDeserializer
    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in item.items()}


def wire_item(item: dict) -> dict:
    from boto3.dynamodb.types import TypeSerializer
    serializer = TypeSerializer()
    return {k: serializer.serialize(to_dynamo(v)) for k, v in item.items()}


def same(a, b) -> bool:
    """Equal as DynamoDB values (1 and 1.0 and Decimal("1E+0") are)."""
    return canonical(to_dynamo(a)) == canonical(to_dynamo(b))


BYTES_TAG = "__bytes_base64__"


def to_json(value, **options) -> str:
    """JSON of wire values (a key, a checkpoint's ExclusiveStartKey) with binary values (B, BS:
    bytes) tagged in base64; from_json reads it back to the same values."""
    def tagged(member):
        if isinstance(member, (bytes, bytearray)):
            return {BYTES_TAG: base64.b64encode(bytes(member)).decode()}
        raise TypeError(f"not a DynamoDB value: {type(member).__name__}")
    return json.dumps(value, default=tagged, **options)


def from_json(text: str):
    return json.loads(text, object_hook=lambda d: base64.b64decode(d[BYTES_TAG]) if set(d) == {BYTES_TAG} else d)


def plain_numbers(value):
    """A plain value with its Decimals as int (whole) or float: what JSON and a person read."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value
