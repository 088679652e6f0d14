"""The pure diff: specs and live descriptions in, changes out. No AWS here at all."""
from __future__ import annotations

import copy

from checker.diff import ExpectedTable, LiveTable, diff_table, diff_tables
from checker.specs import TableSpec

from .conftest import load_spec


def expected(name, change=None, **wishes):
    request = copy.deepcopy(load_spec(name))
    if change:
        change(request)
    return ExpectedTable(TableSpec(f"{name}.json", request), **wishes)


def described(name, change=None, **extra):
    """What DescribeTable would say for a table created exactly from its spec."""
    request = copy.deepcopy(load_spec(name))
    table = {
        "TableName": request["TableName"],
        "TableStatus": "ACTIVE",
        "AttributeDefinitions": request["AttributeDefinitions"],
        "KeySchema": request["KeySchema"],
        "ProvisionedThroughput": request.get("ProvisionedThroughput", {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}),
        "BillingModeSummary": {"BillingMode": request.get("BillingMode", "PROVISIONED")},
    }
    if "GlobalSecondaryIndexes" in request:
        table["GlobalSecondaryIndexes"] = [dict(i, IndexStatus="ACTIVE") for i in request["GlobalSecondaryIndexes"]]
    if change:
        change(table)
    return LiveTable(request["TableName"], table, **extra)


def actions(changes):
    return [(c.table, c.action, c.automatic) for c in changes]


def test_in_sync_when_live_matches_spec():
    for name in ["user", "action_history", "track", "liked_songs", "liked_songs_metadata"]:
        assert diff_table(expected(name), described(name)) == []


def test_missing_tables_are_created_with_their_spec_as_request():
    changes = diff_tables([expected("user"), expected("liked_songs")], {"user": described("user")})
    assert actions(changes) == [("liked_songs", "create-table", True)]
    assert changes[0].operation == "CreateTable"
    assert changes[0].params == load_spec("liked_songs")
    assert "userId-addedAt-index" in changes[0].detail


def test_a_live_table_without_billing_summary_is_provisioned():
    live = described("user", lambda t: t.pop("BillingModeSummary"))
    assert diff_table(expected("user"), live) == []


def test_missing_gsi_is_created_with_its_attribute_definitions():
    def drop(t):
        t.pop("GlobalSecondaryIndexes")
        t["AttributeDefinitions"] = [a for a in t["AttributeDefinitions"] if a["AttributeName"] != "addedAt"]
    (change,) = diff_table(expected("liked_songs"), described("liked_songs", drop))
    assert (change.action, change.automatic, change.operation) == ("create-index", True, "UpdateTable")
    assert change.params["AttributeDefinitions"] == [{"AttributeName": "userId", "AttributeType": "S"},
                                                      {"AttributeName": "trackId", "AttributeType": "S"},
                                                      {"AttributeName": "addedAt", "AttributeType": "N"}]
    (update,) = change.params["GlobalSecondaryIndexUpdates"]
    assert update["Create"]["IndexName"] == "userId-addedAt-index"


