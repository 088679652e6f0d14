"""The pure diff: specs and live descriptions in, changes out. No AWS here at all."""
from __future__ import annotations

import copy

from checker.diff import diff_table, diff_tables
from checker.model import NOT_COMPARED, ExpectedTable, LiveTable, TableSpec

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
    assert (change.action, change.automatic, change.operation) == ("retiring-index", False, None)
    assert "old-index" in change.detail and "never deletes" in change.detail
    assert not change.pending          # a note for a person, not a change apply fails on forever
    assert '"Delete":{"IndexName":"old-index"}' in change.detail   # the manual drop, named


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
    keys_only = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    live = described("user", lambda t: t.__setitem__("StreamSpecification", keys_only))
    (change,) = diff_table(expected("user", lambda r: r.__setitem__("StreamSpecification", stream)), live)
    assert change.automatic is False
    assert diff_table(expected("user"), live) == []  # a spec without a stream does not care
    off = {"StreamEnabled": False}
    (change,) = diff_table(expected("user", lambda r: r.__setitem__("StreamSpecification", off)), live)
    assert change.automatic is False and "never turns a stream off" in change.detail


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


def test_ttl_or_pitr_an_endpoint_cannot_read_is_named_not_compared_never_guessed():
    unreadable = {"TTL": "this endpoint does not implement DescribeTimeToLive",
                  "PITR": "this endpoint does not implement DescribeContinuousBackups"}
    changes = diff_table(expected("user", ttl_attribute="expiresAt", point_in_time_recovery=True),
                         described("user", unreadable=unreadable))
    assert [(c.action, c.target, c.pending) for c in changes] == [
        (NOT_COMPARED, "TTL", False), (NOT_COMPARED, "PITR", False)]
    assert "DescribeContinuousBackups" in changes[1].detail and "by hand" in changes[1].detail


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


def with_field(name, value):
    return lambda r: r.__setitem__(name, value)


def test_fields_the_spec_leaves_out_are_not_compared():
    live = described("user", lambda t: t.update(
        SSEDescription={"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": "arn:aws:kms:k"},
        TableClassSummary={"TableClass": "STANDARD_INFREQUENT_ACCESS"}, DeletionProtectionEnabled=True),
        tags={"team": "x"})
    assert diff_table(expected("user"), live) == []


def test_sse_table_class_and_deletion_protection_are_compared_and_updated_in_place():
    spec = expected("user", lambda r: r.update(SSESpecification={"Enabled": True}, TableClass="STANDARD_INFREQUENT_ACCESS",
                                                DeletionProtectionEnabled=True))
    changes = diff_table(spec, described("user"))
    assert [(c.action, c.automatic, c.operation) for c in changes] == [
        ("update-sse", True, "UpdateTable"), ("update-table-class", True, "UpdateTable"),
        ("enable-deletion-protection", True, "UpdateTable")]
    assert changes[0].params["SSESpecification"] == {"Enabled": True, "SSEType": "KMS"}
    assert changes[1].params == {"TableName": "user", "TableClass": "STANDARD_INFREQUENT_ACCESS"}
    in_sync = described("user", lambda t: t.update(
        SSEDescription={"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": "arn:aws:kms:k"},
        TableClassSummary={"TableClass": "STANDARD_INFREQUENT_ACCESS"}, DeletionProtectionEnabled=True))
    assert diff_table(spec, in_sync) == []


def test_turning_deletion_protection_off_is_never_automatic():
    (change,) = diff_table(expected("user", with_field("DeletionProtectionEnabled", False)),
                           described("user", lambda t: t.update(DeletionProtectionEnabled=True)))
    assert (change.action, change.automatic, change.operation) == ("disable-deletion-protection", False, None)


