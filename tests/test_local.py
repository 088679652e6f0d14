"""`checker local`: a whole environment on 127.0.0.1 that `checker check` passes against, and
that fails `check` and `smoke` the moment the incident is replayed on it."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import pytest
import yaml

from .conftest import REGION, ROOT, Cli

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out


def start_local_stack(project, *options):
    checklist = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    for endpoint in checklist["endpoints"]:
        endpoint.update(retry_delay=0)  # the incident is not transient: no need to wait between tries
    (project / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    return run_local(project, "--tracks", "30", *options)


def run_local(project, *options, env=None):
    """`checker local --port 0 ...` in `project`, and {name: value} of what it printed before
    "Ctrl-C to stop." ("AWS (moto)", "app", ...)."""
    command = [os.path.join(os.path.dirname(sys.executable), "checker"), "local", "--port", "0", *options]
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    # read stdout on a thread, so that a stack that never prints cannot hang the test past its deadline
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [*(printed.put(line) for line in process.stdout), printed.put(None)],
                     daemon=True).start()
    lines = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = printed.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None or line.startswith("Ctrl-C"):   # the end of its output, or it serves now
            break
        if ":" in line and line.split(":")[0] in ("AWS (moto)", "fake Spotify", "app"):
            name, value = line.split(":", 1)
            lines[name] = value.split()[0]
        lines.setdefault("printed", []).append(line)
    return process, lines


@pytest.fixture
def local_stack(project, request):
    process, lines = start_local_stack(project, *getattr(request, "param", ()))
    yield lines
    process.terminate()
    process.wait(timeout=10)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_check_passes_against_the_local_stack_then_the_incident_fails_check_and_smoke(cli, local_stack):
    assert {"AWS (moto)", "fake Spotify", "app"} <= set(local_stack), local_stack
    aws, app = local_stack["AWS (moto)"], local_stack["app"]
    options = ["--endpoint-url", aws, "--env", "dev", "--base-url", app]
    result, report = cli.json("check", *options)
    assert result.exit_code == 0, [r for r in report["results"] if r["status"] != "pass"]
    assert report["summary"]["fail"] == 0 and report["summary"]["warn"] == 0 and report["summary"]["total"] >= 18
    assert get(f"{app}?action=health")[1]["status"] == "ok"

    # The incident: the cache tables were never created (here: deleted) while the app runs.
    dynamodb = boto3.client("dynamodb", endpoint_url=aws, region_name=REGION)
    for table in ("liked_songs", "liked_songs_metadata"):
        dynamodb.delete_table(TableName=table)

    result, report = cli.json("smoke", *options)
    assert result.exit_code == 1
    failing = {r["id"]: r for r in report["results"] if r["status"] == "fail"}
    assert set(failing) == {"table:liked_songs", "table:liked_songs_metadata", "endpoint:health", "logs:ERROR"}, \
        report["results"]
    assert "table liked_songs (LIKED_SONGS_TABLE) does not exist" in failing["endpoint:health"]["found"]
    assert any("liked_songs" in line and "table_missing" in line for line in failing["logs:ERROR"]["details"])

    result, report = cli.json("check", *options)
    assert result.exit_code == 1
    failing = {r["id"] for r in report["results"] if r["status"] == "fail"}
    assert {"table:liked_songs", "table:liked_songs_metadata", "endpoint:health"} <= failing


@pytest.mark.parametrize("local_stack", [("--env", "prod")], indirect=True)
def test_local_stack_for_another_environment_is_bound_to_its_tables(cli, local_stack):
    aws, app = local_stack["AWS (moto)"], local_stack["app"]
    result, report = cli.json("check", "--endpoint-url", aws, "--env", "prod", "--base-url", app)
    assert result.exit_code == 0, [r for r in report["results"] if r["status"] != "pass"]
    bindings = {r["id"]: r["found"] for r in report["results"] if r["kind"] == "bindings"}
    assert bindings == {"bindings:USER_TABLE": "user-prod", "bindings:LIKED_SONGS_TABLE": "liked_songs-prod",
                        "bindings:LIKED_SONGS_METADATA_TABLE": "liked_songs_metadata-prod"}
    status, body = get(f"{app}?action=sync-liked-songs")
    assert (status, body["sync"]["total"]) == (200, 30)


def test_a_declared_migration_is_rehearsed_from_the_state_before_it(cli, project):
    """With a table migration in the checklist, the stack is what AWS has before the migration:
    the source bound and granted, the target absent; `checker migrate` then switches the running
    app, which goes on answering from the new table."""
    spec = json.loads((project / "table_specs" / "liked_songs.json").read_text())
    spec.update(TableName="liked_songs_v2", BillingMode="PAY_PER_REQUEST")
    for each in [spec, *spec.get("GlobalSecondaryIndexes", [])]:
        each.pop("ProvisionedThroughput", None)
    (project / "table_specs" / "liked_songs_v2.json").write_text(json.dumps(spec))
    checklist = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    checklist.setdefault("tables", {})["liked_songs_v2"] = {"migrate_from": "liked_songs"}
    checklist["lambda"]["bindings"]["LIKED_SONGS_TABLE"] = "liked_songs_v2"
    for permission in checklist["iam"]["permissions"]:
        if permission["table"] == "liked_songs":
            permission["table"] = "liked_songs_v2"
    (project / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    process, lines = run_local(project, "--tracks", "30")
    try:
        aws, app = lines["AWS (moto)"], lines["app"]
        lam = boto3.client("lambda", endpoint_url=aws, region_name=REGION)
        variables = lam.get_function_configuration(FunctionName="spotify-playlist-dev")["Environment"]["Variables"]
        assert variables["LIKED_SONGS_TABLE"] == "liked_songs"
        assert "liked_songs_v2" not in boto3.client("dynamodb", endpoint_url=aws, region_name=REGION).list_tables()[
            "TableNames"]
        assert get(f"{app}?action=sync-liked-songs")[0] == 200
        migrated = cli("migrate", "--endpoint-url", aws, "--env", "dev", "--base-url", app, "--offline", "--yes")
        assert migrated.exit_code == 0, migrated.output
        variables = lam.get_function_configuration(FunctionName="spotify-playlist-dev")["Environment"]["Variables"]
        assert variables["LIKED_SONGS_TABLE"] == "liked_songs_v2"
        status, body = get(f"{app}?action=liked-songs-stats")
        assert status == 200 and body["sampleTracks"], body
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- any app ---------------------------------------------------------------------------------------
NOTES_APP = '''
"""A notes app of another shape than spotify-playlist: two tables, no Spotify, its own routes."""
import json
import logging
import os

import boto3

dynamodb = boto3.client("dynamodb")  # made at import, as apps do: AWS_ENDPOINT_URL points it at the stack
log = logging.getLogger()
log.setLevel(logging.INFO)


def answer(status, body):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    path = event.get("rawPath") or event.get("path") or "/"
    if path == "/health":
        missing = []
        for variable in ("NOTES_TABLE", "AUTHORS_TABLE"):
            try:
                dynamodb.describe_table(TableName=os.environ[variable])
            except dynamodb.exceptions.ResourceNotFoundException:
                log.error("table %s (%s) does not exist", os.environ[variable], variable)
                missing.append(os.environ[variable])
        return answer(503 if missing else 200, {"missing": missing, "function": context.function_name})
    if path == "/notes" and event.get("body"):
        note = json.loads(event["body"])
        dynamodb.put_item(TableName=os.environ["NOTES_TABLE"], Item={"id": {"S": note["id"]}, "text": {"S": note["text"]}})
        print(f"stored note {note['id']}")
        return answer(201, {"stored": note["id"]})
    return answer(404, {"error": f"no route {path}"})
'''

NOTES_CHECKLIST = {
    "version": 1, "default_env": "dev", "local": {"app": "notes_app:handler"},
    "environments": {"dev": {"region": "eu-west-1", "table_prefix": "notes-dev-", "function_name": "notes-dev"}},
    "lambda": {"required_env": ["NOTES_TABLE", "AUTHORS_TABLE"], "handler": "notes_app.handler",
               "runtime": "python3.12", "bindings": {"NOTES_TABLE": "notes", "AUTHORS_TABLE": "authors"}},
    "entry_point": {"require": "any", "public": True},
    "iam": {"permissions": [{"table": "notes", "actions": ["dynamodb:DescribeTable", "dynamodb:PutItem"]},
                            {"table": "authors", "actions": ["dynamodb:DescribeTable"]}]},
    "endpoints": [{"name": "health", "path": "/health", "expect_status": 200, "retries": 0,
                   "schema": {"type": "object", "required": ["missing"], "properties": {"missing": {"maxItems": 0}}}},
                  {"name": "store", "method": "POST", "path": "/notes", "body": {"id": "n1", "text": "hello"},
                   "expect_status": 201, "retries": 0}],
    "logs": {"threshold": 0},
}


@pytest.fixture
def notes_project(tmp_path):
    (tmp_path / "notes_app.py").write_text(NOTES_APP)
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump(NOTES_CHECKLIST, sort_keys=False))
    specs = tmp_path / "table_specs"
    specs.mkdir()
    for name, key in (("notes", "id"), ("authors", "authorId")):
        (specs / f"{name}.json").write_text(json.dumps({
            "TableName": name, "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}))
    return tmp_path


@pytest.fixture
def stop_afterwards():
    processes = []
    yield processes.append
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("entry_point", ["function_url", "http_api", "rest_api"])
def test_your_own_handler_is_served_found_and_checked_like_on_aws(notes_project, stop_afterwards, entry_point):
    process, lines = run_local(notes_project, "--entry-point", entry_point)
    stop_afterwards(process)
    assert "AWS (moto)" in lines and "app" in lines and "fake Spotify" not in lines, lines
    aws = lines["AWS (moto)"]
    cli = Cli(notes_project)
    # no --base-url: check finds the app through the entry point, as it would on AWS
    result, report = cli.json("check", "--endpoint-url", aws)
    assert result.exit_code == 0, [r for r in report["results"] if r["status"] != "pass"]
    kinds = {r["kind"] for r in report["results"] if r["status"] == "pass"}
    assert {"tables", "lambda", "bindings", "entry_point", "iam", "endpoints", "logs"} <= kinds
    entry = next(r for r in report["results"] if r["id"] == "entry_point")
    assert entry["summary"].startswith(entry_point.replace("_", " "))

    # the invoke permission taken away: the entry point is refused as on AWS, and check says why
    lam = boto3.client("lambda", endpoint_url=aws, region_name="eu-west-1")
    for statement in json.loads(lam.get_policy(FunctionName="notes-dev")["Policy"])["Statement"]:
        lam.remove_permission(FunctionName="notes-dev", StatementId=statement["Sid"])
    result, report = cli.json("check", "--endpoint-url", aws, "--only", "entry_point,endpoints")
    answers = {r["id"]: r["found"] for r in report["results"]}
    refused = "HTTP 403" if entry_point == "function_url" else "HTTP 500"   # API Gateway may not invoke it
    assert result.exit_code == 1 and answers["endpoint:health"].startswith(refused), answers
    assert next(r for r in report["results"] if r["id"] == "entry_point")["status"] == "fail"
    if entry_point != "function_url":
        return
    for fix in next(r for r in report["results"] if r["id"] == "entry_point")["remediation"].split(" && "):
        action = "lambda:InvokeFunctionUrl" if "InvokeFunctionUrl" in fix else "lambda:InvokeFunction"
        lam.add_permission(FunctionName="notes-dev", StatementId=action.replace(":", "-"), Action=action, Principal="*")
    # what the handler printed went to the function's log group, as on Lambda
    logs = boto3.client("logs", endpoint_url=aws, region_name="eu-west-1")
    messages = [e["message"] for e in logs.filter_log_events(logGroupName="/aws/lambda/notes-dev")["events"]]
    assert "stored note n1" in messages
    stored = boto3.client("dynamodb", endpoint_url=aws, region_name="eu-west-1").get_item(
        TableName="notes-dev-notes", Key={"id": {"S": "n1"}})
    assert stored["Item"]["text"] == {"S": "hello"}

    boto3.client("dynamodb", endpoint_url=aws, region_name="eu-west-1").delete_table(TableName="notes-dev-authors")
    result, report = cli.json("smoke", "--endpoint-url", aws)
    assert result.exit_code == 1
    failing = {r["id"]: r for r in report["results"] if r["status"] == "fail"}
    assert {"table:authors", "endpoint:health", "logs:ERROR"} <= set(failing), report["results"]
    assert "notes-dev-authors" in failing["endpoint:health"]["found"]
    assert any("notes-dev-authors" in line for line in failing["logs:ERROR"]["details"])

    # a pattern with an exclusion is evaluated by checker on the local stack's log group too: the
    # incident's lines are counted unless the pattern excludes them
    for pattern, status in (('ERROR -"No tracks to be added"', "fail"), ('ERROR -"AUTHORS_TABLE"', "pass")):
        checklist = yaml.safe_load((notes_project / "checklist.yaml").read_text())
        checklist["logs"]["filter_pattern"] = pattern
        (notes_project / "checklist.yaml").write_text(yaml.safe_dump(checklist, sort_keys=False))
        result, report = cli.json("check", "--endpoint-url", aws, "--only", "logs", "--since", "10m")
        [logs_result] = report["results"]
        assert logs_result["status"] == status, (pattern, logs_result)


def test_a_handler_whose_role_lacks_an_action_it_calls_is_denied_as_on_aws(notes_project, stop_afterwards):
    """The handler signs with its role's credentials (assumed through STS): PutItem taken out of the
    role is an AccessDeniedException in the handler, its log, and check's log sample, as on
    Lambda: this is how a team proves iam.permissions against its own code."""
    process, lines = run_local(notes_project)
    stop_afterwards(process)
    aws = lines["AWS (moto)"]
    cli = Cli(notes_project)
    assert cli.json("check", "--endpoint-url", aws, "--only", "endpoints")[0].exit_code == 0
    iam = boto3.client("iam", endpoint_url=aws, region_name="eu-west-1")
    iam.put_role_policy(RoleName="notes-dev-role", PolicyName="dynamodb", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": "*"}]}))
    result, report = cli.json("check", "--endpoint-url", aws, "--only", "endpoints,logs")
    failing = {r["id"]: r for r in report["results"] if r["status"] == "fail"}
    assert result.exit_code == 1 and set(failing) == {"endpoint:store", "logs:ERROR"}, report["results"]
    assert "HTTP 502" in failing["endpoint:store"]["found"]
    assert any("AccessDeniedException" in d and "dynamodb:PutItem" in d for d in failing["logs:ERROR"]["details"]), \
        failing["logs:ERROR"]["details"]
    # checker's own calls (and the user's shell) are not the role's: they still pass
    assert boto3.client("dynamodb", endpoint_url=aws, region_name="eu-west-1").put_item(
        TableName="notes-dev-notes", Item={"id": {"S": "n2"}, "text": {"S": "by hand"}})


def test_the_readmes_smallest_checklist_with_a_function_starts(tmp_path, stop_afterwards):
    """No iam section: the function's role gets no DynamoDB grant (IAM refuses an empty policy)."""
    (tmp_path / "checklist.yaml").write_text(
        "version: 1\ndefault_env: dev\nenvironments:\n"
        "  dev: {region: eu-west-1, table_prefix: shop-dev-, function_name: shop-dev-orders}\n")
    (tmp_path / "table_specs").mkdir()
    (tmp_path / "table_specs" / "orders.json").write_text(json.dumps({
        "TableName": "orders", "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}))
    process, lines = run_local(tmp_path, "--app", "none")
    stop_afterwards(process)
    assert "AWS (moto)" in lines, lines
    role = boto3.client("iam", endpoint_url=lines["AWS (moto)"], region_name="eu-west-1").list_role_policies(
        RoleName="shop-dev-orders-role")
    assert role["PolicyNames"] == []
    assert Cli(tmp_path).json("check", "--endpoint-url", lines["AWS (moto)"])[0].exit_code == 0


def test_app_none_deploys_only_the_aws_side(notes_project, stop_afterwards):
    process, lines = run_local(notes_project, "--app", "none")
    stop_afterwards(process)
    assert "app" not in lines, lines
    aws = lines["AWS (moto)"]
    result, report = Cli(notes_project).json("check", "--endpoint-url", aws, "--only", "tables,lambda,bindings,iam")
    assert result.exit_code == 0, [r for r in report["results"] if r["status"] != "pass"]
    variables = boto3.client("lambda", endpoint_url=aws, region_name="eu-west-1").get_function_configuration(
        FunctionName="notes-dev")["Environment"]["Variables"]
    assert variables == {"NOTES_TABLE": "notes-dev-notes", "AUTHORS_TABLE": "notes-dev-authors"}


def test_a_handler_that_cannot_be_imported_is_one_line(notes_project):
    process, lines = run_local(notes_project, "--app", "nosuch_module:handler")
    process.wait(timeout=30)
    assert process.returncode == 1
    errors = [line for line in lines.get("printed", []) if line.startswith("error:")]
    assert errors == [f"error: --app nosuch_module:handler: no module nosuch_module in {notes_project.resolve()} "
                      "(run checker local in the app's folder, or pass --app-dir)\n"], lines


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_local_stack_leaves_no_temp_files(notes_project, tmp_path_factory, stop):
    temp = tmp_path_factory.mktemp("tmpdir")
    process, lines = run_local(notes_project, "--app", "none", "--no-deploy", env={"TMPDIR": str(temp)})
    assert "AWS (moto)" in lines, lines
    assert [p.name for p in temp.iterdir() if p.name.startswith("checker-local-")]  # moto's log lives there
    process.send_signal(stop)
    assert process.wait(timeout=20) in (0, 130, -stop)   # stopped, or interrupted before it served (130)
    assert list(temp.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tgkill: one thread of another process is Linux's")
def test_a_stop_signal_handed_to_a_server_thread_still_stops_the_stack(notes_project):
    """The kernel may deliver a process's signal to any thread; Python runs its handler only in the
    main thread, and only when that thread next runs: a main thread asleep for an hour never would."""
    import ctypes
    process, lines = run_local(notes_project, "--app", "none", "--no-deploy")
    assert "AWS (moto)" in lines, lines
    threads = sorted(int(t) for t in os.listdir(f"/proc/{process.pid}/task") if int(t) != process.pid)
    assert threads, "the stack runs its servers on threads"
    tgkill = 234 if os.uname().machine == "x86_64" else 131   # the syscall's number (x86_64, arm64)
    assert ctypes.CDLL(None, use_errno=True).syscall(tgkill, process.pid, threads[0], signal.SIGTERM) == 0
    try:
        assert process.wait(timeout=10) in (0, 130)
    finally:
        process.kill()
