"""The checklist's IAM permissions against the DynamoDB calls spotify_playlist really makes.

Every runtime action (sync: full, incremental with additions and removals, forced full; stats;
clear; health) runs through the Lambda handler against moto, with a botocore event hook recording
each operation and the table or index ARN it touches. The test fails when the least-privilege
policy the checklist means (`checker iam-policy`) does not allow one of them, and when an entry
not marked `used_by: external` grants an action the runtime never makes."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from checker.checklist import load_checklist
from checker.iam_policy import evaluate, least_privilege_policy, table_arn
from checker.model import ExpectedTable
from checker.specs import load_specs
from spotify_playlist.handler import handle

from .conftest import REGION, ROOT, SPECS

ACCOUNT = "123456789012"  # moto's


def arns_touched(operation: str, params: dict) -> list:
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [table_arn(REGION, ACCOUNT, name) for name in params.get("RequestItems", {})]
    return [table_arn(REGION, ACCOUNT, params["TableName"], params.get("IndexName"))]


@pytest.fixture
def recorded(fake_spotify):
    """{(dynamodb:Operation, ARN)} of every call the runtime made while serving every action."""
    calls = set()

    def record(params, model, **kwargs):
        for arn in arns_touched(model.name, params):
            calls.add((f"dynamodb:{model.name}", arn))

    with mock_aws():
        resource = boto3.resource("dynamodb", region_name=REGION)
        for spec in load_specs(SPECS):
            resource.meta.client.create_table(**spec.request)
        resource.Table("user").put_item(Item={"id": "dana", "refreshToken": "refresh-dana"})
        resource.meta.client.meta.events.register("before-parameter-build.dynamodb", record)
        # the store's song writes go through a low-level client it makes from the default session
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb", record)
        fake_spotify.add_user("dana", 120)
        environ = {"DEFAULT_USER_ID": "dana", "SPOTIFY_API_BASE_URL": fake_spotify.api_base,
                   "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url, "SPOTIFY_CLIENT_ID": "id",
                   "SPOTIFY_CLIENT_SECRET": "secret"}

        def call(action, **query):
            event = {"queryStringParameters": {"action": action, **query}, "requestContext": {}}
            answer = handle(event, None, environ=environ, resource_factory=lambda: resource)
            assert answer["statusCode"] == 200, answer["body"]
            return json.loads(answer["body"])

        call("health")
        assert call("sync-liked-songs")["sync"]["mode"] == "full"
        fake_spotify.add_tracks("dana", 3)
        fake_spotify.remove_tracks("dana", fake_spotify.saved_ids("dana")[10:12])
        assert call("sync-liked-songs")["sync"]["mode"] == "incremental"
        assert call("sync-liked-songs", full="true")["sync"]["mode"] == "full"
        call("liked-songs-stats")
        assert call("clear-liked-cache")["cleared"] == 121
    boto3.setup_default_session()  # a fresh default session, without the recorder
    return calls


@pytest.fixture
def checklist():
    specs = load_specs(SPECS)
    return load_checklist(ROOT / "checklist.yaml", {s.name for s in specs}), [
        ExpectedTable(s, spec_name=s.name) for s in specs]


def test_the_checklist_permissions_cover_every_call_the_runtime_makes(recorded, checklist):
    document, tables = checklist
    policy = least_privilege_policy(document.permissions, tables, REGION, ACCOUNT)
    assert {a.split(":")[1] for a, _ in recorded} >= {"DescribeTable", "GetItem", "PutItem", "UpdateItem",
                                                      "DeleteItem", "Query", "BatchWriteItem"}
    uncovered = sorted((action, arn) for action, arn in recorded
                       if not evaluate([("policy", policy)], action, arn).allowed)
    assert uncovered == [], "add these to checklist.yaml's iam.permissions"


def test_no_runtime_permission_grants_an_action_the_runtime_never_makes(recorded, checklist):
    document, tables = checklist
    unused = []
    for permission in document.permissions:
        if permission.used_by == "external":
            continue
        arn = table_arn(REGION, ACCOUNT, permission.table, permission.index)
        unused += [(action, arn) for action in permission.actions if (action, arn) not in recorded]
    assert unused == [], "remove these from checklist.yaml, or mark the entry used_by: external"
