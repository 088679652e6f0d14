"""`checker export`: apply -> export -> validate -> plan "In sync", on a moto server."""
from __future__ import annotations

import json

import boto3

from .conftest import REGION, load_spec


def test_export_round_trip(cli, project, endpoint):
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    client.update_continuous_backups(TableName="user", PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})
    client.update_time_to_live(TableName="action_history", TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expiresAt"})
    arn = client.describe_table(TableName="track")["Table"]["TableArn"]
    client.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "music"}])
    result = cli("export", "--specs", "adopted", "--endpoint-url", endpoint)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (project / "adopted").glob("*.json"))
    assert files == ["action_history.json", "liked_songs.json", "liked_songs_metadata.json", "track.json", "user.json"]
    assert "tables:\n  action_history:\n    ttl_attribute: expiresAt\n  user:\n    point_in_time_recovery: true" \
        in result.stdout
    track = json.loads((project / "adopted" / "track.json").read_text())
    assert track["Tags"] == [{"Key": "team", "Value": "music"}]
    assert track["GlobalSecondaryIndexes"][0]["IndexName"] == "status-id-index"
    assert cli("validate", "--specs", "adopted").exit_code == 0
    plan = cli("plan", "--specs", "adopted", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert plan.exit_code == 0 and plan.stdout.startswith("In sync: 5 table(s)")


def test_export_removes_the_environment_suffix_and_picks_tables(cli, project, endpoint):
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    spec = load_spec("liked_songs")
    client.create_table(**{**{k: v for k, v in spec.items() if k not in ("ProvisionedThroughput",)},
                           "TableName": "liked_songs-prod", "BillingMode": "PAY_PER_REQUEST",
                           "GlobalSecondaryIndexes": [{k: v for k, v in i.items() if k != "ProvisionedThroughput"}
                                                      for i in spec["GlobalSecondaryIndexes"]]})
    client.create_table(**dict(load_spec("user"), TableName="user-other"))
    result = cli("export", "--specs", "out", "--endpoint-url", endpoint, "--table-suffix", "-prod")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (project / "out").glob("*.json")] == ["liked_songs.json"]
    exported = json.loads((project / "out" / "liked_songs.json").read_text())
    assert exported["TableName"] == "liked_songs" and exported["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in exported  # on-demand: no 0/0 throughput
    assert all("ProvisionedThroughput" not in i for i in exported["GlobalSecondaryIndexes"])
    refused = cli("export", "--specs", "out", "--endpoint-url", endpoint, "--table", "liked_songs-prod",
                  "--table-suffix", "-prod")
    assert refused.exit_code == 1 and "exists; pass --force" in refused.stderr
    assert cli("export", "--specs", "out", "--endpoint-url", endpoint, "--table", "liked_songs-prod",
               "--table-suffix", "-prod", "--force").exit_code == 0
    plan = cli("plan", "--specs", "out", "--endpoint-url", endpoint, "--table-suffix", "-prod", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output


def test_export_of_nothing_is_a_clear_error(cli, endpoint):
    result = cli("export", "--specs", "out", "--endpoint-url", endpoint)
    assert result.exit_code == 1 and "no table to export" in result.stderr
    result = cli("export", "--specs", "out", "--endpoint-url", endpoint, "--table", "nope")
    assert result.exit_code == 1 and "--table nope: no such table" in result.stderr


def test_export_into_something_that_is_not_a_directory(cli, project, endpoint):
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    (project / "a-file").write_text("x")
    result = cli("export", "--specs", "a-file", "--endpoint-url", endpoint)
    assert result.exit_code == 1 and "a-file" in result.stderr and "Traceback" not in result.output


def test_export_on_an_endpoint_without_the_pitr_api_says_so_and_writes_only_after_reading(cli, project, endpoint):
    from checker.local.dynamo_proxy import DynamoProxy
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("DescribeTimeToLive", "AccessDeniedException", "not authorized")
        denied = cli("export", "--specs", "denied", "--endpoint-url", proxy.url)
        del proxy.faults["DescribeTimeToLive"]
        proxy.fail("DescribeContinuousBackups", "UnknownOperationException", "")
        result = cli("export", "--specs", "adopted", "--endpoint-url", proxy.url)
    assert denied.exit_code == 1 and "access denied for dynamodb:DescribeTimeToLive" in denied.stderr
    assert not (project / "denied").exists() or not list((project / "denied").iterdir())  # nothing half-written
    assert result.exit_code == 0, result.output
    assert len(list((project / "adopted").glob("*.json"))) == 5
    assert "# user: PITR could not be read (this endpoint does not implement DescribeContinuousBackups)" \
        in result.stdout
    assert "point_in_time_recovery" not in result.stdout  # never guessed either way


def test_export_takes_the_retry_options_of_every_aws_command(cli, endpoint):
    from checker.local.dynamo_proxy import DynamoProxy
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("ListTables", "ThrottlingException", "Rate exceeded")
        result = cli("export", "--specs", "out", "--endpoint-url", proxy.url, "--max-attempts", "2",
                     "--retry-mode", "standard")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: throttled by AWS on ListTables after 2 attempts"), result.stderr
    assert [operation for operation, _ in proxy.calls] == ["ListTables", "ListTables"]


def test_export_writes_no_defaults_and_no_aws_managed_key_arn(cli, project, endpoint):
    """A spec another account can use: an AWS managed key is `SSEType: KMS` without this account's
    ARN, and deletion protection off (the default) is not written at all."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
    customer = kms.create_key()["KeyMetadata"]["Arn"]
    spec = load_spec("user")
    dynamodb.create_table(**spec, SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": customer})
    dynamodb.create_table(**dict(load_spec("track")), DeletionProtectionEnabled=False)
    result = cli("export", "--specs", "out", "--endpoint-url", endpoint, "--table", "user", "--table", "track")
    assert result.exit_code == 0, result.output
    user = json.loads((project / "out" / "user.json").read_text())
    track = json.loads((project / "out" / "track.json").read_text())
    assert user["SSESpecification"]["KMSMasterKeyId"] == customer      # a customer key is the user's choice
    assert "DeletionProtectionEnabled" not in track


def test_an_aws_managed_key_is_written_without_its_arn():
    from checker.export import spec_from_table
    arn = "arn:aws:kms:us-east-1:123456789012:key/aws-managed"
    table = {"TableName": "user", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
             "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
             "SSEDescription": {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": arn}}
    assert spec_from_table(table, "user", aws_managed_keys={arn})["SSESpecification"] == {"Enabled": True, "SSEType": "KMS"}
    assert spec_from_table(table, "user")["SSESpecification"]["KMSMasterKeyId"] == arn


def test_export_acts_on_the_default_env_and_leaves_another_environments_tables_out(cli, project, endpoint):
    """The checklist's default_env (dev, no suffix) is where export acts, as every AWS command:
    prod's `-prod` tables are listed, not written as specs named `liked_songs-prod`; --env prod
    exports them with the suffix removed; --all takes both."""
    (project / "checklist.yaml").write_text("version: 1\ndefault_env: dev\n"
                                            "environments: {dev: {}, prod: {table_suffix: '-prod'}}\n")
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    assert cli("apply", "--endpoint-url", endpoint, "--yes", "--env", "prod").exit_code == 0
    dev = cli("export", "--specs", "dev", "--endpoint-url", endpoint)
    assert dev.exit_code == 0, dev.output
    assert sorted(p.name for p in (project / "dev").glob("*.json")) == [
        "action_history.json", "liked_songs.json", "liked_songs_metadata.json", "track.json", "user.json"]
    assert "left out 5 table(s) of environment prod" in dev.stderr and "--env prod" in dev.stderr
    prod = cli("export", "--specs", "prod", "--endpoint-url", endpoint, "--env", "prod")
    assert prod.exit_code == 0 and len(list((project / "prod").glob("*.json"))) == 5, prod.output
    assert json.loads((project / "prod" / "user.json").read_text())["TableName"] == "user"
    every = cli("export", "--specs", "every", "--endpoint-url", endpoint, "--all")
    assert every.exit_code == 0 and len(list((project / "every").glob("*.json"))) == 10, every.output


def test_a_name_that_is_not_a_table_name_is_never_a_path_nor_raw_on_the_terminal(cli, project, endpoint):
    for name in ("../outside", "esc\x1b[2J"):
        result = cli("export", "--specs", "out", "--endpoint-url", endpoint, "--table", name)
        assert result.exit_code == 1 and "not a DynamoDB table name" in result.stderr, result.output
        assert "\x1b" not in result.output and "Traceback" not in result.output
    assert not (project / "out").exists() and not (project / "outside.json").exists()