def test_tags_named_by_the_spec_are_added_or_corrected_others_left_alone():
    spec = expected("user", with_field("Tags", [{"Key": "team", "Value": "music"}, {"Key": "env", "Value": "dev"}]))
    live = described("user", lambda t: t.update(TableArn="arn:aws:dynamodb:r:1:table/user"),
                     tags={"team": "ops", "owner": "dana"})
    (change,) = diff_table(spec, live)
    assert (change.action, change.operation) == ("tag-table", "TagResource")
    assert change.params == {"ResourceArn": "arn:aws:dynamodb:r:1:table/user",
                             "Tags": [{"Key": "team", "Value": "music"}, {"Key": "env", "Value": "dev"}]}
    assert "team (is 'ops', spec wants 'music')" in change.detail and "env (missing)" in change.detail
    assert "owner" not in change.detail
    assert diff_table(spec, described("user", tags={"team": "music", "env": "dev", "owner": "dana"})) == []


def test_billing_switch_and_capacity_decreases_are_gated_increases_are_not():
    from checker.model import CAPACITY_GATE
    on_demand_live = described("liked_songs", lambda t: t.update(BillingModeSummary={"BillingMode": "PAY_PER_REQUEST"}))
    (switch,) = diff_table(expected("liked_songs"), on_demand_live)
    assert (switch.action, switch.automatic, switch.gate) == ("update-billing", True, CAPACITY_GATE)

    def throughput(rcu, wcu):
        return lambda t: t.update(ProvisionedThroughput={"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu})
    (lower,) = diff_table(expected("track"), described("track", throughput(10, 1)))   # spec: 5 / 1
    (higher,) = diff_table(expected("track"), described("track", throughput(2, 1)))
    assert (lower.gate, higher.gate) == (CAPACITY_GATE, "")

    def index_throughput(t):
        t["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] = {"ReadCapacityUnits": 3, "WriteCapacityUnits": 1}
    (index,) = diff_table(expected("track"), described("track", index_throughput))
    assert (index.action, index.gate, index.target) == ("update-index-throughput", CAPACITY_GATE, "status-id-index")


def test_a_stated_field_the_diff_cannot_compare_is_named():
    spec = expected("user", lambda r: r.update(ResourcePolicy="{}", SSESpecification={
        "Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": "alias/app"}))
    live = described("user", lambda t: t.update(SSEDescription={"Status": "ENABLED", "SSEType": "KMS",
                                                                 "KMSMasterKeyArn": "arn:aws:kms:k"}))
    changes = diff_table(spec, live)
    assert [(c.action, c.target, c.pending) for c in changes] == [
        ("not-compared", "ResourcePolicy", False),
        ("not-compared", "SSESpecification.KMSMasterKeyId (only a key ARN can be compared with DescribeTable's)", False)]
    assert "cannot compare" in changes[0].detail


def test_every_createtable_field_is_compared_or_named_as_not_compared():
    """The diff's list follows botocore's CreateTable model: a new field fails here until handled."""
    import botocore.session

    from checker.diff import COMPARED_FIELDS
    members = botocore.session.get_session().get_service_model("dynamodb").operation_model("CreateTable").input_shape.members
    for field_name in members:
        spec = expected("user", with_field(field_name, members[field_name].type_name == "boolean" or {}))
        if field_name in COMPARED_FIELDS:
            continue
        assert any(c.action == "not-compared" and c.target == field_name for c in diff_table(spec, described("user")))


def test_a_missing_gsi_on_a_table_whose_billing_differs_waits_for_the_switch():
    """On-demand live, provisioned in the spec: AWS refuses an index with throughput on an
    on-demand table, so the index is created after the switch, and is held with it."""
    def on_demand(t):
        t.pop("GlobalSecondaryIndexes")
        t["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST"}
        t["ProvisionedThroughput"] = {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
    changes = diff_table(expected("liked_songs"), described("liked_songs", on_demand))
    assert [(c.action, c.gate) for c in changes] == [("update-billing", "capacity"), ("create-index", "capacity")]
    assert changes[1].detail.endswith("(after the billing switch)")


def test_lowering_encryption_is_never_automatic():
    def customer_key(t):
        t["SSEDescription"] = {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": "arn:aws:kms:us-east-1:1:key/k"}
    spec = expected("user", lambda r: r.update(SSESpecification={"Enabled": False}))
    (change,) = diff_table(spec, described("user", customer_key))
    assert (change.action, change.automatic, change.operation) == ("update-sse", False, None)
    assert "never lowers protection" in change.detail
