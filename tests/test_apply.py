"""apply's behaviour under DynamoDB's concurrency rules, with moto's mock_aws."""
from __future__ import annotations

import json

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from checker.api import Project, Target
from checker.apply import apply_changes
from checker.diff import diff_tables
from checker.live import read_tables
from checker.local.dynamo_proxy import DynamoProxy
from checker.model import ExpectedTable, TableSpec

from .conftest import REGION, load_spec

CONCURRENT = "Subscriber limit exceeded: Only 10 tables can be created, updated, or deleted simultaneously"


def client_error(code, operation, message=None):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


class Interfering:
    """Wraps a real client; `create_table(real, **params)` (or any other operation given by its
    boto3 name) runs instead of the real call, which it may make."""

    def __init__(self, client, create_table=None, **operations):
        self._client = client
        self._operations = {"create_table": create_table, **operations}
        self.calls = []

    def __getattr__(self, name):
        replacement = self._operations.get(name)
        if replacement is None:
            return getattr(self._client, name)

        def call(**params):
            self.calls.append(name)
            return replacement(self._client, **params)
        return call


def plan_for(client, *names):
    expected = [ExpectedTable(TableSpec(f"{n}.json", load_spec(n))) for n in names]
    return diff_tables(expected, read_tables(client, expected))


class SimulatedTime:
    """A clock that moves only when apply sleeps, so backoffs are exact and instant."""

    def __init__(self):
        self.now = 0.0
        self.slept: list = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def backoffs(self) -> list:
        return [s for s in self.slept if s >= 1]


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
            raise client_error("LimitExceededException", "CreateTable", CONCURRENT)
        return real.create_table(**params)
    time = SimulatedTime()
    result = apply_changes(Interfering(dynamodb, limited), plan_for(dynamodb, "user"), timeout=600,
                           sleep=time.sleep, clock=time.clock)
    assert result.ok and len(attempts) == 3
    assert time.backoffs() == [2.0, 4.0]


def test_limit_exceeded_until_the_deadline_fails_counting_the_calls_and_not_overshooting(dynamodb):
    def always(real, **params):
        raise client_error("LimitExceededException", "CreateTable", CONCURRENT)
    time = SimulatedTime()
    client = Interfering(dynamodb, always)
    result = apply_changes(client, plan_for(dynamodb, "user"), timeout=40, sleep=time.sleep, clock=time.clock)
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert time.backoffs() == [2.0, 4.0, 8.0, 16.0] and time.now <= 40
    assert outcome.message == (f"user: DynamoDB limit on concurrent table operations reached (LimitExceededException); "
                               f"gave up after {len(client.calls)} call(s) over 30s, at the --timeout")
    assert len(client.calls) == 5


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
    from checker.model import Change
    rogue = Change("user", "drop", "bad", True, "DeleteTable", {"TableName": "user"})
    dynamodb.create_table(**load_spec("user"))
    result = apply_changes(dynamodb, [rogue], timeout=5)
    assert result.outcomes[0].status == "failed"
    assert "refusing to run DeleteTable" in result.outcomes[0].message
    assert dynamodb.list_tables()["TableNames"] == ["user"]


def test_the_daily_capacity_decrease_limit_fails_at_once(dynamodb):
    dynamodb.create_table(**dict(load_spec("track"), ProvisionedThroughput={"ReadCapacityUnits": 9,
                                                                           "WriteCapacityUnits": 1}))
    message = ("Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. "
               "After the first 4 decreases, each subsequent decrease in the same UTC day can be performed at "
               "most once every 3600 seconds.")

    def limited(real, **params):
        raise botocore.exceptions.ClientError({"Error": {"Code": "LimitExceededException", "Message": message}},
                                              "UpdateTable")
    client = Interfering(dynamodb, update_table=limited)
    time = SimulatedTime()
    result = apply_changes(client, plan_for(dynamodb, "track"), timeout=600, sleep=time.sleep, clock=time.clock,
                           allow_capacity_changes=True)
    (outcome,) = result.outcomes
    assert (outcome.status, client.calls, time.backoffs()) == ("failed", ["update_table"], [])
    assert "daily limit on capacity decreases" in outcome.message and "UTC day" in outcome.message


