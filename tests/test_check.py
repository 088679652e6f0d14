"""`checker check`, `smoke` and `bootstrap` end to end: moto's server for AWS, the real app behind
a local HTTP server for the endpoints, the fake Spotify behind the app."""
from __future__ import annotations

import json
import time
from xml.etree import ElementTree

import boto3
import pytest
import yaml

from checker.checklist import build_checklist
from checker.local.app_server import AppServer
from checker.local.deploy import allow_api_gateway, deploy_function, role_policy
from checker.model import ExpectedTable, TableSpec

from .conftest import REGION, ROOT, load_spec

FUNCTION = "spotify-playlist-dev"
ACCOUNT = "123456789012"
SECRET = "PLANTED-s3cr3t-9f2c4e"
ROLE = f"{FUNCTION}-role"


def client(endpoint, service):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def table_arn(table, index=None):
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def exact_policy(checklist_document, drop=None):
    """Exactly the grants the checklist asks for, optionally without one (action, table)."""
    permissions = build_checklist(dict(checklist_document), "checklist.yaml").permissions
    tables = [ExpectedTable(TableSpec(f"{n}.json", load_spec(n)), spec_name=n) for n in
              ["user", "action_history", "track", "liked_songs", "liked_songs_metadata"]]
    return role_policy(tables, permissions, REGION, leave_out=[drop] if drop else ())


@pytest.fixture
def checklist(project):
    """The repository's checklist.yaml in the test project; tests change it through `write`."""
    document = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    for endpoint in document["endpoints"]:
        endpoint.update(retries=1, retry_delay=0)

    class Checklist(dict):
        def write(self):
            (project / "checklist.yaml").write_text(yaml.safe_dump(dict(self)))
    checklist = Checklist(document)
    checklist.write()
    return checklist


BINDINGS = {"USER_TABLE": "user", "LIKED_SONGS_TABLE": "liked_songs", "LIKED_SONGS_METADATA_TABLE": "liked_songs_metadata"}


def deploy(endpoint, checklist, variables=None, policy=None, function_url=True):
    if variables is None:
        variables = {"DEFAULT_USER_ID": "dana", "SPOTIFY_CLIENT_ID": "client-id", "SPOTIFY_CLIENT_SECRET": SECRET,
                     **BINDINGS}
    return deploy_function(endpoint, REGION, FUNCTION, policy or exact_policy(checklist), variables, function_url)


@pytest.fixture
def app(endpoint, fake_spotify):
    fake_spotify.add_user("dana", 12)
    environ = {"DEFAULT_USER_ID": "dana", "SPOTIFY_API_BASE_URL": fake_spotify.api_base,
               "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url, "SPOTIFY_REFRESH_TOKEN": "refresh-dana",
               "SPOTIFY_CLIENT_ID": "client-id", "SPOTIFY_CLIENT_SECRET": SECRET, **BINDINGS}
    with AppServer(environ, dynamodb_endpoint=endpoint, log_group=f"/aws/lambda/{FUNCTION}") as server:
        yield server


@pytest.fixture
def healthy(cli, endpoint, checklist, app):
    """Everything the checklist asks for, in place."""
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    deploy(endpoint, checklist)
    return ["--endpoint-url", endpoint, "--env", "dev", "--base-url", app.url]


def by_id(results):
    return {r["id"]: r for r in results}


def test_everything_passes(cli, healthy):
    result, report = cli.json("check", *healthy)
    assert result.exit_code == 0, result.stdout
    statuses = {r["id"]: r["status"] for r in report["results"]}
    # no items: section, no migrations declared
    assert {i: s for i, s in statuses.items() if s != "pass"} == {"items": "skip", "migrations": "skip"}, statuses
    kinds = {r["kind"] for r in report["results"]}
    assert kinds == {"tables", "lambda", "bindings", "entry_point", "iam", "items", "endpoints", "logs", "migrations"}
    assert report["summary"] == {"total": len(statuses), "pass": len(statuses) - 2, "warn": 0, "fail": 0, "error": 0,
                                 "skip": 2, "ok": True}
    results = by_id(report["results"])
    assert "function url" in results["entry_point"]["found"]
    assert "(auth NONE)" in results["entry_point"]["found"]
    assert results["endpoint:liked-songs-stats"]["found"] == "HTTP 200, body matches the schema"
    assert "evaluated by checker" in results["iam:liked_songs"]["found"]


