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


def test_a_configuration_update_reaches_the_next_invocation_on_the_local_stack(endpoint, tmp_path):
    """As on Lambda after UpdateFunctionConfiguration (a migration's switch): the next request
    runs in a new execution environment, imported afresh with the function's new variables —
    the usual module-level `TABLE = os.environ[...]` included — and with only those variables."""
    import urllib.request

    from checker.local.app_server import AppServer
    from checker.local.apps import load_app
    deploy_function(endpoint, "us-east-1", "follows", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]},
                    {"SONGS_TABLE": "songs"}, function_url=False)
    (tmp_path / "follows_app.py").write_text(
        "import os\nTABLE = os.environ['SONGS_TABLE']\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'body': TABLE + ' ' + os.environ.get('PYTEST_CURRENT_TEST', 'alone')}\n")
    app = load_app("follows_app:handler", tmp_path, {"SONGS_TABLE": "songs"})
    with AppServer({"SONGS_TABLE": "songs"}, dynamodb_endpoint=endpoint, app=app) as server:
        server.follow("follows")
        assert urllib.request.urlopen(server.url).read() == b"songs alone"   # checker's own variables not there
        boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1").update_function_configuration(
            FunctionName="follows", Environment={"Variables": {"SONGS_TABLE": "songs_v2"}})
        assert urllib.request.urlopen(server.url).read() == b"songs_v2 alone"


class StandIn:
    """A stand-in of the real TS app behind its gateways, on 127.0.0.1: `?action=liked-songs-stats`
    under /dev/spotify-playlist-dev (the REST API) and /liked-songs-stats (the Function URL)
    answer the stats while both cache tables exist; without them it logs what the real app logs
    (`ERROR Invoke Error {"errorType":"ResourceNotFoundException",...}`) and answers API
    Gateway's 502. Every call also logs the benign `ERROR No tracks to be added`."""

    def __init__(self, endpoint: str, region: str = "us-east-1"):
        import http.server
        import threading
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
        self.logs = boto3.client("logs", endpoint_url=endpoint, region_name=region)
        self.group, self.stream, self.asked = "/aws/lambda/spotify-playlist-dev", "2026/12/07/[$LATEST]stand-in", []
        self.incidents = 0          # the incident's ERROR lines it logged
        if not self.logs.describe_log_groups(logGroupNamePrefix=self.group)["logGroups"]:
            self.logs.create_log_group(logGroupName=self.group)
        self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                stand_in.asked.append(self.path)
                status, body = stand_in.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def log(self, message: str) -> None:
        import time
        self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                 logEvents=[{"timestamp": int(time.time() * 1000), "message": message}])

    def answer(self, path: str) -> tuple:
        self.log("2026-12-07T02:00:00.000Z\tb1e\tERROR\tNo tracks to be added")
        if path not in ("/dev/spotify-playlist-dev?action=liked-songs-stats", "/liked-songs-stats"):
            return 404, {"message": "Missing Authentication Token"}
        tables = self.dynamodb.list_tables()["TableNames"]
        if "liked_songs" not in tables or "liked_songs_metadata" not in tables:
            self.incidents += 1
            self.log('2026-12-07T02:00:00.100Z\tb1e\tERROR\tInvoke Error \t{"errorType":"ResourceNotFoundException",'
                     '"errorMessage":"Requested resource not found"}')
            return 502, {"message": "Internal server error"}
        return 200, {"metadata": {"count": 0}, "sampleTracks": [], "cacheAge": 0}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_shipped_example_checks_a_stand_in_through_the_incident(cli, endpoint, ts_app):
    """examples/spotify-playlist-ts, unchanged, pointed at a stand-in with --base-url: healthy,
    smoke passes; the incident (both cache tables gone), smoke fails naming the two tables, the
    logs check counts the incident's line (not the benign one), and no other cause is named."""
    app, _, _ = ts_app
    options = ["--checklist", str(app / "checklist.yaml"), "--endpoint-url", endpoint]
    assert cli("apply", *options, "--yes").exit_code == 0
    stand_in = StandIn(endpoint)
    try:
        args = ["smoke", *options, "--base-url", stand_in.url, "--since", "5m"]
        result, report = cli.json(*args)
        assert result.exit_code == 0, [r for r in report["results"] if r["status"] != "pass"]
        assert sorted(set(stand_in.asked)) == ["/dev/spotify-playlist-dev?action=liked-songs-stats", "/liked-songs-stats"]
        found = {r["id"]: r for r in report["results"]}
        assert f"GET {stand_in.url}/dev/spotify-playlist-dev?action=liked-songs-stats" in \
            found["endpoint:liked-songs-stats"]["summary"]       # the output says which URL was asked

        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        for table in ("liked_songs", "liked_songs_metadata"):      # the incident: what checker never does
            dynamodb.delete_table(TableName=table)
        result, report = cli.json(*args)
    finally:
        stand_in.close()
    assert result.exit_code == 1
    found = {r["id"]: r for r in report["results"]}
    assert {k for k, r in found.items() if r["status"] == "fail"} == {
        "table:liked_songs", "table:liked_songs_metadata", "endpoint:liked-songs-stats", "endpoint:liked-songs-stats-url",
        'logs:ERROR -"No tracks to be added"'}, {k: r["status"] for k, r in found.items()}
    for name in ("liked-songs-stats", "liked-songs-stats-url"):
        causes = [d for d in found[f"endpoint:{name}"]["details"] if d.startswith("probably because")]
        assert causes == ["probably because table liked_songs does not exist; table liked_songs_metadata does not "
                          "exist"], found[f"endpoint:{name}"]
    logs = found['logs:ERROR -"No tracks to be added"']
    assert stand_in.incidents and logs["found"].startswith(f"{stand_in.incidents} event(s)"), logs   # each, none else
    assert "ResourceNotFoundException" in " ".join(logs["details"]) and "No tracks" not in " ".join(logs["details"])