def test_pitr_right_after_create_waits_out_continuous_backups_unavailable(dynamodb):
    refusals = []

    def not_yet(real, **params):
        if len(refusals) < 2:
            refusals.append(1)
            raise client_error("ContinuousBackupsUnavailableException", "UpdateContinuousBackups")
        return real.update_continuous_backups(**params)
    expected = [ExpectedTable(TableSpec("user.json", load_spec("user")), point_in_time_recovery=True)]
    changes = diff_tables(expected, read_tables(dynamodb, expected))
    time = SimulatedTime()
    result = apply_changes(Interfering(dynamodb, update_continuous_backups=not_yet), changes, timeout=600,
                           sleep=time.sleep, clock=time.clock)
    assert [o.status for o in result.outcomes] == ["applied", "applied"] and time.backoffs() == [2.0, 4.0]
    description = dynamodb.describe_continuous_backups(TableName="user")["ContinuousBackupsDescription"]
    assert description["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_a_billing_switch_is_held_back_unless_allowed(dynamodb):
    spec = load_spec("liked_songs")
    on_demand = {k: v for k, v in spec.items() if k != "ProvisionedThroughput"}
    on_demand["GlobalSecondaryIndexes"] = [{k: v for k, v in i.items() if k != "ProvisionedThroughput"}
                                           for i in spec["GlobalSecondaryIndexes"]]
    dynamodb.create_table(**dict(on_demand, BillingMode="PAY_PER_REQUEST"))
    client = Interfering(dynamodb, update_table=lambda real, **p: real.update_table(**p))
    result = apply_changes(client, plan_for(dynamodb, "liked_songs"), timeout=10)
    (outcome,) = result.outcomes
    assert (outcome.change.action, outcome.status, client.calls) == ("update-billing", "held", [])
    assert "--allow-capacity-changes" in outcome.message and not result.ok
    assert dynamodb.describe_table(TableName="liked_songs")["Table"]["BillingModeSummary"]["BillingMode"] == \
        "PAY_PER_REQUEST"
    result = apply_changes(client, plan_for(dynamodb, "liked_songs"), timeout=10, allow_capacity_changes=True)
    assert [o.status for o in result.outcomes] == ["applied"] and result.ok
    assert dynamodb.describe_table(TableName="liked_songs")["Table"]["BillingModeSummary"]["BillingMode"] == \
        "PROVISIONED"


def test_a_table_that_needs_a_person_gets_no_other_change(dynamodb):
    spec = load_spec("track")
    dynamodb.create_table(TableName="track", KeySchema=[{"AttributeName": "status", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "status", "AttributeType": "S"}],
                          ProvisionedThroughput=spec["ProvisionedThroughput"])
    client = Interfering(dynamodb, update_table=lambda real, **p: real.update_table(**p))
    result = apply_changes(client, plan_for(dynamodb, "track"), timeout=10)
    assert [(o.change.action, o.status) for o in result.outcomes] == [("replace-table", "manual"),
                                                                     ("create-index", "held")]
    assert client.calls == [] and "replace-table" in result.outcomes[1].message


def test_tags_are_applied_and_verified(dynamodb):
    from checker.apply import verify_applied
    spec = dict(load_spec("user"), Tags=[{"Key": "team", "Value": "music"}])
    dynamodb.create_table(**load_spec("user"))
    arn = dynamodb.describe_table(TableName="user")["Table"]["TableArn"]
    dynamodb.tag_resource(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "dana"}])
    expected = [ExpectedTable(TableSpec("user.json", spec))]
    result = verify_applied(dynamodb, expected, apply_changes(dynamodb, diff_tables(expected, read_tables(
        dynamodb, expected)), timeout=10))
    assert [(o.change.action, o.status) for o in result.outcomes] == [("tag-table", "applied")]
    tags = {t["Key"]: t["Value"] for t in dynamodb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert tags == {"owner": "dana", "team": "music"}
    assert diff_tables(expected, read_tables(dynamodb, expected)) == []


def test_a_change_the_backend_acknowledges_but_does_not_make_is_not_in_effect(dynamodb):
    from checker.apply import verify_applied
    spec = load_spec("user")
    expected = [ExpectedTable(TableSpec("user.json", dict(spec, TableClass="STANDARD_INFREQUENT_ACCESS")))]
    dynamodb.create_table(**spec)
    # moto answers UpdateTable(TableClass=...) with success and never reports the new class
    result = verify_applied(dynamodb, expected, apply_changes(dynamodb, diff_tables(
        expected, read_tables(dynamodb, expected)), timeout=10))
    (outcome,) = result.outcomes
    assert (outcome.change.action, outcome.status) == ("update-table-class", "not-in-effect")
    assert outcome.message == "re-read after apply: table class is STANDARD, spec wants STANDARD_INFREQUENT_ACCESS"
    assert not result.ok


def test_a_racing_creator_with_other_keys_is_not_a_success(dynamodb):
    """Someone creates liked_songs with other keys between the plan and the CreateTable: the
    table exists, but it is not the spec's: a manual step, not "already in progress"."""
    from checker.apply import verify_applied

    def race(real, **params):
        other = dict(params, KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}])
        other.pop("GlobalSecondaryIndexes", None)
        real.create_table(**other)
        raise client_error("ResourceInUseException", "CreateTable")
    expected = [ExpectedTable(TableSpec("liked_songs.json", load_spec("liked_songs")))]
    changes = diff_tables(expected, read_tables(dynamodb, expected))
    result = verify_applied(dynamodb, expected, apply_changes(Interfering(dynamodb, race), changes, timeout=10),
                            settle=0)
    statuses = {(o.change.action, o.status) for o in result.outcomes}
    assert ("replace-table", "manual") in statuses and not result.ok


