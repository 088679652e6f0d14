"""The liked-songs cache: a user's saved tracks mirrored from Spotify into DynamoDB.

One sync a user at a time: a sync holds a lease on the user's metadata item, and one that overlaps
serves the cache as it is. Full sync reads the pages a few at a time, writes only the items that
are new or changed, and only then deletes what Spotify confirms is no longer saved, so a reader
never finds the cache empty mid-sync, a library that changes during the read is read again, and a
sync that fails half-way leaves the previous cache readable with syncStatus "error". Incremental
sync spends one first-page call to decide: nothing changed (same total and first page) costs
exactly that call; new tracks, which Spotify always puts first, cost one more page per 50;
removals are proposed by the gaps between Spotify's list and the cached order, found by bisecting
the pages (a few calls wherever they are), and deleted only once Spotify confirms them
(/me/tracks/contains), in incremental syncs as in full ones; a full sync is the fallback when that
does not add up. Any failure marks the sync "error". A full sync longer than the invocation's
time (a first sync on a table of 1 WCU) pauses at a page boundary ("partial") and the next sync
call goes on from there; running out of time or capacity is not a failure.
A missing cache table or index is logged once at ERROR (health.missing_tables) and answered from
the Spotify API: it never crashes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from .dynamo import CacheTableMissing, LeaseLost, LikedSongsStore, OutOfTime
from .health import missing_tables
from .spotify import PAGE_SIZE, SpotifyClient, SpotifyError

CACHE_FORMAT_VERSION = 2      # stored as syncVersion; a different value forces a full sync
LEASE_SECONDS = 120           # a sync that dies holding the lease frees it after this
RESUME_LEASE_SECONDS = 15 * 60  # a paused sync's lease waits this long (a Lambda's longest run) for its next call
TIME_RESERVE_SECONDS = 5.0    # a full sync pauses when the invocation has less than this left
LEASE_POLL = 0.25
FULL_SYNC_READS = 2           # a library that changes during a full read is read once more
DEFAULT_MAX_AGE_SECONDS = 24 * 3600
SAMPLE_SIZE = 5

log = logging.getLogger(__name__)


def without_lease(metadata: Optional[dict]) -> Optional[dict]:
    """The metadata as a sync state: None when the item holds only a lease (no sync finished yet)."""
    if not metadata:
        return None
    state = {k: v for k, v in metadata.items() if k not in ("syncLease", "syncLeaseUntil", "resumeLease")}
    return state if "syncVersion" in state else None


@dataclass
class LibraryRead:
    """What one read of the whole library saw."""

    seen: set = field(default_factory=set)
    totals: set = field(default_factory=set)
    items_seen: int = 0
    written: int = 0
    first_page_ids: Optional[list] = None
    newest: Optional[int] = None
    oldest: Optional[int] = None
    stopped_at: Optional[int] = None   # the offset to go on from, when the invocation's time ran out

    @property
    def consistent(self) -> bool:
        """One `total` on every page, and as many items as it says: offsets did not shift."""
        return len(self.totals) == 1 and self.items_seen == next(iter(self.totals))


@dataclass
class Paused:
    """A full sync that ran out of an invocation's time, as the metadata keeps it for the next
    invocation: where to go on, what was seen so far, and the removal candidates found in the
    part of the library already read (deleted, once Spotify confirms them, only after the last
    page of the whole sync)."""

    started_at: int
    offset: int = 0
    total: Optional[int] = None
    items_seen: int = 0
    written: int = 0
    boundary: Optional[int] = None        # the oldest addedAt read so far: older tracks are still to come
    newest: Optional[int] = None
    first_page_ids: Optional[list] = None
    candidates: list = field(default_factory=list)
    invocations: int = 0
    reason: str = ""
    tracks: int = 0                       # distinct tracks read so far

    FIELDS = {"started_at": "resumeStartedAt", "offset": "resumeOffset", "total": "resumeTotal",
              "items_seen": "resumeItemsSeen", "written": "resumeWritten", "boundary": "resumeBoundary",
              "newest": "resumeNewest", "first_page_ids": "resumeFirstPageIds", "candidates": "resumeCandidates",
              "invocations": "resumeInvocations", "reason": "resumeReason", "tracks": "resumeTracks"}

    @classmethod
    def from_metadata(cls, metadata: Optional[dict]) -> Optional[Paused]:
        if not metadata or metadata.get("resumeOffset") is None:
            return None
        values: dict[str, Any] = {name: metadata[key] for name, key in cls.FIELDS.items() if metadata.get(key) is not None}
        for number in ("started_at", "offset", "total", "items_seen", "written", "boundary", "newest", "invocations",
                       "tracks"):
            if number in values:
                values[number] = int(values[number])
        values["candidates"] = list(values.get("candidates") or [])
        return cls(**values)

    def to_metadata(self) -> dict:
        return {key: getattr(self, name) for name, key in self.FIELDS.items() if getattr(self, name) is not None}


MAX_CARRIED_CANDIDATES = 5000   # removal candidates a paused sync carries (ids: well under an item's 400 KB)


class _DoesNotAddUp(Exception):
    """Spotify's list and the cache disagree in a way removals cannot explain."""


