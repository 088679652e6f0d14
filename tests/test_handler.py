"""The Lambda handler through real API Gateway (REST, HTTP API) and Function URL event shapes."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from spotify_playlist.handler import JsonLineFormatter, handle

from .conftest import REGION, load_spec
from .runtime import create_cache_tables

EVENTS = Path(__file__).parent / "events"


def event(shape: str, action: str | None, user: str = "alice") -> dict:
    text = (EVENTS / f"{shape}.json").read_text().replace("USER", user)
    document = json.loads(text.replace("ACTION", action or ""))
    if action is None:
        document["queryStringParameters"] = None
    return document


class Context:
    aws_request_id = "req-1"


@pytest.fixture
def environment(fake_spotify):
    return {"SPOTIFY_API_BASE_URL": fake_spotify.api_base, "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url,
            "SPOTIFY_REFRESH_TOKEN": "refresh-dana", "DEFAULT_USER_ID": "dana",
            "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "secret"}


@pytest.fixture
def aws():
    with mock_aws():
        resource = create_cache_tables()
        resource.meta.client.create_table(**load_spec("user"))
        resource.Table("user").put_item(Item={"id": "alice", "refreshToken": "refresh-alice"})
        yield resource


def call(shape, action, environment, user="alice"):
    result = handle(event(shape, action, user), Context(), environ=environment)
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], json.loads(result["body"])


@pytest.mark.parametrize("shape, user", [("rest_api", "alice"), ("http_api", "alice"), ("function_url", "dana")])
def test_three_actions_for_the_calling_user(shape, user, aws, fake_spotify, environment):
    fake_spotify.add_user("alice", 75)
    fake_spotify.add_user("dana", 40)
    expected = {"alice": 75, "dana": 40}[user]  # Function URL without authorizer: DEFAULT_USER_ID

    assert call(shape, "liked-songs-stats", environment) == (
        200, {"metadata": {"message": "No cache found"}, "sampleTracks": [], "cacheAge": "N/A"})

    status, body = call(shape, "sync-liked-songs", environment)
    assert status == 200
    assert body["userId"] == user and body["sync"]["mode"] == "full" and body["sync"]["total"] == expected

    status, body = call(shape, "liked-songs-stats", environment)
    assert status == 200 and body["metadata"]["totalTracks"] == expected
    assert len(body["sampleTracks"]) == 5 and all(t["userId"] == user for t in body["sampleTracks"])

    status, body = call(shape, "clear-liked-cache", environment)
    assert (status, body["cleared"]) == (200, expected)
    assert call(shape, "liked-songs-stats", environment)[1]["metadata"] == {"message": "No cache found"}


def test_actions_touch_only_the_caller(aws, fake_spotify, environment):
    fake_spotify.add_user("alice", 30)
    fake_spotify.add_user("bob", 20)
    aws.Table("user").put_item(Item={"id": "bob", "refreshToken": "refresh-bob"})
    call("rest_api", "sync-liked-songs", environment, user="alice")
    call("http_api", "sync-liked-songs", environment, user="bob")
    assert call("rest_api", "clear-liked-cache", environment, user="alice")[1]["cleared"] == 30
    assert call("http_api", "liked-songs-stats", environment, user="bob")[1]["metadata"]["totalTracks"] == 20


def test_a_user_id_in_the_query_is_ignored(aws, fake_spotify, environment):
    fake_spotify.add_user("dana", 3)
    request = event("function_url", "liked-songs-stats")
    request["queryStringParameters"]["userId"] = "alice"
    body = json.loads(handle(request, Context(), environ=environment)["body"])
    assert body["metadata"] == {"message": "No cache found"}  # dana's (empty) cache, not alice's


@pytest.mark.parametrize("action, message", [("dance", "unknown action 'dance'"), (None, "missing ?action=")])
def test_unknown_or_missing_action_is_400(action, message, environment):
    status, body = call("http_api", action, environment)
    assert status == 400
    assert body == {"error": message, "actions": ["sync-liked-songs", "liked-songs-stats", "clear-liked-cache",
                                                  "health"]}


def test_no_user_is_401(environment):
    environment.pop("DEFAULT_USER_ID")
    status, body = call("function_url", "liked-songs-stats", environment)
    assert status == 401 and "DEFAULT_USER_ID" in body["error"]


def test_failure_is_500_without_stack_trace_and_one_error_line(aws, fake_spotify, environment, caplog):
    fake_spotify.add_user("alice", 10)
    fake_spotify.fail_next(403, times=1)
    with caplog.at_level(logging.INFO):
        status, body = call("rest_api", "sync-liked-songs", environment)
    assert status == 500
    assert body == {"error": "internal error", "action": "sync-liked-songs", "requestId": "req-1"}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = JsonLineFormatter().format(errors[0])
    assert "\n" not in line and json.loads(line)["error"] == "SpotifyError"
    assert "refresh-alice" not in caplog.text and "secret" not in caplog.text


def test_missing_cache_tables_every_action_answers(fake_spotify, environment, caplog):
    fake_spotify.add_user("dana", 5)
    with mock_aws(), caplog.at_level(logging.INFO):
        answers = {action: call("function_url", action, environment)
                   for action in ["sync-liked-songs", "liked-songs-stats", "clear-liked-cache"]}
    assert answers["sync-liked-songs"][0] == 503
    assert "liked_songs_metadata does not exist" in answers["sync-liked-songs"][1]["error"]
    assert answers["liked-songs-stats"] == (200, {
        "metadata": {"message": "No cache: table liked_songs_metadata does not exist (run `checker apply`)"},
        "sampleTracks": [], "cacheAge": "N/A"})
    assert answers["clear-liked-cache"][0] == 200 and answers["clear-liked-cache"][1]["cleared"] == 0
    # a deployment defect: ERROR, once per process and table, naming it and the fix
    errors = [json.loads(r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR]
    assert sorted(e["table"] for e in errors) == ["liked_songs", "liked_songs_metadata", "user"]
    assert all(e["event"] == "table_missing" and "checker apply" in e["message"] for e in errors)


def test_table_names_come_from_the_environment(fake_spotify, environment):
    fake_spotify.add_user("dana", 4)
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name=REGION)
        for name in ("liked_songs", "liked_songs_metadata"):
            resource.meta.client.create_table(**dict(load_spec(name), TableName=f"{name}-prod"))
        environment.update(LIKED_SONGS_TABLE="liked_songs-prod", LIKED_SONGS_METADATA_TABLE="liked_songs_metadata-prod")
        status, body = call("function_url", "sync-liked-songs", environment)
        assert (status, body["sync"]["total"]) == (200, 4)
        assert resource.Table("liked_songs-prod").scan()["Count"] == 4


def health_call(environment, user="dana"):
    return call("rest_api", "health", environment, user)  # the REST shape carries the authorizer's user


def test_health_is_ok_when_every_bound_table_and_setting_is_there(aws, environment):
    status, body = health_call(environment)
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert [(t["variable"], t["name"], t["status"]) for t in body["tables"]] == [
        ("USER_TABLE", "user", "ACTIVE"), ("LIKED_SONGS_TABLE", "liked_songs", "ACTIVE"),
        ("LIKED_SONGS_METADATA_TABLE", "liked_songs_metadata", "ACTIVE")]
    assert body["tables"][1]["indexes"] == {"userId-addedAt-index": "ACTIVE"}
    assert body["settings"] == {"SPOTIFY_CLIENT_ID": True, "SPOTIFY_CLIENT_SECRET": True,
                                "refresh_token": "environment"}


def test_health_names_each_missing_table_and_setting_and_never_a_value(aws, environment, caplog):
    aws.meta.client.delete_table(TableName="liked_songs")
    environment.pop("SPOTIFY_CLIENT_SECRET")
    environment.pop("SPOTIFY_REFRESH_TOKEN")
    environment["SPOTIFY_CLIENT_ID"] = "PLANTED-client-id-value"
    with caplog.at_level(logging.INFO):
        status, body = health_call(environment, user="nobody")
        health_call(environment, user="nobody")
    assert (status, body["status"]) == (503, "degraded")
    assert body["problems"][0].startswith("table liked_songs (LIKED_SONGS_TABLE) does not exist: run `checker apply")
    assert any("SPOTIFY_CLIENT_SECRET is not configured" in p for p in body["problems"])
    assert any("no Spotify refresh token" in p for p in body["problems"])
    assert body["settings"] == {"SPOTIFY_CLIENT_ID": True, "SPOTIFY_CLIENT_SECRET": False, "refresh_token": False}
    assert "PLANTED" not in json.dumps(body) and "PLANTED" not in caplog.text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "liked_songs" in errors[0].getMessage()  # once per process and table


def test_health_refresh_token_from_the_user_table_and_bound_names(aws, environment):
    environment.pop("SPOTIFY_REFRESH_TOKEN")
    status, body = health_call(environment, user="alice")  # alice's item holds a refreshToken
    assert (status, body["settings"]["refresh_token"]) == (200, "user table")
    assert "refresh-alice" not in json.dumps(body)
    environment["LIKED_SONGS_TABLE"] = "liked_songs-prod"
    status, body = health_call(environment, user="alice")
    assert status == 503 and body["problems"] == [
        "table liked_songs-prod (LIKED_SONGS_TABLE) does not exist: run `checker apply --env <environment>` "
        "(creates the tables from table_specs/)"]


def test_health_names_a_missing_index(environment):
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name=REGION)
        for name in ("user", "liked_songs_metadata"):
            resource.meta.client.create_table(**load_spec(name))
        spec = load_spec("liked_songs")
        spec.pop("GlobalSecondaryIndexes")
        spec["AttributeDefinitions"] = [a for a in spec["AttributeDefinitions"] if a["AttributeName"] != "addedAt"]
        resource.meta.client.create_table(**spec)
        status, body = health_call(environment)
    assert status == 503 and body["problems"] == [
        "table liked_songs has no index userId-addedAt-index: run `checker apply --env <environment>` "
        "(creates the tables from table_specs/)"]


def test_a_no_change_sync_through_the_handler_costs_one_spotify_call(aws, fake_spotify, environment):
    """The access token is reused across requests of one container until it expires."""
    fake_spotify.add_user("dana", 30)
    assert call("function_url", "sync-liked-songs", environment)[1]["sync"]["mode"] == "full"
    fake_spotify.reset_counts()
    status, body = call("function_url", "sync-liked-songs", environment)
    assert (status, body["sync"]["mode"]) == (200, "none")
    assert sum(fake_spotify.calls.values()) == 1 and fake_spotify.calls["/api/token"] == 0


@pytest.mark.parametrize("authorizer", [
    {"jwt": "not-an-object"},                       # a string where the JWT block belongs
    {"claims": ["sub", "alice"]},                   # a list where the claims belong
    {"lambda": {"userId": {"nested": True}}},       # an id that is no scalar
    {"jwt": {"claims": {"sub": ""}}},               # an empty id
])
def test_a_malformed_authorizer_is_a_401_never_a_500_nor_the_default_user(authorizer, environment, caplog):
    event = {"version": "2.0", "queryStringParameters": {"action": "liked-songs-stats"},
             "requestContext": {"authorizer": authorizer, "http": {"method": "GET"}}}
    with caplog.at_level("INFO"):
        result = handle(event, Context(), environ={**environment, "DEFAULT_USER_ID": "dana"})
    assert result["statusCode"] == 401
    assert "names no user" in json.loads(result["body"])["error"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf"])
def test_a_numeric_setting_that_does_not_parse_is_named_by_the_answer_and_by_health(aws, environment, caplog, value):
    environment["SYNC_TIME_RESERVE_SECONDS"] = value
    with caplog.at_level(logging.INFO):
        status, body = call("rest_api", "sync-liked-songs", environment)
    assert status == 500 and "setting SYNC_TIME_RESERVE_SECONDS" in body["error"] and value not in body["error"]
    assert [r.levelno for r in caplog.records if "SYNC_TIME_RESERVE_SECONDS" in r.getMessage()] == [logging.ERROR]
    status, body = health_call(environment)
    assert status == 503 and any("SYNC_TIME_RESERVE_SECONDS" in p for p in body["problems"]), body
