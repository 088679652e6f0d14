"""`checker local`: a whole environment on 127.0.0.1 that `checker check` passes against, and
that fails `check` and `smoke` the moment the incident is replayed on it."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import pytest
import yaml

from .conftest import REGION, ROOT


def start_local_stack(project, *options):
    checklist = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    for endpoint in checklist["endpoints"]:
        endpoint.update(retry_delay=0)  # the incident is not transient: no need to wait between tries
    (project / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    command = [os.path.join(os.path.dirname(sys.executable), "checker"), "local", "--port", "0", "--tracks", "30",
               *options]
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # read stdout on a thread, so that a stack that never prints cannot hang the test past its deadline
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line) for line in process.stdout], daemon=True).start()
    lines = {}
    deadline = time.monotonic() + 60
    while "app" not in lines and time.monotonic() < deadline:
        try:
            line = printed.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if ":" in line and line.split(":")[0] in ("AWS (moto)", "fake Spotify", "app"):
            name, value = line.split(":", 1)
            lines[name] = value.strip()
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
    assert set(local_stack) == {"AWS (moto)", "fake Spotify", "app"}, local_stack
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
