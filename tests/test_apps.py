"""checker for apps that are not ours: a queue-triggered order processor (on-demand tables, a GSI,
no HTTP entry point, no Spotify) and the real TypeScript spotify-playlist as it is deployed, each
driven through the CLI as its team would run it, against moto's server."""
from __future__ import annotations

import json
import shutil

import boto3
import pytest
import yaml

from checker.checklist import build_checklist
from checker.local.deploy import allow_api_gateway, deploy_function, role_policy
from checker.model import ExpectedTable, TableSpec

from .conftest import ROOT, reset_moto

APPS = ROOT / "tests" / "apps"
TS = ROOT / "examples" / "spotify-playlist-ts"


def copy_app(source, tmp_path):
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


def exact_policy(app, prefix, region):
    document = yaml.safe_load((app / "checklist.yaml").read_text())
    specs_dir = app / document.get("specs", "table_specs")
    tables = [ExpectedTable(TableSpec(p.name, json.loads(p.read_text())).for_environment(prefix), spec_name=p.stem)
              for p in specs_dir.glob("*.json")]
    return role_policy(tables, build_checklist(document, "checklist.yaml").permissions, region)


def statuses(report):
    return {r["id"]: r["status"] for r in report["results"]}


def test_a_queue_triggered_app_with_on_demand_tables(cli, tmp_path, endpoint):
    app = copy_app(APPS / "orders", tmp_path)
    options = ["--checklist", str(app / "checklist.yaml"), "--endpoint-url", endpoint]
    assert cli("validate", "--checklist", str(app / "checklist.yaml")).exit_code == 0
    plan = cli("plan", *options, "--detailed-exitcode")
    assert plan.exit_code == 2 and "shop-dev-orders" in plan.stdout and "shop-dev-customers" in plan.stdout
    # the suggested command points where this one did: the checklist named, the endpoint given
    assert f"`checker apply --checklist {app / 'checklist.yaml'} --env dev --endpoint-url {endpoint}`" in plan.stdout
    assert cli("apply", *options, "--yes").exit_code == 0
    region = "eu-west-1"
    tables = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region).list_tables()["TableNames"]
    assert sorted(tables) == ["shop-dev-customers", "shop-dev-orders"]
    deploy_function(endpoint, region, "shop-dev-orders", exact_policy(app, "shop-dev-", region),
                    {"ORDERS_TABLE": "shop-dev-orders", "CUSTOMERS_TABLE": "shop-dev-customers"}, function_url=False)
    result, report = cli.json("check", *options)
    assert result.exit_code == 0, report
    assert statuses(report) == {
        "table:customers": "pass", "table:orders": "pass", "lambda:function": "pass",
        "lambda:env:ORDERS_TABLE": "pass", "lambda:env:CUSTOMERS_TABLE": "pass", "bindings:ORDERS_TABLE": "pass",
        "bindings:CUSTOMERS_TABLE": "pass", "entry_point": "skip", "iam:orders@external": "pass",
        "iam:orders/index/by-customer@external": "pass", "iam:customers@external": "pass",
        "iam:broad-grants": "pass", "items": "skip", "endpoints": "skip", "logs:ERROR": "warn",
            "migrations": "skip"}
    result, report = cli.json("smoke", *options)
    assert result.exit_code == 0, report
    assert statuses(report) == {"table:customers": "pass", "table:orders": "pass", "endpoints": "skip",
                                "logs:ERROR": "warn"}


def rest_api_in_front_of(endpoint, region, function_arn):
    """The TS app's REST API: stage dev, resource /spotify-playlist-dev, a Lambda proxy integration."""
    gateway = boto3.client("apigateway", endpoint_url=endpoint, region_name=region)
    api = gateway.create_rest_api(name="spotify-playlist")
    root = next(r for r in gateway.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
    resource = gateway.create_resource(restApiId=api["id"], parentId=root["id"], pathPart="spotify-playlist-dev")
    gateway.put_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="GET", authorizationType="NONE")
    gateway.put_integration(restApiId=api["id"], resourceId=resource["id"], httpMethod="GET", type="AWS_PROXY",
                            integrationHttpMethod="POST",
                            uri=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
    gateway.create_deployment(restApiId=api["id"], stageName="dev")
    return api["id"]


@pytest.fixture
def ts_app(tmp_path, endpoint):
    app = copy_app(TS, tmp_path)
    region = "us-east-1"
    role = deploy_function(endpoint, region, "spotify-playlist-dev", exact_policy(app, "", region),
                           {"SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "s3cr3t-PLANTED", "NODE_ENV": "production"},
                           handler="dist/index.handler", runtime="nodejs20.x")
    arn = boto3.client("lambda", endpoint_url=endpoint, region_name=region).get_function(
        FunctionName="spotify-playlist-dev")["Configuration"]["FunctionArn"]
    api_id = rest_api_in_front_of(endpoint, region, arn)
    allow_api_gateway(endpoint, region, "spotify-playlist-dev", api_id)
    yield app, api_id, role
    reset_moto(endpoint)


def test_the_typescript_app_as_deployed(cli, endpoint, ts_app):
    app, api_id, _ = ts_app
    options = ["--checklist", str(app / "checklist.yaml"), "--endpoint-url", endpoint]
    assert cli("apply", *options, "--yes").exit_code == 0
    boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1").put_item(
        TableName="user", Item={"id": {"S": "koalemos"}, "spotifyAuth": {"M": {"refreshToken": {"S": "r-PLANTED"}}}})
    kinds = "tables,lambda,entry_point,iam,items"
    result, report = cli.json("check", *options, "--only", kinds)
    assert result.exit_code == 0, [r for r in report["results"] if r["status"] != "pass"]
    entry = next(r for r in report["results"] if r["id"] == "entry_point")
    # against an emulator's endpoint, the invoke URL is LocalStack's form (the AWS host does not resolve there)
    assert f"rest api {api_id} {endpoint}/restapis/{api_id}/dev/_user_request_/spotify-playlist-dev" in entry["found"]
    assert "r-PLANTED" not in result.stdout and "s3cr3t-PLANTED" not in result.stdout

    # NODE_ENV=development would point DynamoDB at localhost: named, the value never shown
    boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1").update_function_configuration(
        FunctionName="spotify-playlist-dev", Environment={"Variables": {
            "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "s3cr3t-PLANTED", "NODE_ENV": "development"}})
    result, report = cli.json("check", *options, "--only", "lambda")
    assert result.exit_code == 1 and statuses(report)["lambda:env-rule:NODE_ENV"] == "fail"
    assert "development" not in result.stdout.replace("not one of dev, development", "")


def test_a_configuration_update_reaches_the_next_invocation_on_the_local_stack(endpoint):
    """As on Lambda after UpdateFunctionConfiguration (a migration's switch): the next request
    runs with the function's new variables."""
    import os
    import urllib.request

    from checker.local.app_server import AppServer
    from checker.local.apps import HandlerApp
    deploy_function(endpoint, "us-east-1", "follows", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]},
                    {"SONGS_TABLE": "songs"}, function_url=False)

    def handler(event, context):
        return {"statusCode": 200, "body": os.environ["SONGS_TABLE"]}
    with AppServer({"SONGS_TABLE": "songs"}, dynamodb_endpoint=endpoint, app=HandlerApp("h", handler)) as server:
        server.follow("follows")
        assert urllib.request.urlopen(server.url).read() == b"songs"
        boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1").update_function_configuration(
            FunctionName="follows", Environment={"Variables": {"SONGS_TABLE": "songs_v2"}})
        assert urllib.request.urlopen(server.url).read() == b"songs_v2"
