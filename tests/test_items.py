"""The item codec's JSON: checkpoints and stream keys with binary values round-trip."""
from __future__ import annotations

import pytest

from checker.items import from_json, to_json
from checker.migrate.copy import item_bytes


def test_a_key_with_binary_values_round_trips_through_its_json():
    key = {"id": {"B": b"\x00\xff"}, "sort": {"S": "a"}, "set": {"BS": [b"\x01", b""]}}
    text = to_json(key, sort_keys=True)
    assert from_json(text) == key and to_json(from_json(text), sort_keys=True) == text


def test_what_is_not_a_dynamodb_value_is_refused():
    with pytest.raises(TypeError, match="not a DynamoDB value: object"):
        to_json({"x": object()})


def test_item_size_counts_names_and_values_binary_by_its_bytes():
    assert item_bytes({"id": {"S": "héllo"}}) == 2 + 6
    assert item_bytes({"b": {"B": b"\x00" * 1000}}) == 1001
    assert item_bytes({"m": {"M": {"k": {"S": "v"}}}, "l": {"L": [{"BOOL": True}]}}) > 8