def test_tags_read_late_are_reread_until_they_show(endpoint, tmp_path):
    """AWS applies TagResource asynchronously: a read right after it may not show the tags."""
    specs = tmp_path
    (specs / "user.json").write_text(json.dumps(dict(load_spec("user"), Tags=[{"Key": "team", "Value": "music"}])))
    boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION).create_table(**load_spec("user"))
    with DynamoProxy(endpoint) as proxy:
        proxy.tag_lag_reads = 2
        result, waited = Project.load(Target(specs_dir=specs, endpoint_url=proxy.url), use_checklist=False).apply(timeout=30)
        reads = proxy.operations().count("ListTagsOfResource")
    assert [(o.change.action, o.status) for o in result.outcomes] == [("tag-table", "applied")]
    assert reads >= 4  # the plan's, then two stale answers, then the one that shows them


def test_every_change_is_verified_even_when_another_failed(endpoint, tmp_path):
    """A failed PITR must not hide that a change reported made is not in effect."""
    specs = tmp_path
    (specs / "user.json").write_text(json.dumps(dict(load_spec("user"), TableClass="STANDARD_INFREQUENT_ACCESS")))
    boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION).create_table(**load_spec("user"))
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("UpdateContinuousBackups", "ValidationException", "no")
        project = Project.load(Target(specs_dir=specs, endpoint_url=proxy.url), use_checklist=False)
        project.tables[0] = ExpectedTable(project.tables[0].spec, point_in_time_recovery=True, spec_name="user")
        result, waited = project.apply(timeout=30)
    statuses = {o.change.action: o.status for o in result.outcomes}
    # moto acknowledges a table class change and never makes it: the re-read says so
    assert statuses == {"update-table-class": "not-in-effect", "enable-pitr": "failed"}


@pytest.mark.parametrize("message, retried", [
    (CONCURRENT, True),
    ("Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table", True),
    ("Update to PayPerRequest mode are limited to once in 1 day(s).", False),
    ("Subscriber limit exceeded: There is a limit of 2500 tables per account", False),   # a quota: no wait clears it
    ("something DynamoDB never said before", False),
])
def test_limit_exceeded_is_retried_only_for_the_meanings_that_clear(dynamodb, message, retried):
    def limited(real, **params):
        raise client_error("LimitExceededException", "CreateTable", message)
    time = SimulatedTime()
    client = Interfering(dynamodb, limited)
    result = apply_changes(client, plan_for(dynamodb, "user"), timeout=1800, sleep=time.sleep, clock=time.clock)
    (outcome,) = result.outcomes
    assert outcome.status == "failed"
    assert (len(client.calls) > 1) is retried
    if not retried:
        assert time.now == 0 and message in outcome.message


def test_plan_prompt_and_apply_agree_on_what_apply_does(dynamodb):
    """One table needs replace-table and has another change; another table is missing: plan's
    automatic count, the changes the prompt counts and what apply makes are the same."""
    from checker.policy import Decision, counts, to_apply
    spec = load_spec("action_history")
    dynamodb.create_table(TableName="action_history", KeySchema=spec["KeySchema"][:1],
                          AttributeDefinitions=spec["AttributeDefinitions"][:1],
                          ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 5})
    changes = plan_for(dynamodb, "action_history", "user")
    assert {c.action for c in changes} >= {"replace-table", "update-throughput", "create-table"}
    automatic = counts(changes)[Decision.AUTOMATIC]
    result = apply_changes(dynamodb, changes, timeout=10, allow_capacity_changes=True)
    made = [o for o in result.outcomes if o.status == "applied"]
    assert automatic == len(to_apply(changes)) == len(made) == 1   # only user's create-table
    assert {o.change.action: o.status for o in result.outcomes if o.change.table == "action_history"} == {
        "replace-table": "manual", "update-throughput": "held"}