def test_env_var_values_never_appear_in_any_format(cli, endpoint, checklist, app):
    cli("apply", "--endpoint-url", endpoint, "--yes")
    deploy(endpoint, checklist, variables={"DEFAULT_USER_ID": SECRET, "SPOTIFY_CLIENT_SECRET": SECRET,
                                           "SPOTIFY_CLIENT_ID": ""})
    for output_format in ("text", "json", "junit"):
        result = cli("check", "--endpoint-url", endpoint, "--env", "dev", "--base-url", app.url,
                     "--format", output_format)
        assert result.exit_code == 1
        assert "SPOTIFY_CLIENT_ID" in result.stdout
        assert SECRET not in result.stdout and SECRET not in result.stderr


def test_environment_variable_missing_or_empty(cli, endpoint, checklist, app):
    cli("apply", "--endpoint-url", endpoint, "--yes")
    deploy(endpoint, checklist, variables={"DEFAULT_USER_ID": "dana", "SPOTIFY_CLIENT_ID": "  "})
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "lambda")
    results = by_id(report["results"])
    assert results["lambda:env:DEFAULT_USER_ID"]["status"] == "pass"
    assert (results["lambda:env:SPOTIFY_CLIENT_ID"]["status"], results["lambda:env:SPOTIFY_CLIENT_ID"]["found"]) == (
        "fail", "set but empty")
    assert results["lambda:env:SPOTIFY_CLIENT_SECRET"]["found"] == "not set"
    assert "update-function-configuration --function-name spotify-playlist-dev" in \
        results["lambda:env:SPOTIFY_CLIENT_SECRET"]["remediation"]
    assert result.exit_code == 1


def test_missing_function_fails_and_what_depends_on_it_is_an_error(cli, endpoint, checklist):
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev",
                              "--only", "lambda,bindings,entry_point,iam,logs")
    assert result.exit_code == 1
    assert [(r["id"], r["status"]) for r in report["results"]] == [
        ("lambda:function", "fail"), ("bindings:function", "error"), ("entry_point:function", "error"),
        ("iam:function", "error"), ("logs:ERROR", "error")]
    for kind in ("iam", "logs"):  # alone, a check that could not look still fails the run
        result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", kind)
        assert result.exit_code == 1 and report["results"][0]["summary"].startswith("not checked: function")


def test_missing_tables_fail_with_the_fix(cli, endpoint, checklist):
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "tables")
    assert result.exit_code == 1
    liked = by_id(report["results"])["table:liked_songs"]
    assert liked["status"] == "fail" and liked["summary"] == "table liked_songs does not exist"
    assert liked["remediation"].startswith("checker apply --env dev")


def test_table_differing_from_spec_fails(cli, endpoint, checklist):
    cli("apply", "--endpoint-url", endpoint, "--yes")
    client(endpoint, "dynamodb").update_table(TableName="track",
                                              ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 1})
    _, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "tables")
    track = by_id(report["results"])["table:track"]
    assert track["status"] == "fail" and "update-throughput" in track["found"]


def test_no_entry_point_fails_and_http_api_passes(cli, endpoint, checklist):
    deploy(endpoint, checklist, function_url=False)
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point")
    assert (result.exit_code, report["results"][0]["status"]) == (1, "fail")
    assert "create-function-url-config" in report["results"][0]["remediation"]
    arn = client(endpoint, "lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
    gateway = client(endpoint, "apigatewayv2")
    api = gateway.create_api(Name="spotify", ProtocolType="HTTP")
    gateway.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=arn,
                               PayloadFormatVersion="2.0")
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point")
    assert result.exit_code == 1  # integrated, but the function's policy does not let API Gateway call it
    assert "may not invoke" in report["results"][0]["summary"]
    assert any("does not let API Gateway invoke it" in d for d in report["results"][0]["details"])
    allow_api_gateway(endpoint, REGION, FUNCTION, api["ApiId"])
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point")
    assert result.exit_code == 0, report
    assert report["results"][0]["found"].startswith(f"http api {api['ApiId']}")
    checklist["entry_point"]["require"] = "function_url"
    checklist.write()
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point")
    assert result.exit_code == 1 and report["results"][0]["expected"].startswith("a Function URL,")


def test_an_api_with_several_stages_is_never_guessed_for_the_base_url(cli, endpoint, checklist):
    """Smoke-testing whichever stage came first could pass on prod while dev is broken."""
    deploy(endpoint, checklist, function_url=False)
    arn = client(endpoint, "lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
    gateway = client(endpoint, "apigatewayv2")
    api = gateway.create_api(Name="spotify", ProtocolType="HTTP")
    gateway.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=arn,
                               PayloadFormatVersion="2.0")
    gateway.create_stage(ApiId=api["ApiId"], StageName="prod")
    allow_api_gateway(endpoint, REGION, FUNCTION, api["ApiId"])
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point,endpoints")
    results = by_id(report["results"])
    assert results["entry_point"]["status"] == "pass" and results["entry_point"]["found"].endswith("/prod")
    gateway.create_stage(ApiId=api["ApiId"], StageName="dev")
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point,endpoints")
    results = by_id(report["results"])
    assert "(stages prod, dev)" in results["entry_point"]["found"]
    endpoint_results = [r for r in report["results"] if r["kind"] == "endpoints"]
    assert endpoint_results and all(r["status"] == "error" for r in endpoint_results)
    summary = endpoint_results[0]["summary"]
    assert "(stages prod, dev): checker cannot tell which stage" in summary and "set base_url" in summary
    assert result.exit_code == 1


