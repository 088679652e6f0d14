"""The Lambda handler: `?action=` routing for API Gateway (REST and HTTP API) and Function URLs.

Every answer is JSON. An unknown action is a 400; any failure is a 500 whose body holds no stack
trace and which is logged exactly once at ERROR, so that counting ERROR lines in CloudWatch
(`checker smoke`) counts failures. Log records are one line of JSON each.

Configuration (environment variables):
  DEFAULT_USER_ID            the user when the request carries no authorizer identity
  LIKED_SONGS_TABLE, LIKED_SONGS_METADATA_TABLE   cache table names (defaults: liked_songs,
                             liked_songs_metadata; the checklist's `lambda.bindings` checks them)
  USER_TABLE                 where a user's Spotify refresh token is kept (default: user)
  SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET, SPOTIFY_REFRESH_TOKEN   Spotify credentials
  SPOTIFY_API_BASE_URL, SPOTIFY_ACCOUNTS_BASE_URL  other Spotify endpoints (tests, local stack)
  CACHE_MAX_AGE_SECONDS      full sync when the last one is older (default 86400)
  SYNC_TIME_RESERVE_SECONDS  a full sync pauses when the invocation has less left (default 5);
                             the next sync-liked-songs call goes on from where it stopped
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Optional

import boto3
import botocore.exceptions
from botocore.config import Config

from .dynamo import CacheTableMissing, CacheTables, LikedSongsStore
from .health import BINDINGS, health, missing_tables, number_setting
from .liked_songs_cache import DEFAULT_MAX_AGE_SECONDS, TIME_RESERVE_SECONDS, LikedSongsCache
from .spotify import (
    DEFAULT_ACCOUNTS_BASE,
    DEFAULT_API_BASE,
    SpotifyClient,
    SpotifyCredentials,
)

ACTIONS = ("sync-liked-songs", "liked-songs-stats", "clear-liked-cache", "health")
log = logging.getLogger("spotify_playlist")


class JsonLineFormatter(logging.Formatter):
    """One JSON object a line: `{"level": "ERROR", "logger": ..., "message": ...}`.

    A message that is itself JSON is merged in, so fields stay searchable."""

    def format(self, record: logging.LogRecord) -> str:
        document = {"level": record.levelname, "logger": record.name, "time": int(record.created * 1000)}
        message = record.getMessage()
        try:
            parsed = json.loads(message)
            document.update(parsed if isinstance(parsed, dict) else {"message": message})
        except ValueError:
            document["message"] = message
        return json.dumps(document, default=str)


# The AWS SDK and HTTP libraries log whole requests and responses at DEBUG: a GetItem of the user
# item (its refresh token), the session token in signed headers. Whatever LOG_LEVEL says, they
# never log below WARNING.
QUIET_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer")


def configure_logging() -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonLineFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonLineFormatter())
        root.handlers = [handler]  # the Lambda runtime's default handler would print a second line
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    root.setLevel(level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO")
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


class BadRequest(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra


MAX_SHOWN = 100  # characters of a caller's value echoed in an answer or a log line


def query_parameters(event) -> dict:
    """The query parameters, {} for any event or parameter block that is not a mapping."""
    parameters = event.get("queryStringParameters") if isinstance(event, dict) else None
    return parameters if isinstance(parameters, dict) else {}


def shown(value) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def caller_user_id(event: dict, default: Optional[str]) -> str:
    """The calling user from the authorizer (Cognito/JWT/Lambda authorizer), else the default.

    A user id in the query string is deliberately not honoured: each action acts for the
    caller only."""
    authorizer = dig(event, "requestContext", "authorizer")
    for candidate in (
        dig(authorizer, "jwt", "claims", "sub"),          # HTTP API JWT authorizer
        dig(authorizer, "claims", "sub"),                 # REST API Cognito authorizer
        dig(authorizer, "lambda", "userId"),              # HTTP API Lambda authorizer
        dig(authorizer, "userId"),                        # REST API Lambda authorizer
        dig(authorizer, "principalId"),
    ):
        if isinstance(candidate, (str, int)) and not isinstance(candidate, bool) and str(candidate).strip():
            return str(candidate)
    if authorizer:  # an authorizer ran but named nobody this app can read: never the default user
        raise BadRequest(401, "the authorizer's context names no user (jwt.claims.sub, claims.sub, lambda.userId, "
                              "userId or principalId)")
    if default:
        return default
    raise BadRequest(401, "no calling user: configure an authorizer or DEFAULT_USER_ID")


def dig(document, *keys):
    """document[k1][k2]... when every level is a mapping, else None: a malformed event is the
    caller's mistake (a 4xx), never this function's crash (a 500)."""
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def response(status: int, body: dict) -> dict:
    """The proxy-integration shape both API Gateway flavours and Function URLs accept."""
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, default=str)}


def refresh_token_for(user_id: str, resource, environ=os.environ) -> Optional[str]:
    """The user's refresh token from the user table, else SPOTIFY_REFRESH_TOKEN."""
    user_table = BINDINGS[0].name(environ)
    try:
        item = resource.Table(user_table).get_item(Key={"id": user_id}).get("Item") or {}
        if item.get("refreshToken"):
            return item["refreshToken"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        missing_tables.report(user_table, BINDINGS[0].variable)
    return environ.get("SPOTIFY_REFRESH_TOKEN")


def dynamodb_resource():
    """botocore's standard retry mode backs off on ProvisionedThroughputExceeded and throttling:
    on a provisioned table, the table's write capacity bounds a full sync, and no item is lost."""
    return boto3.resource("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 10}))


def seconds_left(context) -> Optional[Callable[[], float]]:
    """The invocation's remaining time, from Lambda's context (None outside Lambda: no budget)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return (lambda: remaining() / 1000) if callable(remaining) else None


def build_cache(user_id: str, environ=os.environ, resource=None,
                remaining: Optional[Callable[[], float]] = None) -> LikedSongsCache:
    resource = resource or dynamodb_resource()
    credentials = SpotifyCredentials(refresh_token=refresh_token_for(user_id, resource, environ),
                                     client_id=environ.get("SPOTIFY_CLIENT_ID"),
                                     client_secret=environ.get("SPOTIFY_CLIENT_SECRET"))
    spotify = SpotifyClient(credentials, api_base=environ.get("SPOTIFY_API_BASE_URL", DEFAULT_API_BASE),
                            accounts_base=environ.get("SPOTIFY_ACCOUNTS_BASE_URL", DEFAULT_ACCOUNTS_BASE))
    store = LikedSongsStore(resource, CacheTables.from_environment(environ))
    try:
        max_age = number_setting(environ, "CACHE_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS)
        reserve = number_setting(environ, "SYNC_TIME_RESERVE_SECONDS", TIME_RESERVE_SECONDS)
    except ValueError as exc:   # the function is misconfigured: said, naming the setting (`health` too)
        raise BadRequest(500, str(exc)) from None
    return LikedSongsCache(store, spotify, max_age_seconds=max_age, remaining=remaining, reserve=reserve)


def run_action(action: str, cache: LikedSongsCache, user_id: str, params: dict) -> dict:
    if action == "sync-liked-songs":
        full = str(params.get("full", "")).lower() in ("1", "true", "yes")
        try:
            result = cache.sync(user_id, force_full=full)
        except CacheTableMissing as exc:
            missing_tables.report(exc.table)
            raise BadRequest(503, f"liked-songs cache unavailable: table {exc.table} does not exist",
                             fix="run `checker apply` to create the cache tables") from None
        return {"userId": user_id, "sync": result.to_dict()}
    if action == "liked-songs-stats":
        return cache.stats(user_id)
    if action == "clear-liked-cache":
        return cache.clear(user_id)
    raise AssertionError(action)


def handle(event: dict, context=None, environ=os.environ,
           resource_factory: Callable[[], object] = dynamodb_resource) -> dict:
    """One request. `resource_factory` gives the DynamoDB resource (the local stack points it at
    its moto server)."""
    started = time.monotonic()
    request_id = getattr(context, "aws_request_id", None)
    action = query_parameters(event).get("action")
    try:
        if action not in ACTIONS:
            raise BadRequest(400, f"unknown action {shown(action)}" if action else "missing ?action=",
                             actions=list(ACTIONS))
        status = 200
        if action == "health":
            try:
                user_id: Optional[str] = caller_user_id(event, environ.get("DEFAULT_USER_ID"))
            except BadRequest:
                user_id = None  # health needs no user; the refresh token is then looked for in the environment
            status, body = health(resource_factory(), environ, user_id)
        else:
            user_id = caller_user_id(event, environ.get("DEFAULT_USER_ID"))
            cache = build_cache(user_id, environ, resource_factory(), seconds_left(context))
            body = run_action(action, cache, user_id, query_parameters(event))
        log.info(json.dumps({"event": "request", "action": action, "status": status, "requestId": request_id,
                             "ms": int((time.monotonic() - started) * 1000)}))
        return response(status, body)
    except BadRequest as exc:   # a 500 here is the function's own misconfiguration: an ERROR line, counted
        (log.error if exc.status == 500 else log.info)(json.dumps({
            "event": "request", "action": action if action in ACTIONS else shown(action), "status": exc.status,
            "requestId": request_id, "reason": str(exc)}))
        return response(exc.status, {"error": str(exc), **exc.extra})
    except Exception as exc:  # the one place a failure becomes a 500, logged once
        log.error(json.dumps({"event": "request_failed", "action": action, "status": 500, "requestId": request_id,
                              "error": type(exc).__name__, "reason": str(exc)[:500]}))
        return response(500, {"error": "internal error", "action": action, "requestId": request_id})


def lambda_handler(event, context):
    configure_logging()
    return handle(event, context)
