"""Is this deployment able to serve? The `health` action, and the one ERROR line a missing table earns.

The incident this project exists for was a Lambda whose tables had never been created. Health
answers, for every table the app is bound to (`user` included: it holds the Spotify refresh
token), the name the app uses and whether DescribeTable finds it ACTIVE (with the cache's
index), and whether the Spotify settings are configured. Settings are reported by presence only:
no value is ever read into an answer or a log line.

A missing table is a deployment defect, not a request failure: it is logged at ERROR once per
process and table, so that a CloudWatch count of ERROR lines catches it after a deploy without
one line per request flooding the log.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Optional

import botocore.exceptions

from .dynamo import ADDED_AT_INDEX, CacheTables

log = logging.getLogger(__name__)
FIX_TABLES = "run `checker apply --env <environment>` (creates the tables from table_specs/)"


class MissingTableLog:
    """Remembers which missing tables this process has already reported at ERROR."""

    def __init__(self):
        self._reported: set = set()
        self._lock = threading.Lock()

    def report(self, table: str, variable: str = "") -> None:
        with self._lock:
            if table in self._reported:
                return
            self._reported.add(table)
        bound = f" (bound by {variable})" if variable else ""
        log.error(json.dumps({
            "event": "table_missing", "table": table,
            "message": f"DynamoDB table {table}{bound} does not exist: the app runs degraded "
                       f"(liked songs come from the Spotify API). Fix: {FIX_TABLES}.",
        }))

    def reset(self) -> None:
        """Forget what was reported (a new process, as far as the next report is concerned)."""
        with self._lock:
            self._reported.clear()


missing_tables = MissingTableLog()


@dataclass(frozen=True)
class Binding:
    """One table the app uses: the variable that names it, its default, the index it queries."""

    variable: str
    default: str
    index: Optional[str] = None

    def name(self, environ) -> str:
        return environ.get(self.variable) or self.default


BINDINGS = (
    Binding("USER_TABLE", "user"),
    Binding("LIKED_SONGS_TABLE", CacheTables.songs, ADDED_AT_INDEX),
    Binding("LIKED_SONGS_METADATA_TABLE", CacheTables.metadata),
)
SETTINGS = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET")


def table_health(client, binding: Binding, environ) -> tuple[dict, Optional[str]]:
    """(what health says of one bound table, the problem or None)."""
    name = binding.name(environ)
    entry: dict = {"variable": binding.variable, "name": name}
    try:
        table = client.describe_table(TableName=name)["Table"]
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            missing_tables.report(name, binding.variable)
            return {**entry, "status": "MISSING"}, f"table {name} ({binding.variable}) does not exist: {FIX_TABLES}"
        return {**entry, "status": "UNKNOWN"}, f"table {name} ({binding.variable}) cannot be described: {code}"
    status = table.get("TableStatus", "UNKNOWN")
    entry["status"] = status
    if status != "ACTIVE":
        return entry, f"table {name} ({binding.variable}) is {status}, not ACTIVE: wait for it (`checker wait`)"
    if binding.index:
        indexes = {i["IndexName"]: i.get("IndexStatus") for i in table.get("GlobalSecondaryIndexes", [])}
        entry["indexes"] = {binding.index: indexes.get(binding.index, "MISSING")}
        if binding.index not in indexes:
            return entry, f"table {name} has no index {binding.index}: {FIX_TABLES}"
        if indexes[binding.index] != "ACTIVE":
            return entry, f"index {binding.index} of {name} is {indexes[binding.index]}, not ACTIVE: wait for it"
    return entry, None


def refresh_token_source(resource, user_table: str, user_id: Optional[str], environ) -> Optional[str]:
    """Where the Spotify refresh token comes from ("environment", "user table"), None if nowhere.
    The token itself is looked at only to see that it is there."""
    if environ.get("SPOTIFY_REFRESH_TOKEN", "").strip():
        return "environment"
    if not user_id:
        return None
    try:
        item = resource.Table(user_table).get_item(Key={"id": user_id}, ProjectionExpression="refreshToken")
    except botocore.exceptions.ClientError:
        return None
    return "user table" if (item.get("Item") or {}).get("refreshToken") else None


NUMBER_SETTINGS = ("CACHE_MAX_AGE_SECONDS", "SYNC_TIME_RESERVE_SECONDS")   # seconds, when set


def number_problem(environ, name: str) -> Optional[str]:
    """Why a numeric setting cannot be read (its value is not shown), or None."""
    text = environ.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return f"setting {name} is not a number of seconds: set it to one (e.g. 5), or remove it for the default"
    if not value >= 0 or value == float("inf"):
        return f"setting {name} must be a finite number of seconds, 0 or more"
    return None


def number_setting(environ, name: str, default: float) -> float:
    """A numeric setting, or the default when unset; one that does not parse is a ValueError
    naming it (the request's answer and `health` say which)."""
    problem = number_problem(environ, name)
    if problem:
        raise ValueError(problem)
    return float(environ.get(name, default))


def health(resource, environ=os.environ, user_id: Optional[str] = None) -> tuple[int, dict]:
    """(200, {"status": "ok", ...}) when every table and setting holds, else (503, degraded)."""
    client = resource.meta.client
    tables, problems = [], []
    for binding in BINDINGS:
        entry, problem = table_health(client, binding, environ)
        tables.append(entry)
        if problem:
            problems.append(problem)
    settings: dict = {name: bool(environ.get(name, "").strip()) for name in SETTINGS}
    problems += [f"setting {name} is not configured: set it in the function's environment"
                 for name, present in settings.items() if not present]
    problems += [problem for name in NUMBER_SETTINGS if (problem := number_problem(environ, name))]
    user_table = BINDINGS[0].name(environ)
    source = refresh_token_source(resource, user_table, user_id, environ)
    settings["refresh_token"] = source or False
    if source is None:
        problems.append("no Spotify refresh token: set SPOTIFY_REFRESH_TOKEN or store refreshToken in the "
                        f"{user_table} item of the user")
    body = {"status": "degraded" if problems else "ok", "problems": problems, "tables": tables,
            "settings": settings}
    return (503 if problems else 200), body