def test_missing_permission_names_action_and_arn(cli, endpoint, checklist):
    deploy(endpoint, checklist, policy=exact_policy(checklist, drop=("dynamodb:UpdateItem", "liked_songs_metadata")))
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "iam")
    assert result.exit_code == 1
    failing = [r for r in report["results"] if r["status"] == "fail"]
    assert [r["id"] for r in failing] == ["iam:liked_songs_metadata"]
    assert f"dynamodb:UpdateItem on {table_arn('liked_songs_metadata')}" in failing[0]["found"]
    assert f"--role-name {ROLE}" in failing[0]["remediation"]
    assert '"Action":["dynamodb:UpdateItem"]' in failing[0]["remediation"]


def test_index_permission_is_checked_on_the_index_arn(cli, endpoint, checklist):
    policy = exact_policy(checklist)
    policy["Statement"] = [s for s in policy["Statement"] if "/index/userId-addedAt-index" not in s["Resource"]]
    deploy(endpoint, checklist, policy=policy)
    _, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "iam")
    failing = [r for r in report["results"] if r["status"] == "fail"]
    assert [r["id"] for r in failing] == ["iam:liked_songs/index/userId-addedAt-index"]
    assert table_arn("liked_songs", "userId-addedAt-index") in failing[0]["found"]


def test_over_broad_policy_is_warned_about(cli, endpoint, checklist):
    deploy(endpoint, checklist, policy={"Version": "2012-10-17", "Statement": [
        {"Sid": "Everything", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]})
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "iam")
    assert result.exit_code == 0  # a warning does not fail the run
    broad = by_id(report["results"])["iam:broad-grants"]
    assert broad["status"] == "warn"
    assert "Everything: Action dynamodb:*" in broad["found"] and 'Everything: Resource "*"' in broad["found"]


def test_explicit_deny_wins(cli, endpoint, checklist):
    policy = exact_policy(checklist)
    policy["Statement"].append({"Effect": "Deny", "Action": "dynamodb:Batch*", "Resource": "*"})
    deploy(endpoint, checklist, policy=policy)
    _, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "iam")
    failing = [r for r in report["results"] if r["status"] == "fail"]
    assert [r["id"] for r in failing] == ["iam:liked_songs"]
    assert "dynamodb:BatchWriteItem" in failing[0]["found"]


def put_log_events(endpoint, *messages_at):
    logs = client(endpoint, "logs")
    group = f"/aws/lambda/{FUNCTION}"
    try:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="2026/11/25/[$LATEST]abc")
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=group, logStreamName="2026/11/25/[$LATEST]abc",
                        logEvents=[{"timestamp": at, "message": m} for m, at in messages_at])


def test_log_check_counts_only_events_since_the_moment(cli, endpoint, checklist):
    deploy(endpoint, checklist)
    now = int(time.time() * 1000)
    put_log_events(endpoint, ("ERROR old failure before the deploy", now - 3_600_000),
                   ("INFO all good", now - 60_000),
                   *[(f'{{"level": "ERROR", "event": "request_failed", "n": {i}, "pad": "{"x" * 300}"}}', now - 60_000 + i)
                     for i in range(7)])
    args = ["--endpoint-url", endpoint, "--env", "dev", "--only", "logs"]
    result, report = cli.json("check", *args, "--since", "10m")
    (logs,) = report["results"]
    assert (result.exit_code, logs["status"], logs["found"]) == (1, "fail", f"7 event(s) in /aws/lambda/{FUNCTION}")
    assert len(logs["details"]) == 5 and all(len(d) <= 403 for d in logs["details"])
    assert "old failure" not in json.dumps(logs)
    result, report = cli.json("check", *args, "--since", str(now - 2 * 3_600_000))
    assert report["results"][0]["found"].startswith("8 event(s)")
    result, report = cli.json("check", *args)  # default: since the start of this run
    assert (result.exit_code, report["results"][0]["found"]) == (0, f"0 event(s) in /aws/lambda/{FUNCTION}")
    checklist["logs"]["threshold"] = 7
    checklist.write()
    assert cli("check", *args, "--since", "10m").exit_code == 0