def consistent(read: LibraryRead, paused: Optional[Paused]) -> bool:
    """One `total` on every page of every invocation, and as many items as it says."""
    totals = set(read.totals) | ({paused.total} if paused and paused.total is not None else set())
    items = read.items_seen + (paused.items_seen if paused else 0)
    return len(totals) == 1 and items == next(iter(totals))


def removal_candidates(cached: dict, read: LibraryRead, paused: Optional[Paused], final: bool) -> list:
    """Cached tracks this read did not see although it covered where they would be (Spotify lists
    newest first: between the boundary of the earlier invocations and the oldest track read
    now; with the last page, everything older too). Only candidates: Spotify confirms each."""
    upper = paused.boundary if paused else None
    low = None if final else read.oldest
    if not final and low is None:
        return []
    return [track for track, (_, added) in cached.items() if track not in read.seen
            and (upper is None or added <= upper) and (low is None or added > low)]


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
        "durationMs": track.get("duration_ms"), "popularity": track.get("popularity"),
    }
    item = {k: v for k, v in item.items() if v is not None}
    # What the item says, without when it was written: a full sync rewrites only items whose hash changed.
    item["contentHash"] = hashlib.sha1(json.dumps(item, sort_keys=True).encode()).hexdigest()[:16]
    item["syncedAt"] = synced_at
    return item


def page_items(user_id: str, page: dict, synced_at: int) -> list:
    return [item for item in (song_item(user_id, s, synced_at) for s in page.get("items", [])) if item]


