"""The catch-up after the switch, record by record: a straggler's write (an invocation that started
before the switch) is replayed only onto what the switched app has not written, and the replay is
conditional on what was read, so an app write landing between the read and the write is kept."""
from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws

from checker.migrate.stream import EXPRESSION_LIMIT, VALUES_BUDGET, CatchUp, unchanged_condition

from .conftest import REGION

KEY = {"userId": {"S": "u"}, "trackId": {"S": "t1"}}


def item(version: str) -> dict:
    return dict(KEY, v={"S": version})


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        for name in ("songs", "songs_v2"):
            client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                                AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"},
                                                      {"AttributeName": "trackId", "AttributeType": "S"}],
                                KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"},
                                           {"AttributeName": "trackId", "KeyType": "RANGE"}])
        yield client


def switched(client) -> CatchUp:
    catch_up = CatchUp(client, "songs", "songs_v2", ("userId", "trackId"), switched=True)
    catch_up.switched_at = time.time()
    return catch_up


def record(old: dict | None) -> dict:
    return {"dynamodb": {"Keys": KEY, **({"OldImage": old} if old else {}),
                         "ApproximateCreationDateTime": time.time() - 1}}


def target(client) -> dict | None:
    return client.get_item(TableName="songs_v2", Key=KEY, ConsistentRead=True).get("Item")


def test_a_target_holding_a_later_state_of_the_batch_is_still_ours(dynamodb):
    """The target holds B (an earlier replay read it); this batch carries A->B and B->C: the
    target still holds one of the source's states, so C is written, no conflict."""
    dynamodb.put_item(TableName="songs", Item=item("C"))
    dynamodb.put_item(TableName="songs_v2", Item=item("B"))
    catch_up = switched(dynamodb)
    catch_up.apply([record(item("A")), record(item("B"))])
    assert target(dynamodb) == item("C") and catch_up.conflicts == []


def test_a_key_the_switched_app_wrote_is_a_conflict_and_keeps_the_apps_version(dynamodb):
    dynamodb.put_item(TableName="songs", Item=item("straggler"))
    dynamodb.put_item(TableName="songs_v2", Item=item("app"))
    catch_up = switched(dynamodb)
    catch_up.apply([record(item("before"))])
    assert target(dynamodb) == item("app")
    assert catch_up.conflicts == [{"userId": "u", "trackId": "t1"}]


class WritesBetween:
    """A DynamoDB client on which the switched app writes the key right after checker's read of
    the target: the moment a check-then-write would overwrite it."""

    def __init__(self, client, write: dict | None):
        self.client, self.write = client, write

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_item(self, **params):
        answer = self.client.get_item(**params)
        if params["TableName"] == "songs_v2":
            if self.write is None:
                self.client.delete_item(TableName="songs_v2", Key=KEY)
            else:
                self.client.put_item(TableName="songs_v2", Item=self.write)
        return answer


@pytest.mark.parametrize("straggler", ["put", "delete"])
@pytest.mark.parametrize("app_writes", [item("app"), None], ids=["app-puts", "app-deletes"])
def test_an_app_write_between_the_read_and_the_replay_is_kept(dynamodb, straggler, app_writes):
    dynamodb.put_item(TableName="songs_v2", Item=item("before"))
    if straggler == "put":
        dynamodb.put_item(TableName="songs", Item=item("straggler"))
    catch_up = switched(WritesBetween(dynamodb, app_writes))
    catch_up.apply([record(item("before"))])
    assert target(dynamodb) == app_writes
    assert catch_up.conflicts == [{"userId": "u", "trackId": "t1"}] and catch_up.replayed == 0


def test_a_straggler_the_app_did_not_touch_is_replayed(dynamodb):
    dynamodb.put_item(TableName="songs_v2", Item=item("before"))
    catch_up = switched(dynamodb)
    catch_up.apply([record(item("before"))])       # the straggler deleted it from the source
    assert target(dynamodb) is None and catch_up.conflicts == [] and catch_up.replayed == 1


def test_the_condition_fits_an_expression_for_an_item_of_many_attributes(dynamodb):
    wide = dict(KEY, **{f"attribute_{n:04d}": {"N": str(n)} for n in range(600)})
    condition = unchanged_condition(KEY, wide)
    assert len(condition["ConditionExpression"]) <= EXPRESSION_LIMIT
    assert set(condition["ExpressionAttributeNames"].values()) >= {"userId", "trackId"}
    dynamodb.put_item(TableName="songs_v2", Item=wide)
    dynamodb.put_item(TableName="songs_v2", Item=KEY, **condition)   # holds while the item is unchanged
    assert target(dynamodb) == KEY