def test_the_pattern_is_evaluated_by_checker_exclusions_included(cli, endpoint, checklist):
    """moto's FilterLogEvents ignores a -"..." exclusion and answers nothing: checker applies the
    whole pattern itself, so the incident's ERROR line counts and the benign one does not."""
    deploy(endpoint, checklist)
    now = int(time.time() * 1000)
    put_log_events(endpoint, ('2026-11-25T10:00:00Z ERROR Invoke Error {"errorType":"ResourceNotFoundException"}', now - 5000),
                   ("2026-11-25T10:00:01Z ERROR No tracks to be added", now - 4000),
                   ("2026-11-25T10:00:02Z INFO all good", now - 3000))
    checklist["logs"]["filter_pattern"] = 'ERROR -"No tracks to be added"'
    checklist.write()
    args = ["--endpoint-url", endpoint, "--env", "dev", "--only", "logs", "--since", "10m"]
    result, report = cli.json("check", *args)
    (logs,) = report["results"]
    assert (result.exit_code, logs["status"]) == (1, "fail") and logs["found"].startswith("1 event(s)"), logs
    assert "ResourceNotFoundException" in logs["details"][0]
    checklist["logs"]["filter_pattern"] = "?Timeout ?ResourceNotFoundException"
    checklist.write()
    assert cli.json("check", *args)[1]["results"][0]["found"].startswith("1 event(s)")
    put_log_events(endpoint, ('{"level": "ERROR", "errorType": "ResourceNotFoundException"}', now - 2000),
                   ('{"level": "INFO"}', now - 1000))
    checklist["logs"]["filter_pattern"] = '{ $.level = "ERROR" && $.errorType = "Resource*" }'
    checklist.write()
    result, report = cli.json("check", *args)     # a JSON pattern: evaluated by checker too
    assert report["results"][0]["found"].startswith("1 event(s)"), report
    checklist["logs"]["filter_pattern"] = "[ip, user, status = 5*]"
    checklist.write()
    refused = cli("validate")                      # one checker cannot evaluate: refused, never a silent zero
    assert refused.exit_code == 1 and "$.logs.filter_pattern" in refused.output and "space-delimited" in refused.output


def test_bad_since_is_a_clear_error(cli, endpoint, checklist):
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--since", "yesterday")
    assert result.exit_code == 1
    assert report["results"][0]["status"] == "error"
    assert "--since: 'yesterday' is not a duration" in report["results"][0]["summary"]