def unique(items: list) -> list:
    """Each track once, in order: a save between two page reads shifts the later page by one, and
    a BatchWriteItem holding one key twice is refused."""
    return list({item["trackId"]: item for item in items}.values())


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
    mode: str          # none | incremental | full | busy (another sync ran; nothing done)
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
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, lease_wait: float = 2.0, page_concurrency: int = 8,
                 remaining: Optional[Callable[[], float]] = None, reserve: float = TIME_RESERVE_SECONDS):
        """`remaining`: seconds the invocation has left (the handler passes Lambda's
        context.get_remaining_time_in_millis); a full sync pauses when less than `reserve` is left."""
        self.store = store
        self.spotify = spotify
        self.max_age_seconds = max_age_seconds
        self.max_new_pages = max_new_pages
        self.clock = clock
        self.sleep = sleep
        self.lease_wait = lease_wait
        self.page_concurrency = page_concurrency
        self.remaining = remaining
        self.reserve = reserve

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- deciding ---------------------------------------------------------------------------
    def full_sync_reason(self, metadata: Optional[dict]) -> Optional[str]:
        if not metadata:
            return "no cache yet"
        paused = Paused.from_metadata(metadata)
        if paused:
            return f"going on with a paused full sync ({paused.reason}) at track {paused.offset} of {paused.total}"
        if metadata.get("syncVersion") != CACHE_FORMAT_VERSION:
            return f"cache format {metadata.get('syncVersion')} is not {CACHE_FORMAT_VERSION}"
        if metadata.get("syncStatus") != "ok":
            return f"last sync status is {metadata.get('syncStatus')}"
        age = (self.now_ms() - int(metadata.get("lastFullSyncAt", 0))) / 1000
        if age > self.max_age_seconds:
            return f"last full sync is {human_age(age)} old"
        return None

    def sync(self, user_id: str, force_full: bool = False) -> SyncResult:
        """Bring the user's cache up to date, holding the user's sync lease: a second sync that
        overlaps waits briefly, then serves the cache as it is ("busy") rather than race."""
        lease = self._take_lease(user_id)
        if lease is None:
            current = self.store.get_metadata(user_id) or {}
            log.info(json.dumps({"event": "sync_busy", "userId": user_id}))
            return SyncResult("busy", int(current.get("totalTracks", 0)),
                              reason="another sync for this user is running; the cache is served as it is")
        try:
            metadata = without_lease(self.store.get_metadata(user_id))
            if force_full and metadata:   # a full sync asked for starts over, whatever was paused
                metadata = {k: v for k, v in metadata.items() if k not in Paused.FIELDS.values()}
            reason = "requested" if force_full else self.full_sync_reason(metadata)
            if reason or metadata is None:
                return self.full_sync(user_id, metadata, reason or "no cache yet", lease)
            return self.incremental_sync(user_id, metadata, lease)
        except LeaseLost:
            # Our lease expired and another sync took it (or the store's conditional write lost a
            # race): that sync's metadata stands; ours is not written over it, and nothing crashes.
            current = self.store.get_metadata(user_id) or {}
            log.warning(json.dumps({"event": "sync_lease_lost", "userId": user_id}))
            return SyncResult("busy", int(current.get("totalTracks", 0)),
                              reason="another sync took over this user's lease; its result stands")
        except BaseException:
            self.store.release_lease(user_id, lease)
            raise

    def _take_lease(self, user_id: str) -> Optional[str]:
        lease = uuid.uuid4().hex
        waited = 0.0
        while True:
            now = self.now_ms()
            if self.store.take_lease(user_id, lease, now, now + LEASE_SECONDS * 1000):
                return lease
            if waited >= self.lease_wait:
                return None
            self.sleep(LEASE_POLL)
            waited += LEASE_POLL

    # -- full sync --------------------------------------------------------------------------
    def full_sync(self, user_id: str, previous: Optional[dict], reason: str, lease: str) -> SyncResult:
        """Read every page (a few in flight), write only the items that are new or changed, then
        delete what is no longer saved, after asking Spotify to confirm it. A library that
        changes while being read (Spotify's offsets shift) is read again; never is a saved track
        deleted, and the cache is never emptied first. When the invocation's time runs out, the
        sync pauses at a page boundary (status `partial`, the cache serving what it has) and the
        next sync call goes on from there; removals wait for the last page of the whole sync."""
        paused = Paused.from_metadata(previous)
        started = paused.started_at if paused else self.now_ms()
        if previous:
            self.store.set_sync_status(user_id, "syncing")
        try:
            cached = self.store.cached_index(user_id)
            hashes = {track: content for track, (content, _) in cached.items()}
            for attempt in range(1 if paused else FULL_SYNC_READS):
                read = self._read_library(user_id, started, hashes, paused.offset if paused else 0)
                if read.stopped_at is not None or consistent(read, paused):
                    break
                log.warning(json.dumps({"event": "library_changed_during_sync", "userId": user_id,
                                        "attempt": attempt + 1, "totals": sorted(read.totals)}))
            if read.stopped_at is not None:
                return self._pause(user_id, previous, paused, read, cached, reason, lease, started)
            candidates = (paused.candidates if paused else []) + removal_candidates(cached, read, paused, final=True)
            removed = self._confirmed_removed(list(dict.fromkeys(candidates)))
            self.store.delete_songs(user_id, removed)
        except OutOfTime:
            # the table refused writes until the time was up: go on next time from where this
            # invocation began (what it wrote is not written again: its hashes now match)
            again = paused or Paused(started, reason=reason)
            return self._hand_over(user_id, previous, again, lease, f"{reason}; the table is throttling writes")
        except (SpotifyError, CacheTableMissing) as exc:
            self._mark_failed(user_id, exc)
            raise
        except Exception as exc:  # a DynamoDB or batch failure: the previous cache stays readable
            self._mark_failed(user_id, exc)
            raise SyncFailed(f"full sync failed: {type(exc).__name__}: {exc}") from exc
        status = "ok" if consistent(read, paused) else "partial"  # partial, no resume: the next sync reads all again
        tracks = len(read.seen) + (paused.tracks if paused else 0)
        self.store.put_metadata_holding({
            "userId": user_id, "totalTracks": tracks, "lastSyncedAt": started, "lastFullSyncAt": started,
            "mostRecentAddedAt": paused.newest if paused and paused.newest else read.newest,
            "oldestAddedAt": read.oldest if read.oldest is not None else (paused.boundary if paused else None),
            "syncVersion": CACHE_FORMAT_VERSION, "syncStatus": status, "syncError": "",
            "firstPageIds": (paused.first_page_ids if paused else None) or read.first_page_ids,
        }, lease)
        return SyncResult("full", tracks, added=read.written + (paused.written if paused else 0), removed=len(removed),
                          reason=(paused.reason if paused else reason)
                          + (f" (over {paused.invocations + 1} invocations)" if paused else ""))

    def out_of_time(self) -> bool:
        return self.remaining is not None and self.remaining() < self.reserve

    def _pause(self, user_id: str, previous: Optional[dict], paused: Optional[Paused], read: LibraryRead,
               cached: dict, reason: str, lease: str, started: int) -> SyncResult:
        assert read.stopped_at is not None
        found = removal_candidates(cached, read, paused, final=False)
        earlier = paused or Paused(started, reason=reason)
        now = Paused(
            started_at=started, offset=read.stopped_at,
            total=earlier.total if earlier.total is not None else min(t for t in read.totals if t is not None),
            items_seen=earlier.items_seen + read.items_seen, written=earlier.written + read.written,
            tracks=earlier.tracks + len(read.seen),
            boundary=read.oldest if read.oldest is not None else earlier.boundary,
            newest=earlier.newest or read.newest, first_page_ids=earlier.first_page_ids or read.first_page_ids,
            candidates=(earlier.candidates + found)[:MAX_CARRIED_CANDIDATES], invocations=earlier.invocations,
            reason=earlier.reason or reason)
        return self._hand_over(user_id, previous, now, lease, now.reason)

    def _hand_over(self, user_id: str, previous: Optional[dict], paused: Paused, lease: str, reason: str) -> SyncResult:
        """Record where the sync stopped and keep the lease for the next invocation, with an expiry."""
        paused = dataclasses.replace(paused, invocations=paused.invocations + 1)
        kept = {k: v for k, v in (previous or {}).items() if k not in Paused.FIELDS.values()}
        self.store.hand_over_lease({
            **kept, "userId": user_id, "syncVersion": kept.get("syncVersion", CACHE_FORMAT_VERSION),
            "syncStatus": "partial", "syncError": "", "totalTracks": kept.get("totalTracks", paused.tracks),
            **paused.to_metadata()}, lease, self.now_ms() + RESUME_LEASE_SECONDS * 1000)
        log.info(json.dumps({"event": "sync_paused", "userId": user_id, "offset": paused.offset,
                             "total": paused.total, "invocations": paused.invocations}))
        return SyncResult("partial", paused.tracks, added=paused.written,
                          reason=f"{reason}: out of time at track {paused.offset} of {paused.total}; "
                                 "the next sync goes on from there")

    def _read_library(self, user_id: str, started: int, cached: dict, offset: int = 0) -> LibraryRead:
        """Every page from `offset`, in order; the items that changed are written while the next
        pages are read. Stops at a page boundary when the invocation's time is running out."""
        read = LibraryRead()
        from_the_top = offset == 0   # only a read from offset 0 sees the first page
        window = getattr(self.spotify, "window", None)
        with self.store.song_writer(self.out_of_time if self.remaining is not None else None,
                                    window.pushed_back if window is not None else None) as writer:
            for page in self.spotify.saved_track_pages(offset=offset, concurrency=self.page_concurrency):
                read.totals.add(page.get("total"))
                read.items_seen += len(page.get("items") or [])
                items = page_items(user_id, page, started)
                if read.first_page_ids is None and from_the_top:
                    read.first_page_ids = [i["trackId"] for i in items]
                changed = []
                for item in items:
                    if item["trackId"] in read.seen:
                        continue  # offsets shifted mid-read: written once (a batch refuses duplicate keys)
                    read.seen.add(item["trackId"])
                    read.newest = max(read.newest or item["addedAt"], item["addedAt"])
                    read.oldest = min(read.oldest or item["addedAt"], item["addedAt"])
                    if cached.get(item["trackId"]) != item["contentHash"]:
                        changed.append(item)
                writer.put(changed)
                offset = int(page.get("offset") or offset) + len(page.get("items") or [])
                if page.get("next") and page.get("items") and self.out_of_time():
                    read.stopped_at = offset
                    break
        read.written = writer.written
        read.first_page_ids = read.first_page_ids or []
        return read

    def _confirmed_removed(self, candidates: list) -> list:
        """Of the cached tracks a full read did not see, those Spotify confirms are not saved."""
        if not candidates:
            return []
        return [t for t, saved in zip(candidates, self.spotify.contains(candidates), strict=True) if not saved]

    def _mark_failed(self, user_id: str, exc: Exception) -> None:
        if isinstance(exc, CacheTableMissing):
            return
        try:
            self.store.set_sync_status(user_id, "error", f"{type(exc).__name__}: {exc}")
        except Exception:  # recording the failure must not hide the failure itself
            log.warning(json.dumps({"event": "sync_status_not_recorded", "userId": user_id}))

    # -- incremental sync -------------------------------------------------------------------
    def incremental_sync(self, user_id: str, metadata: dict, lease: str) -> SyncResult:
        """Any failure after the first call marks the sync `error` (the next one is full), as in
        a full sync: `ok` means the cache was brought up to date."""
        now = self.now_ms()
        try:
            return self._incremental(user_id, metadata, lease, now)
        except (SpotifyError, CacheTableMissing, LeaseLost, SyncFailed) as exc:
            if isinstance(exc, SpotifyError):
                self._mark_failed(user_id, exc)
            raise
        except Exception as exc:
            self._mark_failed(user_id, exc)
            raise SyncFailed(f"incremental sync failed: {type(exc).__name__}: {exc}") from exc

    def _incremental(self, user_id: str, metadata: dict, lease: str, now: int) -> SyncResult:
        first = self.spotify.saved_tracks_page(0)
        first_items = page_items(user_id, first, now)
        first_ids = [i["trackId"] for i in first_items]
        total = first["total"]
        if total == metadata.get("totalTracks") and first_ids == metadata.get("firstPageIds"):
            self.store.put_metadata_holding({**metadata, "lastSyncedAt": now}, lease)
            return SyncResult("none", total)

        new_items = self._new_items(user_id, first, first_items, set(metadata.get("firstPageIds") or []), now)
        if new_items is None:
            return self.full_sync(user_id, metadata, "too many new tracks to page through", lease)
        removed_count = int(metadata.get("totalTracks", 0)) + len(new_items) - total
        removed: list = []
        if removed_count < 0:
            return self.full_sync(user_id, metadata, "track count does not add up", lease)
        if removed_count:
            found = self._find_removed(user_id, removed_count, len(new_items), first)
            if found is None:
                return self.full_sync(user_id, metadata, f"{removed_count} removal(s) not found quickly", lease)
            removed = self._confirmed_removed(found)
            if len(removed) != len(found):
                # a page answered from a lagging replica places a removal wrongly: only what
                # Spotify confirms is deleted, and the full sync finds the one really removed
                return self.full_sync(user_id, metadata, "Spotify still has a track the pages placed as removed", lease)

        self.store.put_songs(new_items)
        self.store.delete_songs(user_id, removed)
        oldest = next(self.store.query_songs(user_id, newest_first=False, limit=1), {}).get("addedAt")
        self.store.put_metadata_holding({
            **metadata, "totalTracks": total, "lastSyncedAt": now, "firstPageIds": first_ids,
            "mostRecentAddedAt": first_items[0]["addedAt"] if first_items else None, "oldestAddedAt": oldest,
            "syncStatus": "ok", "syncError": "",
        }, lease)
        return SyncResult("incremental", total, added=len(new_items), removed=len(removed))

    def _new_items(self, user_id: str, page: dict, items: list, known: set, now: int) -> Optional[list]:
        """Saved tracks newer than the previous first page: Spotify lists new saves first."""
        new_items: list = []
        pages = 1
        while True:
            for position, item in enumerate(items):
                if item["trackId"] in known:
                    return unique(new_items + items[:position])
            new_items += items
            if not page.get("next") or not items:
                return unique(new_items)
            if pages >= self.max_new_pages:
                return None
            page = self.spotify.saved_tracks_page(page["offset"] + len(page["items"]))
            items = page_items(user_id, page, now)
            pages += 1

    def _find_removed(self, user_id: str, count: int, new_count: int, first: dict) -> Optional[list]:
        """Candidates for the `count` cached tracks no longer saved, in a few page reads (see
        RemovalSearch); None when the pages do not add up. The caller confirms them with Spotify
        before deleting anything."""
        # Recent removals show on the first page: the newest cached ids are enough to name them,
        # and reading all of a large cache's ids is only needed when they are older.
        prefix = list(itertools.islice(self.store.cached_ids_newest_first(user_id), PAGE_SIZE + new_count + count))
        found = RemovalSearch(self.spotify, prefix, count, new_count, first).first_page_only()
        if found is not None:
            return found
        return RemovalSearch(self.spotify, list(self.store.cached_ids_newest_first(user_id)), count, new_count,
                             first).everywhere()

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
            metadata = without_lease(self.store.get_metadata(user_id))
            if not metadata:
                return {"metadata": {"message": "No cache found"}, "sampleTracks": [], "cacheAge": "N/A"}
            sample = list(self.store.query_songs(user_id, limit=SAMPLE_SIZE))
        except CacheTableMissing as exc:
            missing_tables.report(exc.table)
            return {"metadata": {"message": f"No cache: table {exc.table} does not exist (run `checker apply`)"},
                    "sampleTracks": [], "cacheAge": "N/A"}
        shown = {k: v for k, v in metadata.items() if k not in ("firstPageIds", "resumeCandidates", "resumeFirstPageIds")}
        age = (self.now_ms() - int(metadata.get("lastSyncedAt", 0))) / 1000
        answer = {"metadata": shown, "sampleTracks": sample, "cacheAge": human_age(age) if "lastSyncedAt" in metadata
                  else "N/A"}
        paused = Paused.from_metadata(metadata)
        if paused:  # a full sync paused between invocations: how far it got
            answer["syncProgress"] = {"tracksRead": paused.offset, "of": paused.total,
                                      "invocations": paused.invocations, "reason": paused.reason}
        return answer

    def clear(self, user_id: str) -> dict:
        try:
            removed = self.store.clear_user(user_id)
        except CacheTableMissing as exc:
            missing_tables.report(exc.table)
            return {"userId": user_id, "cleared": 0,
                    "message": f"Nothing to clear: table {exc.table} does not exist (run `checker apply`)"}
        return {"userId": user_id, "cleared": removed, "message": f"Cleared {removed} cached track(s)"}


