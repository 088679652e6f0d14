"""Waiting for ACTIVE against a backend that really reports CREATING first (the proxy), and the
poll schedule on a simulated clock."""
from __future__ import annotations

import copy
import json

import boto3
import pytest

from checker.local.dynamo_proxy import DynamoProxy
from checker.model import table_state
from checker.wait import next_delay, wait_until_active

from .conftest import REGION, load_spec


class SimulatedTable:
    """A describe_table that says CREATING until the simulated clock reaches `ready_at`."""

    def __init__(self, ready_at: float):
        self.now = 0.0
        self.ready_at = ready_at
        self.polls: list = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def describe_table(self, TableName):
        self.polls.append(self.now)
        status = "ACTIVE" if self.now >= self.ready_at else "CREATING"
        return {"Table": {"TableName": TableName, "TableStatus": status,
                          "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}}


@pytest.mark.parametrize("ready_at", [0.2, 1.0, 3.0, 4.99])
def test_a_table_turning_active_is_seen_within_half_a_second(ready_at):
    table = SimulatedTable(ready_at)
    result = wait_until_active(table, ["t"], timeout=60, clock=table.clock, sleep=table.sleep)
    assert result.ready
    assert ready_at <= table.polls[-1] < ready_at + 0.5
    assert table.polls[1] - table.polls[0] < 0.1  # fast at first


def test_polling_backs_off():
    assert next_delay(0) == pytest.approx(0.05)
    assert next_delay(3.0) < 0.5
    assert next_delay(60) > 5 * next_delay(3.0)
    assert next_delay(7200) == 10.0


def test_table_state_counts_every_gsi():
    description = {"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [
        {"IndexName": "a", "IndexStatus": "ACTIVE"}, {"IndexName": "b", "IndexStatus": "CREATING"}]}
    state = table_state("t", description)
    assert not state.ready
    assert state.summary() == "ACTIVE, index b CREATING"
    assert table_state("t", None).status == "MISSING"


def describe_statuses(proxy, table):
    return [params for op, params in proxy.calls if op == "DescribeTable" and params["TableName"] == table]


@pytest.fixture
def only_two_specs(project):
    only = project / "only"
    only.mkdir()
    for name in ["user", "liked_songs"]:
        (only / f"{name}.json").write_text((project / "table_specs" / f"{name}.json").read_text())
    return only


def test_wait_sees_creating_then_active(cli, endpoint, only_two_specs):
    with DynamoProxy(endpoint, table_polls=3) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
        for name in ["user", "liked_songs"]:
            client.create_table(**load_spec(name))
        result = cli("wait", "--endpoint-url", proxy.url, "--specs", "only", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert "user: CREATING -> ACTIVE" in result.stderr
    assert "liked_songs: CREATING -> ACTIVE" in result.stderr
    assert "All 2 table(s) and their indexes are ACTIVE" in result.stdout
    assert len(describe_statuses(proxy, "user")) == 4  # polled while CREATING (3), then once ACTIVE


def test_wait_waits_for_a_gsi_on_an_active_table(cli, endpoint, only_two_specs):
    spec = load_spec("liked_songs")
    with DynamoProxy(endpoint, index_polls=3) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
        bare = {k: v for k, v in spec.items() if k != "GlobalSecondaryIndexes"}
        bare["AttributeDefinitions"] = spec["AttributeDefinitions"][:2]
        client.create_table(**bare)
        client.create_table(**load_spec("user"))
        client.update_table(TableName="liked_songs", AttributeDefinitions=spec["AttributeDefinitions"],
                            GlobalSecondaryIndexUpdates=[{"Create": spec["GlobalSecondaryIndexes"][0]}])
        described = client.describe_table(TableName="liked_songs")["Table"]  # uses up one CREATING poll
        assert described["TableStatus"] == "ACTIVE"  # what botocore's table_exists waiter would accept
        assert described["GlobalSecondaryIndexes"][0]["IndexStatus"] == "CREATING"
        result = cli("wait", "--endpoint-url", proxy.url, "--specs", "only", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "liked_songs: ACTIVE, index userId-addedAt-index CREATING -> ACTIVE" in result.stderr


def test_wait_timeout_names_what_is_not_active(cli, endpoint, only_two_specs):
    with DynamoProxy(endpoint, table_seconds=60) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
        client.create_table(**load_spec("liked_songs"))
        result = cli("wait", "--endpoint-url", proxy.url, "--specs", "only", "--timeout", "0.5")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: timed out after 0.5s; still not ACTIVE: liked_songs (CREATING); user (MISSING)")


def test_wait_for_a_table_nobody_creates_fails_after_the_grace(cli, endpoint, only_two_specs):
    result = cli("wait", "--endpoint-url", endpoint, "--specs", "only", "--grace", "0.3", "--timeout", "600")
    assert result.exit_code == 1
    assert ("table(s) liked_songs, user do not exist and nobody created them within 0.3s: run `checker apply "
            f"--specs only --endpoint-url {endpoint}") in result.stderr   # the run's options carried


def test_wait_for_a_gsi_nobody_creates_fails_after_the_grace(cli, endpoint, only_two_specs):
    """An ACTIVE table without a GSI its spec declares is not ready (the app's Query fails)."""
    spec = load_spec("liked_songs")
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    client.create_table(**{k: v for k, v in spec.items() if k != "GlobalSecondaryIndexes"}
                        | {"AttributeDefinitions": spec["AttributeDefinitions"][:2]})
    client.create_table(**load_spec("user"))
    result = cli("wait", "--endpoint-url", endpoint, "--specs", "only", "--grace", "0.3", "--timeout", "600")
    assert result.exit_code == 1, result.output
    assert "index(es) of liked_songs (userId-addedAt-index) do not exist and nobody created them within 0.3s" \
        in result.stderr
    assert "All 2 table(s)" not in result.stdout


def test_long_waits_beat_and_backfills_show_progress():
    from checker.model import table_state
    beats = []

    class Creating:
        def describe_table(self, TableName):
            return {"Table": {"TableName": TableName, "TableStatus": "ACTIVE", "KeySchema": [],
                              "GlobalSecondaryIndexes": [{"IndexName": "i", "IndexStatus": "CREATING", "Backfilling": True,
                                                          "ItemCount": 1200, "IndexSizeBytes": 34000}]}}
    clock = iter(range(0, 10_000, 5))
    result = wait_until_active(Creating(), ["t"], timeout=100, clock=lambda: next(clock), sleep=lambda s: None,
                               heartbeat=lambda elapsed, states: beats.append(elapsed))
    assert not result.ready and len(beats) >= 2
    state = result.states[0]
    assert state.summary() == "ACTIVE, index i CREATING (backfilling, 1,200 items, 34,000 bytes so far)"
    assert table_state("t", None).status == "MISSING"


def test_apply_adds_gsis_one_at_a_time_each_waited_on(cli, project, endpoint, only_two_specs):
    spec = load_spec("liked_songs")
    second = copy.deepcopy(spec["GlobalSecondaryIndexes"][0])
    second["IndexName"] = "userId-trackName-index"
    second["KeySchema"][1]["AttributeName"] = "trackName"
    spec["GlobalSecondaryIndexes"].append(second)
    spec["AttributeDefinitions"].append({"AttributeName": "trackName", "AttributeType": "S"})
    (project / "only" / "liked_songs.json").write_text(json.dumps(spec))
    with DynamoProxy(endpoint, table_polls=2, index_polls=3) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
        client.create_table(TableName="liked_songs", KeySchema=spec["KeySchema"],
                            AttributeDefinitions=spec["AttributeDefinitions"][:2],
                            ProvisionedThroughput=spec["ProvisionedThroughput"])
        result = cli("apply", "--endpoint-url", proxy.url, "--specs", "only", "--yes", "--format", "json")
    assert result.exit_code == 0, result.output
    # Between the two UpdateTable calls, the first index was seen ACTIVE by a DescribeTable.
    calls = [(op, p) for op, p in proxy.calls if p.get("TableName") == "liked_songs"]
    updates = [i for i, (op, _) in enumerate(calls) if op == "UpdateTable"]
    assert len(updates) == 2
    between = [p for op, p in calls[updates[0] + 1:updates[1]] if op == "DescribeTable"]
    assert len(between) >= 2
    assert "liked_songs: ACTIVE, index userId-addedAt-index CREATING -> ACTIVE" in result.stderr
    assert "liked_songs: ACTIVE, index userId-trackName-index CREATING -> ACTIVE" in result.stderr


def test_apply_fails_when_the_backend_acknowledges_a_gsi_and_drops_it(cli, endpoint, only_two_specs):
    """dynalite answers UpdateTable(Create GSI) with success and never builds the index."""
    spec = load_spec("liked_songs")
    with DynamoProxy(endpoint) as proxy:
        proxy.drop_index_creates = True
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
        client.create_table(TableName="liked_songs", KeySchema=spec["KeySchema"],
                            AttributeDefinitions=spec["AttributeDefinitions"][:2],
                            ProvisionedThroughput=spec["ProvisionedThroughput"])
        result = cli("apply", "--endpoint-url", proxy.url, "--specs", "only", "--yes", "--format", "json")
        assert result.exit_code == 1
        outcomes = json.loads(result.stdout)["changes"]
        index = next(o for o in outcomes if o["action"] == "create-index")
        assert index["status"] == "not-in-effect"
        assert index["message"] == "re-read after apply: index userId-addedAt-index does not exist; create it"
        plan = cli("plan", "--endpoint-url", proxy.url, "--specs", "only", "--detailed-exitcode")
        assert plan.exit_code == 2 and "userId-addedAt-index" in plan.stdout


def test_a_wait_that_times_out_prints_one_json_document(cli, endpoint, only_two_specs):
    with DynamoProxy(endpoint, table_polls=10_000) as proxy:
        boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION).create_table(**load_spec("user"))
        result = cli("wait", "--endpoint-url", proxy.url, "--specs", "only", "--timeout", "0.2", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ready"] is False  # one parseable document, the error on stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: timed out after 0.2s")


def test_plan_marks_an_index_still_building_and_check_fails_on_it(cli, endpoint, only_two_specs):
    with DynamoProxy(endpoint, index_polls=10_000) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
        spec = load_spec("liked_songs")
        bare = {k: v for k, v in spec.items() if k != "GlobalSecondaryIndexes"}
        bare["AttributeDefinitions"] = [a for a in spec["AttributeDefinitions"] if a["AttributeName"] != "addedAt"]
        client.create_table(**bare)
        client.create_table(**load_spec("user"))
        client.update_table(TableName="liked_songs", AttributeDefinitions=spec["AttributeDefinitions"],
                            GlobalSecondaryIndexUpdates=[{"Create": spec["GlobalSecondaryIndexes"][0]}])
        plan = cli("plan", "--endpoint-url", proxy.url, "--specs", "only", "--detailed-exitcode")
        checked = cli("check", "--endpoint-url", proxy.url, "--specs", "only", "--only", "tables")
    assert plan.exit_code == 0  # nothing to change ...
    assert "Not ready (1)" in plan.stdout and "index userId-addedAt-index CREATING" in plan.stdout  # ... not usable yet
    assert checked.exit_code == 1 and "FAIL  table:liked_songs: table liked_songs is not ready" in checked.stdout