def test_junit_parses_back(cli, endpoint, checklist, app):
    cli("apply", "--endpoint-url", endpoint, "--yes")
    deploy(endpoint, checklist, variables={"DEFAULT_USER_ID": "dana"},
           policy={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    result = cli("check", "--endpoint-url", endpoint, "--env", "dev", "--base-url", app.url, "--format", "junit")
    root = ElementTree.fromstring(result.stdout)
    (suite,) = root.findall("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert int(suite.get("tests")) == len(cases) and int(suite.get("failures")) == 5  # 2 variables, 3 bindings
    assert cases["bindings:LIKED_SONGS_TABLE"].find("failure").get("message") == \
        "LIKED_SONGS_TABLE is not set, but this environment's liked_songs table is liked_songs"
    assert cases["lambda:env:SPOTIFY_CLIENT_SECRET"].find("failure").get("message") == \
        "environment variable SPOTIFY_CLIENT_SECRET is not set"
    assert cases["table:liked_songs"].find("failure") is None
    assert cases["table:liked_songs"].get("classname") == "checker.tables"
    assert "WARNING" in cases["iam:broad-grants"].find("system-out").text


def test_unreachable_aws_is_an_error_result_not_a_crash(cli, checklist):
    result, report = cli.json("check", "--endpoint-url", "http://127.0.0.1:9", "--env", "dev", "--max-attempts", "1")
    assert result.exit_code == 1
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses["tables"] == "error" and statuses["iam"] == "error" and statuses["logs"] == "error"
    assert by_id(report["results"])["lambda"]["summary"].startswith("not checked: cannot reach the AWS endpoint")


def test_base_url_overrides_an_endpoint_pinned_to_an_entry_point(cli, endpoint, checklist, app):
    """A stand-in of the app (here the runtime on 127.0.0.1): --base-url wins over the entry point,
    which this account does not even have."""
    cli("apply", "--endpoint-url", endpoint, "--yes")
    deploy(endpoint, checklist)
    for each in checklist["endpoints"]:
        each["entry_point"] = "function_url"
    checklist.write()
    args = ["--endpoint-url", endpoint, "--env", "dev", "--only", "endpoints"]
    _, pinned = cli.json("check", *args)
    assert by_id(pinned["results"])["endpoint:health"]["status"] in ("error", "fail")   # no function URL to ask
    result, report = cli.json("check", *args, "--base-url", app.url)
    health = by_id(report["results"])["endpoint:health"]
    assert health["status"] == "pass", health
    assert app.url.split("//")[1].split("/")[0] in json.dumps(health)           # the URL asked is shown


def test_bad_checklist_is_an_error_result(cli, project, checklist):
    (project / "checklist.yaml").write_text("version: 1\nenvironments: {dev: {}}\nendpoints:\n  - name: x\n    retries: -1\n")
    result, report = cli.json("check", "--env", "dev")
    assert result.exit_code == 1
    (error,) = report["results"]
    assert error["status"] == "error" and error["summary"].startswith("checklist.yaml: $.endpoints[0].retries:")


def test_undefined_variable_in_endpoints_blocks_check_but_not_plan(cli, endpoint, checklist, monkeypatch):
    checklist["endpoints"][0]["headers"] = {"Authorization": "Bearer ${CHECKER_TEST_API_TOKEN}"}
    checklist.write()
    assert cli("plan", "--endpoint-url", endpoint, "--env", "dev").exit_code == 0
    result = cli("check", "--endpoint-url", endpoint, "--env", "dev")
    assert result.exit_code == 1
    assert "environment variable CHECKER_TEST_API_TOKEN is not set" in result.stdout


def test_smoke_runs_endpoints_and_logs_and_masks_secrets(cli, endpoint, checklist, app, monkeypatch):
    cli("apply", "--endpoint-url", endpoint, "--yes")
    token = "tok-PLANTED-abcdef123456"
    monkeypatch.setenv("CHECKER_TEST_API_TOKEN", token)
    checklist["endpoints"].append({"name": "bad-action", "action": "nope", "expect_status": 200, "retries": 1,
                                   "retry_delay": 0, "headers": {"Authorization": "Bearer ${CHECKER_TEST_API_TOKEN}"}})
    checklist["endpoints"].append({"name": "with-key", "url": f"{app.url}?action=liked-songs-stats&api_key={token}",
                                   "expect_status": 200, "schema": {"type": "object", "required": ["nothing"]},
                                   "retries": 0})
    checklist.write()
    result, report = cli.json("smoke", "--endpoint-url", endpoint, "--env", "dev", "--base-url", app.url,
                              "--settle", "0.1")
    assert result.exit_code == 1
    assert "logs: waiting 0.1s for CloudWatch Logs" in result.stderr
    results = by_id(report["results"])
    tables = {f"table:{name}" for name in ("user", "action_history", "track", "liked_songs", "liked_songs_metadata")}
    assert set(results) == {"endpoint:health", "endpoint:liked-songs-stats", "endpoint:bad-action",
                            "endpoint:with-key", "logs:ERROR"} | tables
    assert {results[t]["status"] for t in tables} == {"pass"}
    assert results["endpoint:health"]["status"] == "pass"
    assert results["endpoint:liked-songs-stats"]["status"] == "pass"
    assert results["endpoint:bad-action"]["found"].startswith("HTTP 400:")
    assert results["endpoint:bad-action"]["found"].endswith("(after 2 attempt(s))")
    assert "retrying" in result.stderr
    assert results["endpoint:with-key"]["found"] == "HTTP 200, body at $: 'nothing' is a required property (after 1 attempt(s))"
    assert "api_key=***" in results["endpoint:with-key"]["summary"]
    assert token not in result.stdout and token not in result.stderr


def test_endpoint_that_never_answers(cli, endpoint, checklist):
    checklist["endpoints"] = [{"name": "down", "url": "http://127.0.0.1:9/", "retries": 0, "timeout": 2}]
    checklist.write()
    result, report = cli.json("smoke", "--endpoint-url", endpoint, "--env", "dev", "--only", "endpoints")
    assert result.exit_code == 1
    assert report["results"][0]["found"].startswith("no answer: ")


def test_bootstrap_a_new_environment(cli, endpoint, checklist, app):
    deploy(endpoint, checklist)
    result, report = cli.json("bootstrap", "--endpoint-url", endpoint, "--env", "dev", "--base-url", app.url, "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "6 applied" in result.stderr  # 5 tables and PITR on user
    assert report["summary"]["ok"] and report["summary"]["fail"] == 0
    assert len(client(endpoint, "dynamodb").list_tables()["TableNames"]) == 5


def test_only_and_skip_are_checked(cli, endpoint, checklist):
    result, report = cli.json("smoke", "--endpoint-url", endpoint, "--env", "dev", "--only", "iam")
    assert result.exit_code == 1
    assert report["results"][0]["summary"] == "--only iam: this command runs only tables, endpoints, logs"
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--skip", "tabels")
    assert report["results"][0]["summary"].startswith("unknown check kind(s) tabels; kinds are tables, lambda")
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev",
                              "--only", "lambda", "--only", "logs,iam", "--skip", "iam")
    assert {r["kind"] for r in report["results"]} == {"lambda", "logs"}


def test_bindings_compare_the_function_variables_with_the_environment_table_names(cli, endpoint, checklist):
    # prod's tables carry "-prod"; the function was deployed with dev's names (issue: no check saw it)
    deploy_function(endpoint, REGION, "spotify-playlist-prod", exact_policy(checklist),
                    {"DEFAULT_USER_ID": "dana", "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": SECRET,
                     **BINDINGS, "USER_TABLE": "user-prod",
                     "LIKED_SONGS_METADATA_TABLE": "postgres://app:hunter2-PLANTED@db.internal/x"})
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "prod", "--only", "bindings")
    assert result.exit_code == 1
    results = by_id(report["results"])
    assert results["bindings:USER_TABLE"]["status"] == "pass"
    metadata = results["bindings:LIKED_SONGS_METADATA_TABLE"]       # not a name of the table: never shown
    assert metadata["status"] == "fail" and "holds a value that is not this environment's name" in metadata["summary"]
    assert "hunter2" not in result.stdout and "postgres" not in result.stdout
    liked = results["bindings:LIKED_SONGS_TABLE"]
    assert (liked["status"], liked["expected"], liked["found"]) == (
        "fail", "LIKED_SONGS_TABLE=liked_songs-prod", "'liked_songs'")
    assert "--function-name spotify-playlist-prod" in liked["remediation"]
    assert '"LIKED_SONGS_TABLE":"liked_songs-prod"' in liked["remediation"]
    assert SECRET not in result.stdout


def test_binding_to_an_unknown_table_is_a_validate_error(cli, checklist):
    checklist["lambda"]["bindings"]["EXTRA_TABLE"] = "playlists"
    checklist.write()
    result = cli("validate")
    assert result.exit_code == 1
    assert "checklist.yaml: $.lambda.bindings.EXTRA_TABLE: no table spec has TableName 'playlists'" in result.stdout


def test_no_log_group_warns_in_check_and_fails_a_smoke_that_called_the_app(cli, endpoint, checklist, fake_spotify):
    cli("apply", "--endpoint-url", endpoint, "--yes")
    deploy(endpoint, checklist)
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "logs")
    (logs,) = report["results"]
    assert (result.exit_code, logs["status"]) == (0, "warn")
    assert "nothing counted" in logs["summary"]
    # an app that logs nowhere: its endpoints answer, but the smoke test cannot count its errors
    fake_spotify.add_user("dana", 3)
    environ = {"DEFAULT_USER_ID": "dana", "SPOTIFY_API_BASE_URL": fake_spotify.api_base,
               "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url, "SPOTIFY_REFRESH_TOKEN": "refresh-dana",
               "SPOTIFY_CLIENT_ID": "client-id", "SPOTIFY_CLIENT_SECRET": SECRET, **BINDINGS}
    with AppServer(environ, dynamodb_endpoint=endpoint) as silent_app:
        result, report = cli.json("smoke", "--endpoint-url", endpoint, "--env", "dev", "--base-url", silent_app.url)
    results = by_id(report["results"])
    assert results["endpoint:health"]["status"] == "pass"
    assert results["logs:ERROR"]["status"] == "fail" and result.exit_code == 1
    assert "does not exist after the endpoint calls" in results["logs:ERROR"]["summary"]


def test_logs_of_a_function_that_does_not_exist_are_an_error(cli, endpoint, checklist):
    result, report = cli.json("smoke", "--endpoint-url", endpoint, "--env", "dev", "--only", "logs")
    (logs,) = report["results"]
    assert (result.exit_code, logs["status"]) == (1, "error")
    assert "function spotify-playlist-dev does not exist" in logs["summary"]
    assert "/aws/lambda/None" not in json.dumps(report)


def test_logs_without_any_function_named_are_an_error(cli, endpoint, checklist):
    del checklist["lambda"]["function_name"]
    del checklist["environments"]["dev"]["function_name"]
    checklist.write()
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "logs")
    (logs,) = report["results"]
    assert (result.exit_code, logs["status"]) == (1, "error")
    assert "no Lambda function named" in logs["summary"]