def test_each_missing_gsi_is_its_own_change():
    def two(r):
        r["AttributeDefinitions"].append({"AttributeName": "trackName", "AttributeType": "S"})
        r["GlobalSecondaryIndexes"].append({
            "IndexName": "trackName-index", "KeySchema": [{"AttributeName": "trackName", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}})
    changes = diff_table(expected("liked_songs", two), described("liked_songs", lambda t: t.pop("GlobalSecondaryIndexes")))
    assert [c.action for c in changes] == ["create-index", "create-index"]
    assert all(len(c.params["GlobalSecondaryIndexUpdates"]) == 1 for c in changes)


def test_gsi_with_conflicting_attribute_type_is_manual():
    def retype(t):
        t.pop("GlobalSecondaryIndexes")
        t["AttributeDefinitions"] = [dict(a, AttributeType="S") if a["AttributeName"] == "addedAt" else a
                                     for a in t["AttributeDefinitions"]]
    (change,) = diff_table(expected("liked_songs"), described("liked_songs", retype))
    assert (change.action, change.automatic) == ("create-index", False)
    assert "addedAt" in change.detail


def test_index_not_in_spec_is_reported_never_removed():
    def extra(t):
        t["GlobalSecondaryIndexes"].append({"IndexName": "old-index", "KeySchema": [
            {"AttributeName": "userId", "KeyType": "HASH"}], "Projection": {"ProjectionType": "KEYS_ONLY"},
            "IndexStatus": "ACTIVE"})
    (change,) = diff_table(expected("liked_songs"), described("liked_songs", extra))
    assert (change.action, change.automatic, change.operation) == ("unexpected-index", False, None)
    assert "old-index" in change.detail and "never deletes" in change.detail


def test_key_schema_mismatch_is_manual():
    live = described("action_history", lambda t: t.__setitem__("KeySchema", t["KeySchema"][:1]))
    (change,) = diff_table(expected("action_history"), live)
    assert (change.action, change.automatic) == ("replace-table", False)
    assert "created_at RANGE N" in change.detail


def test_key_attribute_type_mismatch_is_manual():
    live = described("action_history", lambda t: t.__setitem__(
        "AttributeDefinitions", [{"AttributeName": "id", "AttributeType": "S"},
                                 {"AttributeName": "created_at", "AttributeType": "S"}]))
    (change,) = diff_table(expected("action_history"), live)
    assert (change.action, change.automatic) == ("replace-table", False)
    assert "created_at RANGE S" in change.detail and "created_at RANGE N" in change.detail


def test_lsi_differences_are_manual():
    lsi = {"IndexName": "by-time", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"},
                                                 {"AttributeName": "created_at", "KeyType": "RANGE"}],
           "Projection": {"ProjectionType": "ALL"}}
    (change,) = diff_table(expected("action_history", lambda r: r.__setitem__("LocalSecondaryIndexes", [lsi])),
                           described("action_history"))
    assert (change.action, change.automatic) == ("replace-table", False)
    assert "by-time is missing" in change.detail
    (change,) = diff_table(expected("action_history"),
                           described("action_history", lambda t: t.__setitem__("LocalSecondaryIndexes", [lsi])))
    assert "by-time is not in the spec" in change.detail


def test_gsi_key_or_projection_mismatch_is_manual():
    def keys(t):
        t["GlobalSecondaryIndexes"][0]["KeySchema"] = t["GlobalSecondaryIndexes"][0]["KeySchema"][:1]
    (change,) = diff_table(expected("track"), described("track", keys))
    assert (change.action, change.automatic) == ("replace-index", False)
    def projection(t):
        t["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "ALL"}
    (change,) = diff_table(expected("track"), described("track", projection))
    assert (change.action, change.automatic) == ("replace-index", False)
    assert "projection is ALL, spec wants KEYS_ONLY" in change.detail


def test_throughput_drift_is_automatic():
    live = described("track", lambda t: t.__setitem__("ProvisionedThroughput", {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}))
    (change,) = diff_table(expected("track"), live)
    assert (change.action, change.automatic) == ("update-throughput", True)
    assert change.params == {"TableName": "track", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 1}}