class RemovalSearch:
    """Where the removed tracks are, by position arithmetic over a few pages.

    Spotify's list and the cache (both newest first) agree except where tracks were removed: a
    saved track at position p, cached at index i, has exactly i - (p - new_count) removals before
    it. A page read anywhere thus says how many removals precede it, so removals are found by
    bisecting the pages and named by the gaps between neighbours. This only proposes candidates:
    a page from a lagging replica can place a gap wrongly, so nothing is deleted on its word alone.
    Anything that does not add up (ties in addedAt, a library changing meanwhile) answers None.
    """

    def __init__(self, spotify: SpotifyClient, cached: list, count: int, new_count: int, first: dict):
        self.spotify = spotify
        self.cached = cached
        self.count = count
        self.new_count = new_count
        self.index_of = {track_id: i for i, track_id in enumerate(cached)}
        self.pages: dict = {0: first}
        self.probed: dict = {}
        self.removed: list = []
        self.last_page = max(0, (int(first["total"]) - 1) // PAGE_SIZE)

    def first_page_only(self) -> Optional[list]:
        return self._search(beyond_first_page=False)

    def everywhere(self) -> Optional[list]:
        return self._search(beyond_first_page=True)

    @property
    def all_found(self) -> bool:
        return len(set(self.removed)) >= self.count

    def _search(self, beyond_first_page: bool) -> Optional[list]:
        try:
            head = self.probe(0)
            if not head:
                return None
            self.removed.extend(self.cached[:head[0][1]])   # before the first track still saved
            if not self.all_found:
                if not beyond_first_page:
                    return None
                self._search_the_rest()
        except _DoesNotAddUp:
            return None
        found = list(dict.fromkeys(self.removed))
        return found if len(found) == self.count else None

    def _search_the_rest(self) -> None:
        tail = self.probe(self.last_page)
        if not tail:
            raise _DoesNotAddUp()
        if self.last_page > 0:
            self.between(0, self.last_page)
        self.removed.extend(self.cached[tail[-1][1] + 1:])   # after the last one

    def page(self, k: int) -> dict:
        if k not in self.pages:
            self.pages[k] = self.spotify.saved_tracks_page(k * PAGE_SIZE)
        return self.pages[k]

    def probe(self, k: int) -> list:
        """(position, cached index) of page k's tracks that were cached before, in order; the
        removals between neighbours inside the page are noted on the way."""
        if k not in self.probed:
            found = self._cached_positions(k)
            for (_, before), (_, after) in zip(found, found[1:], strict=False):
                self.removed.extend(self.cached[before + 1:after])
            self.probed[k] = found
        return self.probed[k]

    def _cached_positions(self, k: int) -> list:
        found = []
        for position, saved in enumerate(self.page(k).get("items") or [], start=k * PAGE_SIZE):
            if position < self.new_count:
                continue
            track_id = (saved.get("track") or {}).get("id")
            if track_id not in self.index_of:
                raise _DoesNotAddUp()
            found.append((position, self.index_of[track_id]))
        if [i for _, i in found] != sorted(i for _, i in found):
            raise _DoesNotAddUp()
        return found

    def between(self, lo: int, hi: int) -> None:
        """Removals after page lo's last track and before page hi's first one (lo < hi)."""
        if self.all_found:
            return  # the totals say there are no more
        (last_position, a), (first_position, b) = self.probe(lo)[-1], self.probe(hi)[0]
        if (b - a) - (first_position - last_position) == 0:
            return  # as many cached tracks as saved ones in between: nothing removed there
        if hi == lo + 1:
            self.removed.extend(self.cached[a + 1:b])
            return
        mid = (lo + hi) // 2
        self.between(lo, mid)
        self.between(mid, hi)