def test_the_printed_least_privilege_policy_passes_the_iam_check(cli, endpoint, checklist):
    result = cli("iam-policy", "--endpoint-url", endpoint, "--env", "prod", "--format", "json")
    assert result.exit_code == 0, result.output
    policy = json.loads(result.stdout)
    assert all(s["Resource"].startswith(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/") and "-prod" in s["Resource"]
               for s in policy["Statement"])
    deploy_function(endpoint, REGION, "spotify-playlist-prod", policy, {"DEFAULT_USER_ID": "dana"})
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "prod", "--only", "iam")
    assert result.exit_code == 0
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert set(statuses.values()) == {"pass"} and "iam:user@external" in statuses and "iam:broad-grants" in statuses
    # one action taken away from it is named
    policy["Statement"][0]["Action"].remove("dynamodb:Query")
    client(endpoint, "iam").put_role_policy(RoleName="spotify-playlist-prod-role", PolicyName="dynamodb",
                                            PolicyDocument=json.dumps(policy))
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "prod", "--only", "iam")
    assert result.exit_code == 1
    assert [r["id"] for r in report["results"] if r["status"] == "fail"] == ["iam:liked_songs"]


def test_iam_policy_without_permissions_is_an_error(cli, endpoint, checklist):
    del checklist["iam"]
    checklist.write()
    result = cli("iam-policy", "--endpoint-url", endpoint)
    assert result.exit_code == 1 and "error: no iam.permissions in the checklist" in result.stderr


