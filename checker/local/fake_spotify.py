"""A small Spotify Web API on 127.0.0.1 for tests, benchmarks and the local stack.

Same shapes and paging as the real API for what the cache uses:
  GET  /v1/me/tracks?limit=&offset=         saved tracks, newest first, with `total` and `next`
  GET  /v1/me/tracks/contains?ids=a,b,...   [true, false, ...] (at most 50 ids)
  POST /api/token                           grant_type=refresh_token -> a new access token
Users are identified by their bearer token. Tests seed libraries, add and remove saved tracks,
inject latency and 429/5xx answers, and read how many calls each endpoint served.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

from .http import LocalServer, send_json

BASE_TIME_MS = 1_600_000_000_000  # added_at of a user's first track; later tracks are newer


def make_track(number: int) -> dict:
    track_id = f"track{number:07d}"
    return {
        "id": track_id,
        "uri": f"spotify:track:{track_id}",
        "name": f"Song {number}",
        "duration_ms": 180_000 + number % 60_000,
        "popularity": number % 100,
        "artists": [{"id": f"artist{number % 97:04d}", "name": f"Artist {number % 97}"}],
        "album": {"id": f"album{number % 211:04d}", "name": f"Album {number % 211}"},
    }


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeSpotify:
    def __init__(self, latency: float = 0.0, port: int = 0):
        self.latency = latency
        self.libraries: dict = {}      # user -> list of saved items, newest first
        self.next_number: dict = {}    # user -> number of the next track to add
        self.access_tokens: dict = {}  # access token -> user
        self.refresh_tokens: dict = {}  # refresh token -> user
        self.calls: Counter = Counter()
        self.faults: list = []         # queued (status, retry_after) answers for the API paths
        self.faults_after = 0          # API calls to serve normally before the queued faults
        self.lock = threading.Lock()
        self.server = LocalServer(self.serve, port)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> FakeSpotify:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what tests do ----------------------------------------------------------------------
    def add_user(self, user: str, tracks: int = 0) -> str:
        """Create a user with `tracks` saved tracks; returns the user's refresh token."""
        with self.lock:
            self.libraries[user] = []
            self.next_number[user] = 0
            self.access_tokens[f"access-{user}"] = user
            self.refresh_tokens[f"refresh-{user}"] = user
        self.add_tracks(user, tracks)
        return f"refresh-{user}"

    def access_token(self, user: str) -> str:
        return f"access-{user}"

    def add_tracks(self, user: str, count: int) -> list:
        """Save `count` new tracks, newer than any so far; returns their ids, newest first."""
        with self.lock:
            added: list = []
            for _ in range(count):
                number = self.next_number[user]
                self.next_number[user] += 1
                added.append({"added_at": iso(BASE_TIME_MS + number * 60_000), "track": make_track(number)})
            added.reverse()
            self.libraries[user][:0] = added
            return [item["track"]["id"] for item in added]

    def remove_tracks(self, user: str, track_ids) -> None:
        gone = set(track_ids)
        with self.lock:
            self.libraries[user] = [i for i in self.libraries[user] if i["track"]["id"] not in gone]

    def saved_ids(self, user: str) -> list:
        return [item["track"]["id"] for item in self.libraries[user]]

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None, after: int = 0) -> None:
        """After `after` good API calls, the next `times` answer `status` (with Retry-After for 429)."""
        with self.lock:
            self.faults += [(status, retry_after)] * times
            self.faults_after = after

    def reset_counts(self) -> None:
        self.calls.clear()

    # -- serving ----------------------------------------------------------------------------
    def serve(self, handler, method: str) -> None:
        if self.latency:
            time.sleep(self.latency)
        url = urlparse(handler.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = handler.body()
        with self.lock:
            self.calls[url.path] += 1
            fault = None
            if self.faults and url.path.startswith("/v1/"):
                if self.faults_after:
                    self.faults_after -= 1
                else:
                    fault = self.faults.pop(0)
        if fault:
            status, retry_after = fault
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return self.reply(handler, status, {"error": {"status": status, "message": "injected"}}, headers)
        if method == "POST" and url.path == "/api/token":
            return self.token(handler, {k: v[-1] for k, v in parse_qs(body.decode()).items()})
        user = self.access_tokens.get(handler.headers.get("Authorization", "").removeprefix("Bearer "))
        if user is None:
            return self.reply(handler, 401, {"error": {"status": 401, "message": "The access token expired"}})
        if method == "GET" and url.path == "/v1/me/tracks":
            return self.reply(handler, 200, self.page(user, query))
        if method == "GET" and url.path == "/v1/me/tracks/contains":
            ids = [i for i in query.get("ids", "").split(",") if i]
            if len(ids) > 50:
                return self.reply(handler, 400, {"error": {"status": 400, "message": "Too many ids requested"}})
            saved = set(self.saved_ids(user))
            return self.reply(handler, 200, [i in saved for i in ids])
        return self.reply(handler, 404, {"error": {"status": 404, "message": "Service not found"}})

    def page(self, user: str, query: dict) -> dict:
        limit = min(max(int(query.get("limit", 20)), 1), 50)
        offset = max(int(query.get("offset", 0)), 0)
        with self.lock:
            library = list(self.libraries[user])
        items = library[offset:offset + limit]
        href = f"{self.api_base}/me/tracks?offset={offset}&limit={limit}"
        following = offset + limit
        return {
            "href": href,
            "items": items,
            "limit": limit,
            "offset": offset,
            "total": len(library),
            "next": f"{self.api_base}/me/tracks?offset={following}&limit={limit}" if following < len(library) else None,
            "previous": f"{self.api_base}/me/tracks?offset={max(offset - limit, 0)}&limit={limit}" if offset else None,
        }

    def token(self, handler, form: dict) -> None:
        user = self.refresh_tokens.get(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or user is None:
            return self.reply(handler, 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
        return self.reply(handler, 200, {"access_token": self.access_token(user), "token_type": "Bearer",
                                         "expires_in": 3600, "scope": "user-library-read"})

    reply = staticmethod(send_json)
