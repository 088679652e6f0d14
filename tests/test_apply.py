"""apply's behaviour under DynamoDB's concurrency rules, with moto's mock_aws."""
from __future__ import annotations

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from checker.apply import apply_changes
from checker.diff import ExpectedTable, diff_tables
from checker.live import read_tables
from checker.specs import TableSpec

from .conftest import REGION, load_spec


def client_error(code, operation):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Interfering:
    """Wraps a real client; `before_create(name)` runs just before CreateTable reaches it."""

    def __init__(self, client, create_table):
        self._client = client
        self._create_table = create_table

    def __getattr__(self, name):
        return getattr(self._client, name)

    def create_table(self, **params):
        return self._create_table(self._client, **params)


def plan_for(client, *names):
    expected = [ExpectedTable(TableSpec(f"{n}.json", load_spec(n))) for n in names]
    return diff_tables(expected, read_tables(client, expected))


@pytest.fixture
def dynamodb():
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def test_a_table_another_process_is_creating_is_waited_on(dynamodb):
    def race(real, **params):
        real.create_table(**params)  # the other process wins ...
        raise client_error("ResourceInUseException", "CreateTable")  # ... and we are told so
    changes = plan_for(dynamodb, "user")
    result = apply_changes(Interfering(dynamodb, race), changes, timeout=10)
    assert result.ok
    assert [o.status for o in result.outcomes] == ["already-in-progress"]


def test_limit_exceeded_backs_off_and_retries(dynamodb):
    attempts = []

    def limited(real, **params):
        attempts.append(params["TableName"])
        if len(attempts) <= 2:
            raise client_error("LimitExceededException", "CreateTable")
        return real.create_table(**params)
    slept = []
    result = apply_changes(Interfering(dynamodb, limited), plan_for(dynamodb, "user"), timeout=600,
                           sleep=slept.append)
    assert result.ok and len(attempts) == 3
    assert slept == [2.0, 4.0]


def test_limit_exceeded_past_the_deadline_fails_with_one_line(dynamodb):
    def always(real, **params):
        raise client_error("LimitExceededException", "CreateTable")
    result = apply_changes(Interfering(dynamodb, always), plan_for(dynamodb, "user"), timeout=1)
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert outcome.message.startswith("user: throttled by AWS on CreateTable")


def test_a_failure_stops_that_table_only(dynamodb):
    def broken(real, **params):
        if params["TableName"] == "user":
            raise client_error("ValidationException", "CreateTable")
        return real.create_table(**params)
    expected = [ExpectedTable(TableSpec("user.json", load_spec("user")), point_in_time_recovery=True),
                ExpectedTable(TableSpec("track.json", load_spec("track")))]
    changes = diff_tables(expected, read_tables(dynamodb, expected))
    result = apply_changes(Interfering(dynamodb, broken), changes, timeout=10)
    assert [(o.change.table, o.change.action, o.status) for o in result.outcomes] == [
        ("user", "create-table", "failed"), ("user", "enable-pitr", "not-run"), ("track", "create-table", "applied")]
    assert "ValidationException" in result.outcomes[0].message
    assert not result.ok


def test_manual_changes_are_never_attempted(dynamodb):
    spec = load_spec("action_history")
    dynamodb.create_table(TableName="action_history", KeySchema=spec["KeySchema"][:1],
                          AttributeDefinitions=spec["AttributeDefinitions"][:1],
                          ProvisionedThroughput=spec["ProvisionedThroughput"])
    changes = plan_for(dynamodb, "action_history")
    assert [(c.action, c.automatic) for c in changes] == [("replace-table", False)]
    result = apply_changes(dynamodb, changes, timeout=10)
    assert [o.status for o in result.outcomes] == ["manual"]
    assert dynamodb.describe_table(TableName="action_history")["Table"]["KeySchema"] == spec["KeySchema"][:1]


def test_only_whitelisted_operations_run(dynamodb):
    from checker.diff import Change
    rogue = Change("user", "drop", "bad", True, "DeleteTable", {"TableName": "user"})
    dynamodb.create_table(**load_spec("user"))
    result = apply_changes(dynamodb, [rogue], timeout=5)
    assert result.outcomes[0].status == "failed"
    assert "refusing to run DeleteTable" in result.outcomes[0].message
    assert dynamodb.list_tables()["TableNames"] == ["user"]