def test_a_function_url_without_its_invoke_permission_fails(cli, endpoint, checklist):
    """The URL exists, but nothing lets the public call the function: every request would be 403."""
    deploy(endpoint, checklist)
    lam = client(endpoint, "lambda")
    lam.remove_permission(FunctionName=FUNCTION, StatementId="lambda-InvokeFunction")
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point")
    assert result.exit_code == 1
    assert any("lambda:InvokeFunction" in d for d in report["results"][0]["details"])
    checklist["entry_point"] = {"require": "function_url"}  # public not said: AuthType NONE is a warning
    checklist.write()
    lam.add_permission(FunctionName=FUNCTION, StatementId="again", Action="lambda:InvokeFunction", Principal="*")
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point")
    assert (result.exit_code, report["results"][0]["status"]) == (0, "warn")
    assert "anyone on the internet" in report["results"][0]["details"][0]


def test_entry_point_none_is_a_skip_and_looks_for_no_base_url(cli, endpoint, checklist):
    deploy(endpoint, checklist, function_url=False)
    checklist["entry_point"] = {"require": "none"}
    checklist.write()
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "entry_point,endpoints")
    results = by_id(report["results"])
    assert results["entry_point"]["status"] == "skip"
    assert all(r["status"] == "error" and "entry_point.require is none" in r["summary"]
               for r in report["results"] if r["kind"] == "endpoints")


def test_smoke_names_the_missing_table_behind_a_failing_endpoint(cli, endpoint, checklist, app):
    """The incident: the cache tables are gone, the endpoint answers 5xx. smoke names them and
    the fix, even for an app whose endpoints do not say why."""
    cli("apply", "--endpoint-url", endpoint, "--yes")
    dynamodb = client(endpoint, "dynamodb")
    for name in ("liked_songs", "liked_songs_metadata"):
        dynamodb.delete_table(TableName=name)
    result, report = cli.json("smoke", "--endpoint-url", endpoint, "--base-url", app.url)
    assert result.exit_code == 1
    results = by_id(report["results"])
    assert results["table:liked_songs"]["status"] == "fail"
    assert [r["kind"] for r in report["results"]][:5] == ["tables"] * 5   # before the endpoints
    health = results["endpoint:health"]
    assert health["status"] == "fail"
    assert "table liked_songs does not exist" in health["remediation"]
    assert health["remediation"].endswith(f"run: checker apply --env dev --endpoint-url {endpoint}")


def test_smoke_fails_a_table_whose_spec_gsi_does_not_exist(cli, endpoint, checklist, app):
    """The app's Query on an index that is not there fails: readiness includes every GSI of the spec."""
    cli("apply", "--endpoint-url", endpoint, "--yes")
    client(endpoint, "dynamodb").update_table(TableName="track", GlobalSecondaryIndexUpdates=[
        {"Delete": {"IndexName": "status-id-index"}}])
    result, report = cli.json("smoke", "--endpoint-url", endpoint, "--base-url", app.url)
    assert result.exit_code == 1
    track = by_id(report["results"])["table:track"]
    assert track["status"] == "fail" and "lacks index(es) status-id-index of its spec" in track["summary"], track
    assert "index status-id-index does not exist" in track["found"] and "checker apply" in track["remediation"]


