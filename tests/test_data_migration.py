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


def test_a_delete_spares_an_item_the_app_changed_since_it_was_read(songs):
    """DELETE is conditioned on the item as read: the app revived it meanwhile, the transform sees
    its new state and keeps it."""
    from checker.migrate.declared import DELETE
    songs.put_item(TableName="songs", Item={"pk": {"S": "c"}, "obsolete": {"BOOL": True}})
    read = {"pk": "c", "obsolete": True}
    songs.put_item(TableName="songs", Item={"pk": {"S": "c"}, "obsolete": {"BOOL": False}})   # the app, meanwhile
    run = run_of(songs, lambda item: DELETE if item.get("obsolete") else None)
    run.allow_deletes = True
    assert run.item(read) == 0
    assert songs.get_item(TableName="songs", Key={"pk": {"S": "c"}}, ConsistentRead=True)["Item"]["obsolete"] == {"BOOL": False}
    assert run.item({"pk": "c", "obsolete": False}) == 0


@pytest.fixture
def ledger(monkeypatch):
    """A ledger whose lease lasts 1 s and beats every 0.1 s (15 s and 60 s in a real run)."""
    import checker.migrate.ledger as module
    monkeypatch.setattr(module, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(module, "HEARTBEAT_SECONDS", 0.1)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        first = module.Ledger(client, "checker_migrations")
        first.ensure()
        yield module, client, first


def test_a_running_migrate_keeps_its_lease_through_a_long_phase(ledger):
    import time
    module, client, first = ledger
    with first.lease("arn:first"):
        time.sleep(1.5)                 # longer than the lease: only the heartbeat kept it
        with pytest.raises(CheckerError, match="another checker migrate is running.*arn:first"):
            with module.Ledger(client, first.name).lease("arn:second"):
                pass
        first.require()                 # still ours


def test_a_dead_runs_lease_is_taken_over_and_the_old_run_stops_before_its_next_write(ledger):
    import time
    module, client, first = ledger
    with first.lease("arn:first"):
        # as if this run had hung past its lease and another had taken the environment over
        client.put_item(TableName=first.name, Item={"id": {"S": "lock"}, "owner": {"S": "someone-else"},
                                                    "caller": {"S": "arn:second"}, "since": {"N": "0"},
                                                    "expiresAt": {"N": str(int(time.time() + 60))}})
        time.sleep(0.4)
        with pytest.raises(CheckerError, match="lease .* was taken"):
            first.update("table:x", status="copied")
    assert client.get_item(TableName=first.name, Key={"id": {"S": "lock"}})["Item"]["owner"]["S"] == "someone-else"
    assert "Item" not in client.get_item(TableName=first.name, Key={"id": {"S": "table:x"}})
    expired = {"id": {"S": "lock"}, "owner": {"S": "killed"}, "since": {"N": "0"},
               "expiresAt": {"N": str(int(time.time()) - 5)}}
    client.put_item(TableName=first.name, Item=expired)         # a run killed with SIGKILL a minute ago
    with module.Ledger(client, first.name).lease("arn:third") as third:
        third.update("table:x", status="copied")
