"""A data migration's per-item write, scheduled against the app: the item it read is deleted (or
changed) before its UpdateItem lands. On moto's mock_aws, the interleaving set by hand."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from checker.errors import CheckerError
from checker.migrate.data import DataRun
from checker.migrate.declared import DataMigration

from .conftest import REGION


def backfill(item: dict):
    return None if "genre" in item else {**item, "genre": "unknown"}


@pytest.fixture
def songs():
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(TableName="songs", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        yield client


def run_of(client, transform=backfill) -> DataRun:
    migration = DataMigration("0001_backfill", Path("migrations/0001_backfill.py"), "songs", transform, "0" * 64)
    return DataRun(client, migration, "songs", ("pk",))


def test_an_item_the_app_deleted_after_the_scan_read_it_is_not_written_back(songs):
    """An UpdateItem creates the item it names: without a condition that the item exists, a backfill
    racing the app's delete left a `{key, genre}` ghost (19 of 147 deletes came back)."""
    songs.put_item(TableName="songs", Item={"pk": {"S": "a"}, "title": {"S": "one"}})
    read = {"pk": "a", "title": "one"}                          # what the Scan page held
    songs.delete_item(TableName="songs", Key={"pk": {"S": "a"}})  # the app, between the read and the write
    assert run_of(songs).item(read) == 0
    assert "Item" not in songs.get_item(TableName="songs", Key={"pk": {"S": "a"}}, ConsistentRead=True)


def test_an_item_the_app_changed_meanwhile_is_read_again_and_migrated_from_its_new_state(songs):
    songs.put_item(TableName="songs", Item={"pk": {"S": "b"}, "title": {"S": "two"}})
    read = {"pk": "b", "title": "two"}
    songs.put_item(TableName="songs", Item={"pk": {"S": "b"}, "title": {"S": "two, remastered"}})
    assert run_of(songs).item(read) == 1
    item = songs.get_item(TableName="songs", Key={"pk": {"S": "b"}}, ConsistentRead=True)["Item"]
    assert item == {"pk": {"S": "b"}, "title": {"S": "two, remastered"}, "genre": {"S": "unknown"}}


def test_a_transform_result_over_400_kb_fails_naming_the_key(songs):
    songs.put_item(TableName="songs", Item={"pk": {"S": "big"}, "title": {"S": "x"}})

    def grow(item: dict):
        return None if "blob" in item else {**item, "blob": "z" * 420_000}
    with pytest.raises(CheckerError, match=r"'pk': 'big'.*400 KB"):
        run_of(songs, grow).item({"pk": "big", "title": "x"})
