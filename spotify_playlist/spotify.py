"""Spotify Web API client: saved tracks, "are these saved?", token refresh.

urllib3 (already installed with botocore) does the HTTP. 429 answers are waited out for exactly
their Retry-After when that is at most `max_retry_after` (60 s), and fail at once with a clear
error when it is longer (the request could not wait that long anyway); 5xx and connection errors
are retried with exponential backoff; a 401 triggers one access-token refresh from the refresh
token. Access tokens are reused across requests until they expire (TokenCache). Base URLs are configurable so tests and the local
stack can point the client at checker.local.fake_spotify.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlencode

import urllib3

DEFAULT_API_BASE = "https://api.spotify.com/v1"
DEFAULT_ACCOUNTS_BASE = "https://accounts.spotify.com"
PAGE_SIZE = 50        # the API's maximum for /me/tracks
TOKEN_MARGIN = 60     # seconds before its expiry an access token is no longer reused
CONTAINS_BATCH = 50   # the API's maximum ids for /me/tracks/contains

log = logging.getLogger(__name__)


class TokenCache:
    """Access tokens of this process (a Lambda container), reused across requests until they
    expire: a request that finds nothing changed costs one Spotify call, not two. Keyed by the
    refresh token, the client id and the accounts URL; nothing is ever logged from here."""

    def __init__(self):
        self._tokens: dict = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(credentials, accounts_base: str) -> tuple:
        return credentials.refresh_token, credentials.client_id, accounts_base

    def get(self, credentials, accounts_base: str) -> Optional[str]:
        with self._lock:
            token, expires_at = self._tokens.get(self._key(credentials, accounts_base), (None, 0.0))
        return token if token and time.time() < expires_at else None

    def store(self, credentials, accounts_base: str, token: str, expires_at: float) -> None:
        with self._lock:
            self._tokens[self._key(credentials, accounts_base)] = (token, expires_at)

    def forget(self, credentials, accounts_base: str) -> None:
        with self._lock:
            self._tokens.pop(self._key(credentials, accounts_base), None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()


class SpotifyError(Exception):
    """The Spotify API did not give an answer after retries; the message never holds a token."""


@dataclass
class SpotifyCredentials:
    refresh_token: Optional[str] = None
    access_token: Optional[str] = None
    client_id: Optional[str] = None
    client_secret: Optional[str] = None


class PageWindow:
    """How many pages a full read keeps in flight: one more whenever the reader had to wait for a
    page (Spotify's latency dominates: more in flight hides it), half as many when either side
    pushes back (a 429 from Spotify, writes throttled by DynamoDB), between `least` and `most`."""

    WAITED = 0.005   # seconds a reader may wait for a page before the window widens

    def __init__(self, start: int = 8, least: int = 1, most: int = 32):
        self.least, self.most = least, most
        self.size = max(least, min(start, most))
        self.largest = self.smallest = self.size
        self.lock = threading.Lock()

    def waited(self, seconds: float) -> None:
        if seconds > self.WAITED:
            with self.lock:
                self.size = min(self.most, self.size + 1)
                self.largest = max(self.largest, self.size)

    def pushed_back(self) -> None:
        with self.lock:
            self.size = max(self.least, self.size // 2)
            self.smallest = min(self.smallest, self.size)


class SpotifyClient:
    def __init__(self, credentials: SpotifyCredentials, api_base: str = DEFAULT_API_BASE,
                 accounts_base: str = DEFAULT_ACCOUNTS_BASE, max_retries: int = 5,
                 backoff: float = 0.5, max_retry_after: float = 60.0, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, http: Optional[urllib3.PoolManager] = None):
        self.credentials = credentials
        self.api_base = api_base.rstrip("/")
        self.accounts_base = accounts_base.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        # urllib3's own Retry stays off: our loop must see 429s to honour Retry-After and 401s
        # to refresh the token.
        self.window = PageWindow()
        self.http = http or urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=False,
                                                maxsize=self.window.most)
        self._token_lock = threading.Lock()

    # -- the API --------------------------------------------------------------------------
    def saved_tracks_page(self, offset: int = 0, limit: int = PAGE_SIZE) -> dict:
        """One page of the user's saved tracks, newest first: items, total, next, offset, limit."""
        return self._get("/me/tracks", {"limit": limit, "offset": offset})

    def saved_track_pages(self, offset: int = 0, concurrency: int = 1) -> Iterator[dict]:
        """Pages from `offset` until `next` is null, in order. With `concurrency` > 1, the first
        page gives `total` and the following ones are fetched while the caller works on the
        earlier ones, `self.window.size` at a time (starting at `concurrency`, adapting: see
        PageWindow); at most that many pages wait in memory."""
        first = self.saved_tracks_page(offset)
        yield first
        if not first.get("next") or not first.get("items"):
            return
        if concurrency <= 1:
            offset += len(first["items"])
            while True:
                page = self.saved_tracks_page(offset)
                yield page
                if not page.get("next") or not page.get("items"):
                    return
                offset += len(page["items"])
        offsets = iter(range(offset + PAGE_SIZE, int(first.get("total") or 0), PAGE_SIZE))
        self.window.size = max(self.window.least, min(concurrency, self.window.most))
        with ThreadPoolExecutor(max_workers=self.window.most) as pool:
            in_flight: deque = deque()
            while True:
                while len(in_flight) < self.window.size and (following := next(offsets, None)) is not None:
                    in_flight.append(pool.submit(self.saved_tracks_page, following))
                if not in_flight:
                    return
                asked = time.monotonic()
                page = in_flight.popleft().result()
                self.window.waited(time.monotonic() - asked)   # Spotify slower than the reader: widen
                yield page

    def contains(self, track_ids: list) -> list:
        """For each id, whether it is in the user's saved tracks (50 ids a call)."""
        answers = []
        for start in range(0, len(track_ids), CONTAINS_BATCH):
            batch = track_ids[start:start + CONTAINS_BATCH]
            answers += self._get("/me/tracks/contains", {"ids": ",".join(batch)})
        return answers

    def refresh_access_token(self, stale: Optional[str] = None) -> str:
        """A new access token, unless another thread already replaced `stale` meanwhile."""
        with self._token_lock:
            if self.credentials.access_token and self.credentials.access_token != stale:
                return self.credentials.access_token
            return self._refresh()

    def _refresh(self) -> str:
        if not self.credentials.refresh_token:
            raise SpotifyError("no Spotify refresh token configured (SPOTIFY_REFRESH_TOKEN or the user table)")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.credentials.client_id and self.credentials.client_secret:
            pair = f"{self.credentials.client_id}:{self.credentials.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        body = urlencode({"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token})
        status, document = self._send("POST", f"{self.accounts_base}/api/token", headers, body)
        if status != 200 or "access_token" not in document:
            raise SpotifyError(f"token refresh failed: HTTP {status} {_reason(document)}")
        self.credentials.access_token = document["access_token"]
        if document.get("refresh_token"):
            self.credentials.refresh_token = document["refresh_token"]
        expires_in = float(document.get("expires_in") or 3600)
        TOKENS.store(self.credentials, self.accounts_base, document["access_token"],
                     time.time() + expires_in - TOKEN_MARGIN)
        return self.credentials.access_token

    # -- plumbing -------------------------------------------------------------------------
    def _get(self, path: str, params: dict):
        if not self.credentials.access_token:
            self.credentials.access_token = TOKENS.get(self.credentials, self.accounts_base)
        if not self.credentials.access_token:
            self.refresh_access_token()
        url = f"{self.api_base}{path}?{urlencode(params)}"
        refreshed = False
        while True:
            token = self.credentials.access_token
            status, document = self._send("GET", url, {"Authorization": f"Bearer {token}"})
            if status == 401 and not refreshed:
                refreshed = True
                TOKENS.forget(self.credentials, self.accounts_base)
                self.refresh_access_token(stale=token)
                continue
            if status != 200:
                raise SpotifyError(f"GET {path} failed: HTTP {status} {_reason(document)}")
            return document

    def _send(self, method: str, url: str, headers: dict, body: Optional[str] = None):
        """One request with retries for 429 (Retry-After) and 5xx / network errors (backoff)."""
        for attempt in range(self.max_retries + 1):
            last_attempt = attempt == self.max_retries
            try:
                response = self.http.request(method, url, headers=headers, body=body)
            except urllib3.exceptions.HTTPError as exc:
                if last_attempt:
                    raise SpotifyError(f"{method} {url.split('?')[0]} failed: {type(exc).__name__}") from None
                self.sleep(self.backoff * 2 ** attempt)
                continue
            if response.status == 429 and not last_attempt:
                self.window.pushed_back()
                wait = _retry_after(response.headers.get("Retry-After"), self.backoff * 2 ** attempt)
                log.info(json.dumps({"event": "spotify_rate_limited", "retry_after": wait}))
                if wait > self.max_retry_after:
                    # Waiting longer than a request can would only end in a timeout: say so now.
                    raise SpotifyError(f"Spotify asks to wait {wait:g}s (Retry-After), longer than the "
                                       f"{self.max_retry_after:g}s this request may wait; try again later")
                self.sleep(wait)
                continue
            if response.status >= 500 and not last_attempt:
                self.sleep(self.backoff * 2 ** attempt)
                continue
            try:
                document = json.loads(response.data or b"null")
            except ValueError:
                document = None
            return response.status, document
        raise AssertionError("unreachable")


def _retry_after(value: Optional[str], default: float) -> float:
    try:
        return max(0.0, float(value or ""))
    except ValueError:
        return default


def _reason(document) -> str:
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict):
            return str(error.get("message", ""))
        return str(document.get("error_description") or error or "")
    return ""
