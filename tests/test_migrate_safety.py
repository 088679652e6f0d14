"""A table migration under the worst a copy meets: killed with SIGKILL mid-copy, both tables
throttled, items of 400 KB. A checklist without a function: the migration ends at the verified
copy (nothing of checker's to switch)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import boto3
import pytest
import yaml

from checker.local.dynamo_proxy import DynamoProxy

from .conftest import REGION, Cli

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out

ITEMS = 600


def spec(name: str, lsi: bool = False) -> dict:
    document = {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}
    if lsi:   # an LSI needs a composite key: the v2 table is a new key schema, the pk kept as its hash key
        document["AttributeDefinitions"] += [{"AttributeName": "sk", "AttributeType": "S"}]
        document["KeySchema"] = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    return document


@pytest.fixture
def songs(tmp_path, endpoint):
    (tmp_path / "table_specs").mkdir()
    (tmp_path / "table_specs" / "songs_v2.json").write_text(json.dumps(spec("songs_v2", lsi=True)))
    (tmp_path / "shape.py").write_text("def to_v2(item):\n    return {**item, 'sk': 'v2'}\n")
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev", "environments": {"dev": {"region": REGION}},
        "tables": {"songs_v2": {"migrate_from": "songs", "transform": "shape:to_v2"}}}))
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    client.create_table(**spec("songs"))
    for start in range(0, ITEMS, 25):
        client.batch_write_item(RequestItems={"songs": [
            {"PutRequest": {"Item": {"pk": {"S": f"k{n:04d}"}, "n": {"N": str(n)}}}} for n in range(start, start + 25)]})
    return tmp_path, client


def ledger_entry(client) -> dict:
    try:
        return client.get_item(TableName="checker_migrations", Key={"id": {"S": "table:songs_v2"}}).get("Item") or {}
    except client.exceptions.ResourceNotFoundException:
        return {}    # not created yet


def target_keys(client) -> list:
    return [i["pk"]["S"] for page in client.get_paginator("scan").paginate(TableName="songs_v2") for i in page["Items"]]


def test_sigkill_mid_copy_then_a_rerun_converges_and_a_third_writes_nothing(songs, endpoint):
    project, client = songs
    with DynamoProxy(endpoint) as proxy:
        proxy.latency = 0.03          # slow enough to be killed half-way
        command = [os.path.join(os.path.dirname(sys.executable), "checker"), "migrate", "--offline", "--yes",
                   "--endpoint-url", proxy.url, "--page-items", "20", "--segments", "2"]
        process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            read = int((ledger_entry(client).get("itemsRead") or {}).get("N", "0"))
            if read >= 100:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
        assert 0 < len(target_keys(client)) < ITEMS       # stopped in the middle
        assert ledger_entry(client)["status"]["S"] == "running"
        rerun = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)
    # the lease of the killed run: taken over once it expires; here the test frees it as the minute after its last heartbeat would
    if rerun.exit_code == 1 and "another checker migrate is running" in rerun.stderr:
        client.delete_item(TableName="checker_migrations", Key={"id": {"S": "lock"}})
        rerun = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)
    assert rerun.exit_code == 0, rerun.output
    keys = target_keys(client)
    assert len(keys) == ITEMS and set(keys) == {f"k{n:04d}" for n in range(ITEMS)}
    assert ledger_entry(client)["status"]["S"] == "switched"
    third = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)
    assert third.exit_code == 0 and "Nothing to migrate" in third.stdout


def test_both_tables_throttled_are_backed_off_and_nothing_is_lost(songs, endpoint):
    project, client = songs
    with DynamoProxy(endpoint) as proxy:
        proxy.throttle_rate = 0.3
        proxy.throttle_code = "ProvisionedThroughputExceededException"
        proxy.throttle_operations = {"Scan", "BatchWriteItem"}
        done = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", proxy.url, "--page-items", "50",
                            "--max-attempts", "2")
        sent = proxy.operations().count("Scan") + proxy.operations().count("BatchWriteItem")
    assert done.exit_code == 0, done.output
    assert len(target_keys(client)) == ITEMS
    # at most 16 pages and 24 batches were needed: the rest were throttled calls sent again
    assert sent > 16 + 24, sent


def test_items_of_400_kb_are_copied_and_verified(tmp_path, endpoint):
    (tmp_path / "table_specs").mkdir()
    (tmp_path / "table_specs" / "big_v2.json").write_text(json.dumps(dict(spec("big_v2"), TableName="big_v2")))
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev", "environments": {"dev": {"region": REGION}},
        "tables": {"big_v2": {"migrate_from": "big"}}}))
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    client.create_table(**dict(spec("big"), TableName="big"))
    for n in range(4):
        client.put_item(TableName="big", Item={"pk": {"S": f"b{n}"}, "blob": {"S": chr(97 + n) * 395_000}})
    done = Cli(tmp_path)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)
    assert done.exit_code == 0, done.output
    copied = {i["pk"]["S"]: i["blob"]["S"] for page in client.get_paginator("scan").paginate(TableName="big_v2")
              for i in page["Items"]}
    assert copied == {f"b{n}": chr(97 + n) * 395_000 for n in range(4)}


def test_ctrl_c_stops_at_a_checkpoint_and_the_rerun_goes_on(songs, endpoint):
    """Ctrl-C (exit 130) stops every worker after its page, frees the ledger's lease, and leaves a
    run that the same command resumes."""
    project, client = songs
    with DynamoProxy(endpoint) as proxy:
        proxy.latency = 0.03
        command = [os.path.join(os.path.dirname(sys.executable), "checker"), "migrate", "--offline", "--yes",
                   "--endpoint-url", proxy.url, "--page-items", "20", "--segments", "2"]
        process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and int((ledger_entry(client).get("itemsRead") or {}).get("N", "0")) < 100:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert 0 < len(target_keys(client)) < ITEMS
    rerun = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)   # no lease left behind
    assert rerun.exit_code == 0, rerun.output
    assert sorted(target_keys(client)) == [f"k{n:04d}" for n in range(ITEMS)]


@pytest.mark.parametrize("stop", ["timeout", "sigterm", "import"])
def test_a_transform_that_never_returns_is_stopped_within_seconds_and_the_rerun_goes_on(songs, endpoint, stop):
    """A transform in an endless loop at its 50th item never reaches a checkpoint: --timeout and
    SIGTERM each stop the run within a few seconds anyway (one line, its exit code, the lease
    freed), as --timeout does a module that loops at import; once the module is fixed the same
    command finishes."""
    project, client = songs
    looping = ("while True:\n    pass\n" if stop == "import" else "") + \
        "def to_v2(item):\n    while item['pk'] == 'k0050':\n        pass\n    return {**item, 'sk': 'v2'}\n"
    (project / "shape.py").write_text(looping)
    command = [os.path.join(os.path.dirname(sys.executable), "checker"), "migrate", "--offline", "--yes",
               "--endpoint-url", endpoint, "--page-items", "20", "--segments", "2"]
    started = time.monotonic()
    if stop in ("timeout", "import"):
        process = subprocess.Popen([*command, "--timeout", "2"], cwd=project, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    else:
        process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while time.monotonic() - started < 60 and int((ledger_entry(client).get("itemsRead") or {}).get("N", "0")) < 40:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    took = time.monotonic() - started
    assert process.returncode == (130 if stop == "sigterm" else 1), stderr
    assert took < 30, took            # the bound: its timeout (2 s) or the signal, plus 5 s of grace and the start
    assert "did not stop within 5 s" in stderr and "run the same command again" in stderr, stderr
    assert "Traceback" not in stderr
    (project / "shape.py").write_text("def to_v2(item):\n    return {**item, 'sk': 'v2'}\n")
    rerun = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)   # no lease left behind
    assert rerun.exit_code == 0, rerun.output
    assert sorted(target_keys(client)) == [f"k{n:04d}" for n in range(ITEMS)]


def test_the_timeout_stops_at_a_checkpoint_and_the_rerun_goes_on(songs, endpoint):
    """--timeout stops every worker after its page, frees the ledger's lease, and leaves a run
    that the same command resumes. On a simulated clock that moves 10 ms at each reading, the
    timeout lands mid-copy whatever the machine's speed (a real 3 s timeout once fired after a
    busy machine's copy had finished)."""
    from checker.api import Project, Target
    from checker.errors import CheckerError
    from checker.migrate import MigrateOptions
    from checker.poll import SimulatedClock
    project, client = songs
    loaded = Project.load(Target(checklist_path=project / "checklist.yaml", specs_dir=project / "table_specs",
                                 endpoint_url=endpoint))
    clock = SimulatedClock(step=0.01)
    options = MigrateOptions(offline=True, page_items=20, segments=2, timeout=1.0)
    with pytest.raises(CheckerError) as stopped:
        loaded.migrate(loaded.pending_migrations(), options, clock=clock)
    assert "--timeout passed" in str(stopped.value) and "checkpointed" in str(stopped.value)
    assert 0 < len(target_keys(client)) < ITEMS
    assert ledger_entry(client)["status"]["S"] == "running"
    # no lease left behind; another --segments (the default 4) resumes with the checkpoints' 2
    rerun = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)
    assert rerun.exit_code == 0, rerun.output
    assert "resuming with 2 segments, as its checkpoints were made (not --segments 4)" in rerun.stderr
    assert "differing key(s) copied again" not in rerun.stderr      # nothing skipped: nothing to repair
    assert sorted(target_keys(client)) == [f"k{n:04d}" for n in range(ITEMS)]


