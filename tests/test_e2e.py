"""End to end: the real CLI against moto's server over HTTP on 127.0.0.1."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3

from .conftest import REGION, load_spec


def dynamodb(endpoint):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)


def test_empty_account_to_in_sync_and_a_gsi_added_by_hand(cli, endpoint):
    result, plan = cli.json("plan", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert result.exit_code == 2
    assert plan["in_sync"] is False
    assert sorted((c["table"], c["action"], c["automatic"]) for c in plan["changes"]) == [
        (name, "create-table", True) for name in
        ["action_history", "liked_songs", "liked_songs_metadata", "track", "user"]]
    assert set(plan["changes"][0]) == {"table", "action", "detail", "automatic", "gate", "owner"}

    result, applied = cli.json("apply", "--endpoint-url", endpoint, "--yes")
    assert result.exit_code == 0, result.output
    assert applied["applied"] == 5 and applied["ok"] and applied["active"]

    result, plan = cli.json("plan", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert (result.exit_code, plan) == (0, {"changes": [], "in_sync": True, "tables": 5, "not_compared": [],
                                        "not_ready": [], "retiring": []})
    result, again = cli.json("apply", "--endpoint-url", endpoint, "--yes")
    assert (result.exit_code, again["changes"], again["ok"]) == (0, [], True)
    described = dynamodb(endpoint).describe_table(TableName="liked_songs")["Table"]
    assert described["GlobalSecondaryIndexes"][0]["IndexName"] == "userId-addedAt-index"

    # Someone recreates liked_songs by hand, without its index.
    client = dynamodb(endpoint)
    client.delete_table(TableName="liked_songs")
    spec = load_spec("liked_songs")
    client.create_table(TableName="liked_songs", KeySchema=spec["KeySchema"],
                        AttributeDefinitions=spec["AttributeDefinitions"][:2],
                        ProvisionedThroughput=spec["ProvisionedThroughput"])
    client.put_item(TableName="liked_songs", Item={"userId": {"S": "u1"}, "trackId": {"S": "t1"},
                                                    "addedAt": {"N": "1"}})
    result, plan = cli.json("plan", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert result.exit_code == 2
    assert [(c["table"], c["action"]) for c in plan["changes"]] == [("liked_songs", "create-index")]
    assert "userId-addedAt-index" in plan["changes"][0]["detail"]

    result = cli("apply", "--endpoint-url", endpoint, "--yes")
    assert result.exit_code == 0, result.output
    assert "liked_songs: create-index" in result.stderr
    result = cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert result.exit_code == 0 and "In sync: 5 table(s)" in result.stdout
    # The item written before the index was added is still there: nothing was recreated.
    assert client.get_item(TableName="liked_songs", Key={"userId": {"S": "u1"}, "trackId": {"S": "t1"}})["Item"]


def test_apply_is_idempotent_and_never_deletes(cli, endpoint):
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    client = dynamodb(endpoint)
    client.update_table(TableName="track", AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
                        GlobalSecondaryIndexUpdates=[{"Create": {
                            "IndexName": "name-index", "KeySchema": [{"AttributeName": "name", "KeyType": "HASH"}],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}}])
    result, applied = cli.json("apply", "--endpoint-url", endpoint, "--yes")
    # an index the spec does not have is retiring: named with its manual drop, never dropped, and
    # no failure of apply (a changed GSI is a new name in the spec; the old one stays until a person drops it)
    assert result.exit_code == 0 and applied["changes"] == []
    planned, plan = cli.json("plan", "--endpoint-url", endpoint)
    assert [c["action"] for c in plan["retiring"]] == ["retiring-index"] and "name-index" in plan["retiring"][0]["detail"]
    checked, report = cli.json("check", "--endpoint-url", endpoint, "--only", "tables")
    track = next(r for r in report["results"] if r["id"] == "table:track")
    assert checked.exit_code == 0 and track["status"] == "warn" and "retiring" in track["summary"]
    names = [i["IndexName"] for i in client.describe_table(TableName="track")["Table"]["GlobalSecondaryIndexes"]]
    assert sorted(names) == ["name-index", "status-id-index"]
    assert sorted(client.list_tables()["TableNames"]) == sorted(
        ["action_history", "liked_songs", "liked_songs_metadata", "track", "user"])


def test_plan_never_writes(cli, endpoint):
    cli("plan", "--endpoint-url", endpoint)
    assert dynamodb(endpoint).list_tables()["TableNames"] == []


def test_apply_asks_on_a_terminal_and_refuses_without_one(cli, endpoint, monkeypatch):
    result = cli("apply", "--endpoint-url", endpoint)
    assert result.exit_code == 1
    assert "stdin is not a terminal; pass --yes" in result.stderr
    assert dynamodb(endpoint).list_tables()["TableNames"] == []

    monkeypatch.setattr("checker.cli.output.stdin_is_terminal", lambda: True)
    result = cli("apply", "--endpoint-url", endpoint, input="n\n")
    assert result.exit_code == 1 and "cancelled; nothing was changed" in result.stderr
    # the prompt names what it will change and where: the tables, the account, the region
    assert ("Apply 5 change(s) to action_history, liked_songs, liked_songs_metadata, track, user in account "
            "123456789012, region us-east-1?") in result.stderr
    assert dynamodb(endpoint).list_tables()["TableNames"] == []
    result = cli("apply", "--endpoint-url", endpoint, input="y\n")
    assert result.exit_code == 0
    assert len(dynamodb(endpoint).list_tables()["TableNames"]) == 5


def test_table_prefix_and_suffix(cli, endpoint):
    assert cli("apply", "--endpoint-url", endpoint, "--yes", "--table-prefix", "stage-",
               "--table-suffix", "-v2").exit_code == 0
    assert "stage-liked_songs-v2" in dynamodb(endpoint).list_tables()["TableNames"]
    assert cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode", "--table-prefix", "stage-",
               "--table-suffix", "-v2").exit_code == 0
    assert cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode").exit_code == 2


def test_env_from_checklist_gives_suffix_and_ttl_and_pitr(cli, project, endpoint):
    (project / "checklist.yaml").write_text(
        "version: 1\nenvironments:\n  prod:\n    region: eu-west-1\n    table_suffix: -prod\n"
        "tables:\n  user:\n    point_in_time_recovery: true\n  action_history:\n    ttl_attribute: expiresAt\n")
    result, plan = cli.json("plan", "--endpoint-url", endpoint, "--env", "prod")
    assert ("user-prod", "enable-pitr") in [(c["table"], c["action"]) for c in plan["changes"]]
    assert ("action_history-prod", "enable-ttl") in [(c["table"], c["action"]) for c in plan["changes"]]
    assert cli("apply", "--endpoint-url", endpoint, "--env", "prod", "--yes").exit_code == 0
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-1")
    ttl = client.describe_time_to_live(TableName="action_history-prod")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    backups = client.describe_continuous_backups(TableName="user-prod")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert cli("plan", "--endpoint-url", endpoint, "--env", "prod", "--detailed-exitcode").exit_code == 0
    result = cli("plan", "--endpoint-url", endpoint, "--env", "staging")
    assert result.exit_code == 1
    assert "checklist.yaml: $.environments: no environment 'staging' (known: prod)" in result.stderr


def test_standard_endpoint_variable_is_honoured(cli, endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    assert cli("plan", "--detailed-exitcode").exit_code == 2


def test_the_installed_console_script(project, endpoint):
    env = dict(os.environ)
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "checker"), "plan",
                             "--endpoint-url", endpoint, "--format", "json", "--detailed-exitcode"],
                            cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert len(json.loads(result.stdout)["changes"]) == 5


def test_an_on_demand_production_table_is_not_switched_without_the_flag(cli, endpoint):
    """The reference app's prod liked_songs is on-demand: the shipped (provisioned) spec must not
    throttle it by surprise."""
    spec = load_spec("liked_songs")
    spec.pop("ProvisionedThroughput")
    for index in spec["GlobalSecondaryIndexes"]:
        index.pop("ProvisionedThroughput")
    dynamodb(endpoint).create_table(**dict(spec, BillingMode="PAY_PER_REQUEST"))
    plan = cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert plan.exit_code == 2
    line = next(line for line in plan.stdout.splitlines() if "update-billing" in line)
    assert line.endswith("[needs --allow-capacity-changes]")
    # the suggested command carries the options of this run, so it can be pasted as it is
    assert f"1 unlocked by `checker apply --endpoint-url {endpoint} --allow-capacity-changes`" in plan.stdout
    result, applied = cli.json("apply", "--endpoint-url", endpoint, "--yes")
    assert result.exit_code == 1
    held = [c for c in applied["changes"] if c["status"] == "held"]
    assert [c["action"] for c in held] == ["update-billing"] and applied["held"] == 1
    billing = dynamodb(endpoint).describe_table(TableName="liked_songs")["Table"]["BillingModeSummary"]
    assert billing["BillingMode"] == "PAY_PER_REQUEST"
    result = cli("apply", "--endpoint-url", endpoint, "--yes", "--allow-capacity-changes")
    assert result.exit_code == 0, result.output
    assert cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode").exit_code == 0


def test_plan_names_stated_fields_it_cannot_compare(cli, project, endpoint):
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    spec = load_spec("user")
    spec["WarmThroughput"] = {"ReadUnitsPerSecond": 12000}
    (project / "table_specs" / "user.json").write_text(json.dumps(spec))
    result = cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert result.exit_code == 0  # nothing to change, but not silently "in sync" either
    assert "Not compared (1)" in result.stdout
    assert "user  not-compared" in result.stdout and "WarmThroughput is stated in the spec" in result.stdout
    result, plan = cli.json("plan", "--endpoint-url", endpoint)
    assert [c["detail"].split(" ")[0] for c in plan["not_compared"]] == ["WarmThroughput"]
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "tables")
    user = next(r for r in report["results"] if r["id"] == "table:user")
    assert (user["status"], user["found"]) == ("warn", "not compared: WarmThroughput")


def test_a_gsi_is_never_sent_with_throughput_to_an_on_demand_table(cli, endpoint):
    """AWS refuses it (every emulator accepts it: the proxy plays AWS). Without the flag the index
    waits with the billing switch; with it, the switch goes first, then the index."""
    from checker.local.dynamo_proxy import DynamoProxy
    spec = load_spec("liked_songs")
    bare = {k: v for k, v in spec.items() if k not in ("GlobalSecondaryIndexes", "ProvisionedThroughput")}
    bare["AttributeDefinitions"] = [a for a in spec["AttributeDefinitions"] if a["AttributeName"] != "addedAt"]
    dynamodb(endpoint).create_table(**dict(bare, BillingMode="PAY_PER_REQUEST"))
    with DynamoProxy(endpoint) as proxy:
        proxy.aws_index_rules = True
        result, held = cli.json("apply", "--endpoint-url", proxy.url, "--yes")
        assert {c["action"]: c["status"] for c in held["changes"] if c["table"] == "liked_songs"} == {
            "update-billing": "held", "create-index": "held"}
        assert "UpdateTable" not in proxy.operations()
        result, applied = cli.json("apply", "--endpoint-url", proxy.url, "--yes", "--allow-capacity-changes")
    assert result.exit_code == 0, applied
    assert [c["action"] for c in applied["changes"] if c["table"] == "liked_songs"] == ["update-billing", "create-index"]