def test_a_checklist_of_environments_and_nothing_else_checks_only_the_tables(cli, project, endpoint):
    (project / "checklist.yaml").write_text("version: 1\nenvironments:\n  dev: {region: us-east-1}\n")
    for spec in (project / "table_specs").glob("*.json"):
        if spec.stem != "track":
            spec.unlink()
    assert cli("apply", "--endpoint-url", endpoint, "--env", "dev", "--yes").exit_code == 0
    result, report = cli.json("check", "--endpoint-url", endpoint, "--env", "dev")
    assert result.exit_code == 0, report
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses == {"table:track": "pass", "lambda": "skip", "bindings": "skip", "entry_point": "skip",
                        "iam": "skip", "items": "skip", "endpoints": "skip", "logs": "skip", "migrations": "skip"}
    assert all(r["summary"].startswith("not in the checklist") for r in report["results"] if r["status"] == "skip")
    junit = cli("check", "--endpoint-url", endpoint, "--env", "dev", "--format", "junit").stdout
    assert junit.count("<skipped") == 8
    result = cli("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "tables,iam")
    assert result.exit_code == 1 and "--only iam: not in the checklist" in result.stderr


def test_aws_commands_need_env_when_the_checklist_has_environments(cli, project, endpoint):
    (project / "checklist.yaml").write_text(
        "version: 1\nenvironments:\n  shop: {region: eu-west-1, table_prefix: shop-dev-}\n")
    for command in ("plan", "apply", "wait", "check"):
        result = cli(command, "--endpoint-url", endpoint)
        assert result.exit_code == 1, command
        assert "defines environments (shop): pass --env NAME" in result.stderr, command
    assert client(endpoint, "dynamodb").list_tables()["TableNames"] == []
    (project / "checklist.yaml").write_text(
        "version: 1\ndefault_env: nope\nenvironments:\n  shop: {region: eu-west-1}\n")
    result = cli("validate")
    assert result.exit_code == 1 and "$.default_env: no environment 'nope' (known: shop)" in result.stdout


def test_the_function_check_compares_handler_runtime_and_state_and_variable_rules(cli, endpoint, checklist):
    deploy(endpoint, checklist, variables={"DEFAULT_USER_ID": "dana", "SPOTIFY_CLIENT_ID": "id",
                                           "SPOTIFY_CLIENT_SECRET": SECRET, "NODE_ENV": "development", "DRY_ALL": "1"})
    checklist["lambda"].update(handler="stub.handler", runtime="python3.12",
                               env={"NODE_ENV": {"not_in": ["dev", "development"]}, "DRY_ALL": {"absent": True},
                                    "DEBUG": {"absent": True}})
    checklist.write()
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "lambda")
    results = by_id(report["results"])
    assert results["lambda:function"]["status"] == "pass" and "State Active" in results["lambda:function"]["found"]
    assert results["lambda:env-rule:NODE_ENV"]["status"] == "fail"
    assert results["lambda:env-rule:DRY_ALL"]["status"] == "fail"
    assert results["lambda:env-rule:DEBUG"]["status"] == "pass"
    assert "development" not in json.dumps([r for r in report["results"] if r["id"] != "lambda:env-rule:NODE_ENV"])
    assert "set to a forbidden value" == results["lambda:env-rule:NODE_ENV"]["found"]
    checklist["lambda"].update(handler="dist/index.handler", runtime="nodejs20.x")
    checklist.write()
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "lambda")
    function = by_id(report["results"])["lambda:function"]
    assert result.exit_code == 1 and function["status"] == "fail"
    assert "Handler is stub.handler, expected dist/index.handler" in function["summary"]
    assert "Runtime is python3.12, expected nodejs20.x" in function["summary"]


def test_required_items_are_checked_without_showing_a_value(cli, endpoint, checklist, monkeypatch):
    cli("apply", "--endpoint-url", endpoint, "--yes")
    monkeypatch.setenv("CHECKER_TEST_USER", "koalemos")
    checklist["items"] = [{"table": "user", "key": {"id": "${CHECKER_TEST_USER}"},
                           "attributes": ["spotifyAuth.refreshToken", "status"]}]
    checklist.write()
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "items")
    (item,) = report["results"]
    assert (result.exit_code, item["status"], item["found"]) == (1, "fail", "no such item")
    assert "koalemos" not in result.stdout  # a ${VAR} value is a secret: masked
    dynamodb = client(endpoint, "dynamodb")
    dynamodb.put_item(TableName="user", Item={"id": {"S": "koalemos"}, "status": {"S": "on"},
                                              "spotifyAuth": {"M": {"refreshToken": {"S": ""}}}})
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "items")
    assert result.exit_code == 1 and report["results"][0]["found"] == "missing, NULL or empty: spotifyAuth.refreshToken"
    dynamodb.put_item(TableName="user", Item={"id": {"S": "koalemos"}, "status": {"S": "on"},
                                              "spotifyAuth": {"M": {"refreshToken": {"S": SECRET}}}})
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "items")
    assert result.exit_code == 0 and report["results"][0]["status"] == "pass"
    assert SECRET not in result.stdout
    checklist["items"][0]["key"] = {"userId": "x"}
    checklist.write()
    result = cli("validate")
    assert result.exit_code == 1 and "$.items[0].key: table user's key is id" in result.stdout