def test_a_ledger_edited_by_hand_is_one_line_and_a_malformed_lock_is_taken_over(songs, endpoint):
    project, client = songs
    cli = Cli(project)
    assert cli("migrate", "--offline", "--yes", "--endpoint-url", endpoint).exit_code == 0
    key = {"id": {"S": "table:songs_v2"}}
    client.update_item(TableName="checker_migrations", Key=key, UpdateExpression="SET itemsRead = :s",
                       ExpressionAttributeValues={":s": {"S": "lots"}})
    status = cli("migrate", "status", "--endpoint-url", endpoint)
    assert status.exit_code == 1 and "the item 'table:songs_v2' is malformed" in status.stderr, status.output
    assert "aws dynamodb get-item --table-name checker_migrations" in status.stderr and "Traceback" not in status.output
    client.update_item(TableName="checker_migrations", Key=key, UpdateExpression="SET itemsRead = :n",
                       ExpressionAttributeValues={":n": {"N": "0"}})

    client.put_item(TableName="checker_migrations", Item={"id": {"S": "lock"}, "owner": {"S": "someone"},
                                                          "since": {"S": "yesterday"}, "expiresAt": {"S": "tomorrow"}})
    (project / "migrations").mkdir()
    (project / "migrations" / "0001_mark.py").write_text(
        "TABLE = 'songs_v2'\ndef transform(item):\n    return None if 'm' in item else {**item, 'm': 1}\n")
    ran = cli("migrate", "--yes", "--endpoint-url", endpoint)    # a lock that can never expire: taken over
    assert ran.exit_code == 0, ran.output
    assert "Traceback" not in ran.output


def test_an_existing_target_unlike_its_spec_is_refused_before_anything_is_written(songs, endpoint):
    project, client = songs
    client.create_table(**spec("songs_v2"))             # a leftover keyed by pk only: the spec says pk + sk
    client.put_item(TableName="songs_v2", Item={"pk": {"S": "theirs"}})
    refused = Cli(project)("migrate", "--offline", "--yes", "--endpoint-url", endpoint)
    assert refused.exit_code == 1 and "songs_v2 exists, but not as its spec says" in refused.stderr, refused.output
    assert target_keys(client) == ["theirs"] and "Traceback" not in refused.output