def test_gsi_throughput_drift_is_automatic():
    def drift(t):
        t["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] = {"ReadCapacityUnits": 3, "WriteCapacityUnits": 1,
                                                                   "NumberOfDecreasesToday": 0}
    (change,) = diff_table(expected("track"), described("track", drift))
    assert (change.action, change.automatic) == ("update-index-throughput", True)
    assert change.params["GlobalSecondaryIndexUpdates"][0]["Update"]["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 1, "WriteCapacityUnits": 1}


def test_billing_mode_drift_to_provisioned_sets_every_index():
    def on_demand(t):
        t["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST"}
        t["ProvisionedThroughput"] = {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
    (change,) = diff_table(expected("track"), described("track", on_demand))
    assert (change.action, change.automatic) == ("update-billing", True)
    assert change.params["BillingMode"] == "PROVISIONED"
    assert change.params["GlobalSecondaryIndexUpdates"][0]["Update"]["IndexName"] == "status-id-index"


def test_billing_mode_drift_to_on_demand():
    def on_demand(r):
        r["BillingMode"] = "PAY_PER_REQUEST"
        r.pop("ProvisionedThroughput")
    (change,) = diff_table(expected("user", on_demand), described("user"))
    assert change.params == {"TableName": "user", "BillingMode": "PAY_PER_REQUEST"}


def test_on_demand_table_has_no_throughput_drift():
    def on_demand(r):
        r["BillingMode"] = "PAY_PER_REQUEST"
        r.pop("ProvisionedThroughput")
    assert diff_table(expected("user", on_demand), described("user", lambda t: t.update(
        BillingModeSummary={"BillingMode": "PAY_PER_REQUEST"},
        ProvisionedThroughput={"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}))) == []


def test_stream_enable_is_automatic_and_change_is_manual():
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    (change,) = diff_table(expected("user", lambda r: r.__setitem__("StreamSpecification", stream)), described("user"))
    assert (change.action, change.automatic, change.params["StreamSpecification"]) == ("update-stream", True, stream)
    live = described("user", lambda t: t.__setitem__("StreamSpecification", {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}))
    (change,) = diff_table(expected("user", lambda r: r.__setitem__("StreamSpecification", stream)), live)
    assert change.automatic is False
    (change,) = diff_table(expected("user"), live)
    assert change.automatic is False and "left on" in change.detail


def test_ttl_only_when_asked():
    assert diff_table(expected("user"), described("user")) == []
    (change,) = diff_table(expected("user", ttl_attribute="expiresAt"),
                           described("user", ttl={"TimeToLiveStatus": "DISABLED"}))
    assert (change.action, change.automatic) == ("enable-ttl", True)
    assert change.params["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "expiresAt"}
    assert diff_table(expected("user", ttl_attribute="expiresAt"), described(
        "user", ttl={"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"})) == []
    (change,) = diff_table(expected("user", ttl_attribute="expiresAt"), described(
        "user", ttl={"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}))
    assert (change.action, change.automatic) == ("update-ttl", False)


def test_pitr_only_when_asked():
    (change,) = diff_table(expected("user", point_in_time_recovery=True),
                           described("user", pitr={"PointInTimeRecoveryStatus": "DISABLED"}))
    assert (change.action, change.operation) == ("enable-pitr", "UpdateContinuousBackups")
    assert diff_table(expected("user", point_in_time_recovery=True),
                      described("user", pitr={"PointInTimeRecoveryStatus": "ENABLED"})) == []


def test_new_table_gets_its_ttl_and_pitr_after_creation():
    changes = diff_tables([expected("user", ttl_attribute="expiresAt", point_in_time_recovery=True)], {})
    assert [c.action for c in changes] == ["create-table", "enable-ttl", "enable-pitr"]


def test_environment_names_are_used_for_tables_not_indexes():
    table = ExpectedTable(TableSpec("liked_songs.json", load_spec("liked_songs")).for_environment("dev-", "-x"))
    (change,) = diff_tables([table], {})
    assert change.table == "dev-liked_songs-x" and change.params["TableName"] == "dev-liked_songs-x"
    assert change.params["GlobalSecondaryIndexes"][0]["IndexName"] == "userId-addedAt-index"


def test_no_automatic_change_ever_deletes():
    """Whatever the drift, the automatic requests hold no Delete and no key schema rewrite."""
    def everything(t):
        t["KeySchema"] = t["KeySchema"][:1]
        t["GlobalSecondaryIndexes"].append({"IndexName": "x-index", "KeySchema": [
            {"AttributeName": "userId", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}})
        t["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST"}
    changes = diff_table(expected("liked_songs"), described("liked_songs", everything))
    for change in changes:
        if change.automatic:
            assert "Delete" not in str(change.params) and "KeySchema" not in change.params


def test_key_attribute_missing_from_live_definitions_is_not_a_mismatch():
    """moto drops definitions after UpdateTable; real DynamoDB never omits a key attribute."""
    live = described("track", lambda t: t.__setitem__("AttributeDefinitions", []))
    assert diff_table(expected("track"), live) == []