def test_an_old_version_the_copy_wrote_at_a_moved_key_is_deleted_after_the_copy(dynamodb):
    """A transform that makes a changed attribute into the key: the copy read the item before the
    change and wrote it after the change's replay, at the key the old version maps to."""
    dynamodb.create_table(TableName="slots", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"},
                                                {"AttributeName": "slot", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"},
                                     {"AttributeName": "slot", "KeyType": "RANGE"}])

    def slotted(wire: dict) -> dict:
        return dict(wire, slot={"S": f"{wire['v']['S']}#{wire['trackId']['S']}"})
    catch_up = CatchUp(dynamodb, "songs", "slots", ("userId", "slot"), transform=slotted)
    dynamodb.put_item(TableName="songs", Item=item("new"))
    catch_up.apply([record(item("old"))])                            # the replay, during the copy
    dynamodb.put_item(TableName="slots", Item=slotted(item("old")))  # the copy's late write of what it read
    catch_up.after_copy()
    held = dynamodb.scan(TableName="slots")["Items"]
    assert held == [slotted(item("new"))]


def test_the_condition_leaves_out_a_large_value_and_still_guards_the_rest(dynamodb):
    big = dict(item("v1"), blob={"B": b"x" * 300_000}, version={"N": "7"})
    condition = unchanged_condition(KEY, big)
    guarded = set(condition["ExpressionAttributeNames"].values())
    assert "blob" not in guarded and {"userId", "trackId", "v", "version"} <= guarded
    assert sum(len(str(v)) for v in condition["ExpressionAttributeValues"].values()) < VALUES_BUDGET
    dynamodb.put_item(TableName="songs_v2", Item=big)
    dynamodb.put_item(TableName="songs_v2", Item=item("ours"), **condition)
    assert target(dynamodb) == item("ours")


def test_a_record_without_an_old_image_under_a_new_key_schema_builds_no_empty_key(dynamodb):
    """Target keyed (userId, slot), the source item gone and its record without an old image (a
    resumed run's TRIM_HORIZON, a KEYS_ONLY view): nothing names a target item, nothing is sent
    (a DeleteItem with the source's partial key was a ValidationException that stopped every rerun)."""
    dynamodb.create_table(TableName="slots", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"},
                                                {"AttributeName": "slot", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"},
                                     {"AttributeName": "slot", "KeyType": "RANGE"}])
    dynamodb.put_item(TableName="slots", Item={"userId": {"S": "u"}, "slot": {"S": "A#t2"}})
    catch_up = CatchUp(dynamodb, "songs", "slots", ("userId", "slot"),
                       transform=lambda i: dict(i, slot={"S": f"{i['v']['S']}#{i['trackId']['S']}"}), copying=False)
    catch_up.apply([record(None)])
    assert catch_up.replayed == 1
    assert dynamodb.scan(TableName="slots")["Items"] == [{"userId": {"S": "u"}, "slot": {"S": "A#t2"}}]


def test_a_poll_reads_each_shard_to_its_tip_so_one_replay_covers_a_whole_backlog():
    """Three full pages and a short one: one poll returns them all and says it reached the tip;
    a shard still full after PAGES_A_POLL pages is not at its tip (the catch-up is not quiet)."""
    from checker.migrate import stream

    class Streams:
        def __init__(self, pages):
            self.pages, self.calls = pages, 0

        def get_records(self, ShardIterator, Limit):
            self.calls += 1
            size = self.pages.pop(0) if self.pages else Limit
            return {"Records": [{"dynamodb": {"SequenceNumber": f"{self.calls}-{n}"}} for n in range(size)],
                    "NextShardIterator": f"it{self.calls}"}
    full = stream.RECORDS_A_CALL
    reader = stream.StreamReader(Streams([full, full, full, 7]), "arn", iterators={"s1": "it0"}, polls=1)
    records = reader.poll()
    assert len(records) == 3 * full + 7 and reader.at_tip and reader.positions["s1"] == "4-6"
    endless = stream.StreamReader(Streams([]), "arn", iterators={"s1": "it0"}, polls=1)
    assert len(endless.poll()) == stream.PAGES_A_POLL * full and not endless.at_tip
