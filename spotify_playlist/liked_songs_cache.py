"""The liked-songs cache: a user's saved tracks mirrored from Spotify into DynamoDB.

Full sync streams the pages, writes them, and only then deletes what is no longer saved, so a
reader never finds the cache empty mid-sync, and a sync that fails half-way leaves the previous
cache readable with syncStatus "error". Incremental sync spends one first-page call to decide:
nothing changed (same total and first page) costs exactly that call; new tracks, which Spotify
always puts first, cost one more page per 50; removals are found newest first with the
"contains" call, 50 ids a call, and a full sync is the fallback when they are not found quickly.
A missing cache table is logged once at ERROR (health.missing_tables) and answered from the Spotify
API: it never crashes.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from .dynamo import CacheTableMissing, LikedSongsStore
from .health import missing_tables
from .spotify import CONTAINS_BATCH, SpotifyClient, SpotifyError

CACHE_FORMAT_VERSION = 1      # stored as syncVersion; a different value forces a full sync
DEFAULT_MAX_AGE_SECONDS = 24 * 3600
SAMPLE_SIZE = 5

log = logging.getLogger(__name__)


class SyncFailed(Exception):
    """A sync could not finish; the previous cache is intact and marked syncStatus=error."""


def epoch_ms(iso_time: str) -> int:
    return int(datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp() * 1000)


def song_item(user_id: str, saved: dict, synced_at: int) -> Optional[dict]:
    """A liked_songs item from one saved-track entry; None for entries without a track id."""
    track = saved.get("track") or {}
    if not track.get("id"):
        return None  # local files and unavailable tracks have no id
    artist = (track.get("artists") or [{}])[0]
    album = track.get("album") or {}
    item = {
        "userId": user_id, "trackId": track["id"], "trackUri": track.get("uri"),
        "trackName": track.get("name"), "artistName": artist.get("name"), "artistId": artist.get("id"),
        "albumName": album.get("name"), "albumId": album.get("id"), "addedAt": epoch_ms(saved["added_at"]),
        "syncedAt": synced_at, "durationMs": track.get("duration_ms"), "popularity": track.get("popularity"),
    }
    return {k: v for k, v in item.items() if v is not None}


def page_items(user_id: str, page: dict, synced_at: int) -> list:
    return [item for item in (song_item(user_id, s, synced_at) for s in page.get("items", [])) if item]


def human_age(seconds: float) -> str:
    minutes, secs = divmod(int(max(0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class SyncResult:
    mode: str          # none | incremental | full
    total: int
    added: int = 0
    removed: int = 0
    reason: str = ""

    def to_dict(self) -> dict:
        return {"mode": self.mode, "total": self.total, "added": self.added, "removed": self.removed,
                "reason": self.reason}


class LikedSongsCache:
    def __init__(self, store: LikedSongsStore, spotify: SpotifyClient,
                 max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS, max_new_pages: int = 20,
                 max_removal_checks: int = 4, clock: Callable[[], float] = time.time):
        self.store = store
        self.spotify = spotify
        self.max_age_seconds = max_age_seconds
        self.max_new_pages = max_new_pages
        self.max_removal_checks = max_removal_checks
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- deciding ---------------------------------------------------------------------------
    def full_sync_reason(self, metadata: Optional[dict]) -> Optional[str]:
        if not metadata:
            return "no cache yet"
        if metadata.get("syncVersion") != CACHE_FORMAT_VERSION:
            return f"cache format {metadata.get('syncVersion')} is not {CACHE_FORMAT_VERSION}"
        if metadata.get("syncStatus") != "ok":
            return f"last sync status is {metadata.get('syncStatus')}"
        age = (self.now_ms() - int(metadata.get("lastFullSyncAt", 0))) / 1000
        if age > self.max_age_seconds:
            return f"last full sync is {human_age(age)} old"
        return None

    def sync(self, user_id: str, force_full: bool = False) -> SyncResult:
        metadata = self.store.get_metadata(user_id)
        reason = "requested" if force_full else self.full_sync_reason(metadata)
        if reason or metadata is None:
            return self.full_sync(user_id, metadata, reason or "no cache yet")
        return self.incremental_sync(user_id, metadata)

    # -- full sync --------------------------------------------------------------------------
    def full_sync(self, user_id: str, previous: Optional[dict] = None, reason: str = "requested") -> SyncResult:
        started = self.now_ms()
        if previous:
            self.store.set_sync_status(user_id, "syncing")
        try:
            seen: set = set()
            first_page_ids: Optional[list] = None
            newest = oldest = None
            for page in self.spotify.saved_track_pages():
                items = page_items(user_id, page, started)
                if first_page_ids is None:
                    first_page_ids = [i["trackId"] for i in items]
                self.store.put_songs(items)
                seen.update(i["trackId"] for i in items)
                for item in items:
                    newest = max(newest or item["addedAt"], item["addedAt"])
                    oldest = min(oldest or item["addedAt"], item["addedAt"])
            stale = [t for t in self.store.track_ids(user_id) if t not in seen]
            self.store.delete_songs(user_id, stale)
        except (SpotifyError, CacheTableMissing) as exc:
            self._mark_failed(user_id, exc)
            raise
        except Exception as exc:  # a DynamoDB or batch failure: the previous cache stays readable
            self._mark_failed(user_id, exc)
            raise SyncFailed(f"full sync failed: {type(exc).__name__}: {exc}") from exc
        self.store.put_metadata({
            "userId": user_id, "totalTracks": len(seen), "lastSyncedAt": started, "lastFullSyncAt": started,
            "mostRecentAddedAt": newest, "oldestAddedAt": oldest, "syncVersion": CACHE_FORMAT_VERSION,
            "syncStatus": "ok", "syncError": "", "firstPageIds": first_page_ids or [],
        })
        return SyncResult("full", len(seen), added=len(seen), removed=len(stale), reason=reason)

    def _mark_failed(self, user_id: str, exc: Exception) -> None:
        if isinstance(exc, CacheTableMissing):
            return
        try:
            self.store.set_sync_status(user_id, "error", f"{type(exc).__name__}: {exc}")
        except Exception:  # recording the failure must not hide the failure itself
            log.warning(json.dumps({"event": "sync_status_not_recorded", "userId": user_id}))

    # -- incremental sync -------------------------------------------------------------------
    def incremental_sync(self, user_id: str, metadata: dict) -> SyncResult:
        now = self.now_ms()
        try:
            first = self.spotify.saved_tracks_page(0)
        except SpotifyError as exc:
            self._mark_failed(user_id, exc)
            raise
        first_items = page_items(user_id, first, now)
        first_ids = [i["trackId"] for i in first_items]
        total = first["total"]
        if total == metadata.get("totalTracks") and first_ids == metadata.get("firstPageIds"):
            self.store.put_metadata({**metadata, "lastSyncedAt": now})
            return SyncResult("none", total)

        new_items = self._new_items(user_id, first, first_items, set(metadata.get("firstPageIds") or []), now)
        if new_items is None:
            return self.full_sync(user_id, metadata, "too many new tracks to page through")
        removed_count = int(metadata.get("totalTracks", 0)) + len(new_items) - total
        removed: list = []
        if removed_count < 0:
            return self.full_sync(user_id, metadata, "track count does not add up")
        if removed_count:
            found = self._find_removed(user_id, removed_count, set(first_ids))
            if found is None:
                return self.full_sync(user_id, metadata, f"{removed_count} removal(s) not found quickly")
            removed = found

        self.store.put_songs(new_items)
        self.store.delete_songs(user_id, removed)
        oldest = next(self.store.query_songs(user_id, newest_first=False, limit=1), {}).get("addedAt")
        self.store.put_metadata({
            **metadata, "totalTracks": total, "lastSyncedAt": now, "firstPageIds": first_ids,
            "mostRecentAddedAt": first_items[0]["addedAt"] if first_items else None, "oldestAddedAt": oldest,
            "syncStatus": "ok", "syncError": "",
        })
        return SyncResult("incremental", total, added=len(new_items), removed=len(removed))

    def _new_items(self, user_id: str, page: dict, items: list, known: set, now: int) -> Optional[list]:
        """Saved tracks newer than the previous first page: Spotify lists new saves first."""
        new_items: list = []
        pages = 1
        while True:
            for position, item in enumerate(items):
                if item["trackId"] in known:
                    return new_items + items[:position]
            new_items += items
            if not page.get("next") or not items:
                return new_items
            if pages >= self.max_new_pages:
                return None
            page = self.spotify.saved_tracks_page(page["offset"] + len(page["items"]))
            items = page_items(user_id, page, now)
            pages += 1

    def _find_removed(self, user_id: str, count: int, still_saved: set) -> Optional[list]:
        """The `count` cached tracks no longer saved, looked for newest first, 50 a call."""
        removed: list = []
        batch: list = []
        calls = 0
        for song in self.store.query_songs(user_id, page_size=2 * CONTAINS_BATCH):
            if song["trackId"] in still_saved:
                continue
            batch.append(song["trackId"])
            if len(batch) < CONTAINS_BATCH:
                continue
            removed += [t for t, saved in zip(batch, self.spotify.contains(batch), strict=True) if not saved]
            calls += 1
            batch = []
            if len(removed) >= count:
                return removed
            if calls >= self.max_removal_checks:
                return None
        if batch:
            removed += [t for t, saved in zip(batch, self.spotify.contains(batch), strict=True) if not saved]
        return removed if len(removed) >= count else None

    # -- what the app calls -----------------------------------------------------------------
    def my_saved_tracks(self, user_id: str) -> list:
        """The user's saved tracks, newest first: from the cache, synced as needed, or from Spotify
        directly when a cache table is missing."""
        try:
            try:
                self.sync(user_id)
            except (SpotifyError, SyncFailed) as exc:
                if not (self.store.get_metadata(user_id) or {}).get("lastFullSyncAt"):
                    raise  # no complete cache to fall back on
                log.warning(json.dumps({"event": "sync_failed_serving_cache", "userId": user_id,
                                        "reason": f"{type(exc).__name__}: {exc}"}))
            return list(self.store.query_songs(user_id))
        except CacheTableMissing as exc:
            missing_tables.report(exc.table)
            now = self.now_ms()
            return [item for page in self.spotify.saved_track_pages() for item in page_items(user_id, page, now)]

    def stats(self, user_id: str) -> dict:
        try:
            metadata = self.store.get_metadata(user_id)
            if not metadata:
                return {"metadata": {"message": "No cache found"}, "sampleTracks": [], "cacheAge": "N/A"}
            sample = list(self.store.query_songs(user_id, limit=SAMPLE_SIZE))
        except CacheTableMissing as exc:
            missing_tables.report(exc.table)
            return {"metadata": {"message": f"No cache: table {exc.table} does not exist (run `checker apply`)"},
                    "sampleTracks": [], "cacheAge": "N/A"}
        shown = {k: v for k, v in metadata.items() if k != "firstPageIds"}
        age = (self.now_ms() - int(metadata.get("lastSyncedAt", 0))) / 1000
        return {"metadata": shown, "sampleTracks": sample, "cacheAge": human_age(age)}

    def clear(self, user_id: str) -> dict:
        try:
            removed = self.store.clear_user(user_id)
        except CacheTableMissing as exc:
            missing_tables.report(exc.table)
            return {"userId": user_id, "cleared": 0,
                    "message": f"Nothing to clear: table {exc.table} does not exist (run `checker apply`)"}
        return {"userId": user_id, "cleared": removed, "message": f"Cleared {removed} cached track(s)"}