def test_in_use_while_everything_is_active_is_not_waited_out(dynamodb):
    """A stream re-enabled too soon is refused with ResourceInUseException although nothing is
    building: after one retry it fails with DynamoDB's message, not at the --timeout."""
    dynamodb.create_table(**load_spec("user"))
    spec = dict(load_spec("user"), StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    expected = [ExpectedTable(TableSpec("user.json", spec))]

    def refused(real, **params):
        raise client_error("ResourceInUseException", "UpdateTable", "Attempt to change a resource which is still in use")
    time = SimulatedTime()
    client = Interfering(dynamodb, update_table=refused)
    result = apply_changes(client, diff_tables(expected, read_tables(dynamodb, expected)), timeout=1800,
                           sleep=time.sleep, clock=time.clock)
    (outcome,) = result.outcomes
    assert outcome.status == "failed" and "still in use" in outcome.message
    assert len(client.calls) == 2 and time.now < 10


def many_specs(folder, count: int):
    """`count` copies of the user spec under other names."""
    for n in range(count):
        (folder / f"t{n:02d}.json").write_text(json.dumps(dict(load_spec("user"), TableName=f"t{n:02d}")))
    return folder


def counting(client) -> list:
    calls: list = []
    client.meta.events.register("before-call.dynamodb", lambda model, **kwargs: calls.append(model.name))
    return calls


def test_apply_of_a_new_environment_lists_the_tables_instead_of_describing_each(dynamodb, tmp_path):
    project = Project.load(Target(specs_dir=many_specs(tmp_path, 50)), use_checklist=False)
    calls = counting(project.dynamodb())
    changes = project.plan(for_apply=True)
    assert calls.count("DescribeTable") == 32 and calls.count("ListTables") == 1   # a first wave, then the list
    assert sorted(c.table for c in changes) == [f"t{n:02d}" for n in range(50)]
    calls.clear()
    assert len(project.plan()) == 50 and calls.count("DescribeTable") == 50 and "ListTables" not in calls  # plan: each


def test_an_environment_that_exists_is_described_table_by_table_without_a_list(dynamodb, tmp_path):
    project = Project.load(Target(specs_dir=many_specs(tmp_path, 40)), use_checklist=False)
    result, waited = project.apply(timeout=30)
    assert result.ok and waited.ready
    calls = counting(project.dynamodb())
    assert project.plan(for_apply=True) == [] and "ListTables" not in calls


def test_a_role_that_may_not_list_tables_describes_each(dynamodb, tmp_path):
    project = Project.load(Target(specs_dir=many_specs(tmp_path, 40)), use_checklist=False)
    client = project.dynamodb()
    calls = counting(client)

    def refuse(**kwargs):
        raise client_error("AccessDeniedException", "ListTables", "not authorized to perform: dynamodb:ListTables")
    client.meta.events.register("before-call.dynamodb.ListTables", refuse)
    assert len(project.plan(for_apply=True)) == 40 and calls.count("DescribeTable") == 40


def test_a_table_the_list_does_not_show_yet_is_waited_for_and_re_read(dynamodb, tmp_path):
    """ListTables may lag a table someone just created: apply's CreateTable is refused as in use,
    waited on, and the table re-read against its spec, not reported created."""
    project = Project.load(Target(specs_dir=many_specs(tmp_path, 40)), use_checklist=False)
    dynamodb.create_table(**dict(load_spec("user"), TableName="t39"))
    client = project.dynamodb()

    def lagging(parsed, **kwargs):
        parsed["TableNames"] = [n for n in parsed.get("TableNames", []) if n != "t39"]
    client.meta.events.register("after-call.dynamodb.ListTables", lagging)
    result, waited = project.apply(timeout=30)
    assert result.ok and waited.ready
    statuses = {o.change.table: o.status for o in result.outcomes}
    assert statuses["t39"] == "already-in-progress" and statuses["t00"] == "applied"
