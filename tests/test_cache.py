"""The liked-songs cache against moto and the fake Spotify, counting the fake's calls."""
from __future__ import annotations

import json
import logging
import threading

import boto3
import pytest
from moto import mock_aws

from spotify_playlist.liked_songs_cache import CACHE_FORMAT_VERSION
from spotify_playlist.spotify import SpotifyError

from .conftest import REGION, load_spec
from .runtime import cached_ids, create_cache_tables, make_cache

PAGES = "/v1/me/tracks"
CONTAINS = "/v1/me/tracks/contains"


@pytest.fixture
def dynamodb():
    with mock_aws():
        yield create_cache_tables()


@pytest.fixture
def synced(dynamodb, fake_spotify):
    """alice has 1,234 saved tracks, fully synced; the fake's counters are reset."""
    fake_spotify.add_user("alice", 1234)
    cache = make_cache(fake_spotify, "alice", dynamodb)
    cache.sync("alice")
    fake_spotify.reset_counts()
    return cache


def test_first_sync_of_1234_tracks(dynamodb, fake_spotify):
    fake_spotify.add_user("alice", 1234)
    cache = make_cache(fake_spotify, "alice", dynamodb)
    result = cache.sync("alice")
    assert (result.mode, result.total) == ("full", 1234)
    assert fake_spotify.calls[PAGES] == 25
    assert cache.store.count_songs("alice") == 1234
    assert cached_ids(cache.store, "alice") == set(fake_spotify.saved_ids("alice"))
    metadata = cache.store.get_metadata("alice")
    assert metadata["totalTracks"] == 1234 and metadata["syncStatus"] == "ok"
    assert metadata["syncVersion"] == CACHE_FORMAT_VERSION
    assert metadata["lastFullSyncAt"] == metadata["lastSyncedAt"]
    assert metadata["mostRecentAddedAt"] > metadata["oldestAddedAt"]
    assert len(metadata["firstPageIds"]) == 50


def test_cached_items_hold_the_design_fields(synced, fake_spotify):
    newest = next(synced.store.query_songs("alice"))
    assert newest["trackId"] == fake_spotify.saved_ids("alice")[0]
    assert set(newest) == {"userId", "trackId", "trackUri", "trackName", "artistName", "artistId", "albumName",
                           "albumId", "addedAt", "syncedAt", "durationMs", "popularity", "contentHash"}


def test_nothing_changed_costs_exactly_one_call(synced, fake_spotify):
    result = synced.sync("alice")
    assert result.mode == "none"
    assert sum(fake_spotify.calls.values()) == 1


def test_seven_new_tracks_cost_one_call(synced, fake_spotify):
    added = fake_spotify.add_tracks("alice", 7)
    result = synced.sync("alice")
    assert (result.mode, result.added, result.removed) == ("incremental", 7, 0)
    assert sum(fake_spotify.calls.values()) == 1
    assert synced.store.count_songs("alice") == 1241
    assert [s["trackId"] for s in synced.store.query_songs("alice", limit=7)] == added


def test_120_new_tracks_cost_three_calls(synced, fake_spotify):
    fake_spotify.add_tracks("alice", 120)
    result = synced.sync("alice")
    assert (result.mode, result.added) == ("incremental", 120)
    assert fake_spotify.calls[PAGES] == 3 and sum(fake_spotify.calls.values()) == 3
    assert cached_ids(synced.store, "alice") == set(fake_spotify.saved_ids("alice"))


def test_three_recent_removals(synced, fake_spotify):
    gone = [fake_spotify.saved_ids("alice")[i] for i in (0, 4, 30)]
    fake_spotify.remove_tracks("alice", gone)
    result = synced.sync("alice")
    assert (result.mode, result.removed) == ("incremental", 3)
    # the first page shows the gaps; one contains call confirms them before anything is deleted
    assert (fake_spotify.calls[PAGES], fake_spotify.calls[CONTAINS]) == (1, 1)
    assert not cached_ids(synced.store, "alice") & set(gone)
    assert synced.store.count_songs("alice") == 1231
    assert synced.store.get_metadata("alice")["totalTracks"] == 1231


def test_additions_and_removals_together(synced, fake_spotify):
    fake_spotify.remove_tracks("alice", fake_spotify.saved_ids("alice")[10:12])
    fake_spotify.add_tracks("alice", 5)
    result = synced.sync("alice")
    assert (result.added, result.removed) == (5, 2)
    assert cached_ids(synced.store, "alice") == set(fake_spotify.saved_ids("alice"))


def test_the_oldest_removals_cost_two_page_reads(synced, fake_spotify):
    fake_spotify.remove_tracks("alice", fake_spotify.saved_ids("alice")[-3:])  # the oldest three
    result = synced.sync("alice")
    assert (result.mode, result.removed) == ("incremental", 3)
    # the first page and the last, and one contains call confirming the removals
    assert (fake_spotify.calls[PAGES], fake_spotify.calls[CONTAINS]) == (2, 1)
    assert cached_ids(synced.store, "alice") == set(fake_spotify.saved_ids("alice"))


@pytest.mark.parametrize("positions, added", [((1500, 1700, 1999), 0), ((1501, 1502, 1800), 0), ((1600, 1800, 1990), 7)])
def test_old_removals_are_found_by_bisecting_pages_in_at_most_16_calls(dynamodb, fake_spotify, positions, added):
    fake_spotify.add_user("bob", 2000)
    cache = make_cache(fake_spotify, "bob", dynamodb)
    cache.sync("bob")
    fake_spotify.reset_counts()
    fake_spotify.remove_tracks("bob", [fake_spotify.saved_ids("bob")[i] for i in positions])
    fake_spotify.add_tracks("bob", added)
    result = cache.sync("bob")
    assert (result.mode, result.added, result.removed) == ("incremental", added, 3)
    assert sum(fake_spotify.calls.values()) <= 16, fake_spotify.calls
    assert cached_ids(cache.store, "bob") == set(fake_spotify.saved_ids("bob"))


def test_stale_cache_gets_a_full_sync(synced, fake_spotify):
    later = synced.clock() + 25 * 3600
    synced.clock = lambda: later
    result = synced.sync("alice")
    assert result.mode == "full" and "old" in result.reason


def test_rate_limit_is_waited_out(dynamodb, fake_spotify):
    fake_spotify.add_user("alice", 120)
    sleeps = []
    cache = make_cache(fake_spotify, "alice", dynamodb, sleeps=sleeps)
    fake_spotify.fail_next(429, times=1, retry_after=3, after=1)
    result = cache.sync("alice")
    assert result.total == 120
    assert sleeps == [3.0]
    assert fake_spotify.calls[PAGES] == 4  # 3 pages, one of them asked twice


def test_failed_sync_leaves_old_items_readable(synced, fake_spotify):
    before = cached_ids(synced.store, "alice")
    fake_spotify.remove_tracks("alice", fake_spotify.saved_ids("alice")[:200])
    fake_spotify.fail_next(500, times=100, after=5)
    with pytest.raises(SpotifyError):
        synced.sync("alice", force_full=True)
    assert cached_ids(synced.store, "alice") == before  # nothing deleted mid-sync
    metadata = synced.store.get_metadata("alice")
    assert metadata["syncStatus"] == "error" and "HTTP 500" in metadata["syncError"]
    assert metadata["totalTracks"] == 1234  # the rest of the metadata is intact
    # Spotify still failing: the app is served from the previous cache.
    assert len(synced.my_saved_tracks("alice")) == 1234
    # Spotify back: the error status forces a full sync that repairs the cache.
    fake_spotify.faults.clear()
    assert synced.sync("alice").mode == "full"
    assert cached_ids(synced.store, "alice") == set(fake_spotify.saved_ids("alice"))


def test_my_saved_tracks_syncs_and_reads_newest_first(dynamodb, fake_spotify):
    fake_spotify.add_user("alice", 60)
    cache = make_cache(fake_spotify, "alice", dynamodb)
    tracks = cache.my_saved_tracks("alice")
    assert [t["trackId"] for t in tracks] == fake_spotify.saved_ids("alice")


def test_clearing_one_user_keeps_the_others(dynamodb, fake_spotify):
    fake_spotify.add_user("alice", 80)
    fake_spotify.add_user("bob", 30)
    alice, bob = make_cache(fake_spotify, "alice", dynamodb), make_cache(fake_spotify, "bob", dynamodb)
    alice.sync("alice")
    bob.sync("bob")
    assert alice.clear("alice")["cleared"] == 80
    assert alice.store.count_songs("alice") == 0 and alice.store.get_metadata("alice") is None
    assert bob.store.count_songs("bob") == 30 and bob.store.get_metadata("bob")["totalTracks"] == 30


def test_stats_on_empty_and_full_cache(dynamodb, fake_spotify):
    fake_spotify.add_user("alice", 12)
    cache = make_cache(fake_spotify, "alice", dynamodb)
    assert cache.stats("alice") == {"metadata": {"message": "No cache found"}, "sampleTracks": [], "cacheAge": "N/A"}
    cache.sync("alice")
    stats = cache.stats("alice")
    assert stats["metadata"]["totalTracks"] == 12
    assert [t["trackId"] for t in stats["sampleTracks"]] == fake_spotify.saved_ids("alice")[:5]
    assert stats["cacheAge"].endswith("s")
    json.dumps(stats)  # serialisable as the handler returns it


class Unprocessing:
    """A DynamoDB client whose BatchWriteItem leaves the last few requests unprocessed, twice."""

    def __init__(self, resource, times=2, left=3):
        self._resource = resource
        self.times = times
        self.left = left
        self.batch_sizes = []

    def __getattr__(self, name):
        return getattr(self._resource, name)

    def batch_write_item(self, RequestItems):
        ((table, requests),) = RequestItems.items()
        self.batch_sizes.append(len(requests))
        if self.times:
            self.times -= 1
            if requests[:-self.left]:
                self._resource.batch_write_item(RequestItems={table: requests[:-self.left]})
            return {"UnprocessedItems": {table: requests[-self.left:]}}
        return self._resource.batch_write_item(RequestItems=RequestItems)


def test_unprocessed_items_are_retried_until_none_left(dynamodb, fake_spotify):
    from spotify_playlist.dynamo import LikedSongsStore, plain_client
    fake_spotify.add_user("alice", 60)
    client = Unprocessing(plain_client(dynamodb))
    cache = make_cache(fake_spotify, "alice", dynamodb)
    cache.store = LikedSongsStore(dynamodb, sleep=lambda s: None, write_concurrency=1, client=client)  # in order
    cache.sync("alice")
    assert cache.store.count_songs("alice") == 60
    assert client.batch_sizes[:3] == [25, 3, 3]  # 25 at most a call, the unprocessed re-sent
    assert max(client.batch_sizes) == 25


def test_missing_tables_degrade_to_spotify_with_one_error_line(fake_spotify, caplog):
    fake_spotify.add_user("alice", 70)
    with mock_aws():
        cache = make_cache(fake_spotify, "alice", boto3.resource("dynamodb", region_name=REGION))
        with caplog.at_level(logging.WARNING):
            first = cache.my_saved_tracks("alice")
            second = cache.my_saved_tracks("alice")
    assert [t["trackId"] for t in first] == fake_spotify.saved_ids("alice") == [t["trackId"] for t in second]
    warnings = [r for r in caplog.records if "table_missing" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.ERROR
    assert "liked_songs_metadata does not exist" in warnings[0].getMessage()
    assert "checker apply" in warnings[0].getMessage()


class HalfProcessing:
    """A DynamoDB client whose every BatchWriteItem takes only the first half of what it is sent."""

    def __init__(self, resource):
        self._resource = resource
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._resource, name)

    def batch_write_item(self, RequestItems):
        ((table, requests),) = RequestItems.items()
        self.calls += 1
        taken, left = requests[:(len(requests) + 1) // 2], requests[(len(requests) + 1) // 2:]
        self._resource.batch_write_item(RequestItems={table: taken})
        return {"UnprocessedItems": {table: left}} if left else {}


def test_half_processed_batches_finish_because_progress_resets_the_budget(dynamodb, fake_spotify):
    from spotify_playlist.dynamo import LikedSongsStore, plain_client
    fake_spotify.add_user("alice", 300)
    cache = make_cache(fake_spotify, "alice", dynamodb)
    sleeps = []
    client = HalfProcessing(plain_client(dynamodb))
    cache.store = LikedSongsStore(dynamodb, sleep=sleeps.append, max_batch_attempts=3, client=client)
    assert cache.sync("alice").total == 300
    assert cache.store.count_songs("alice") == 300
    assert len(sleeps) == client.calls - 12  # no sleep after the call that finished a batch


def test_an_overlapping_sync_for_the_same_user_serves_the_cache_and_says_so(synced, fake_spotify):
    assert synced.store.take_lease("alice", "another-sync", synced.now_ms(), synced.now_ms() + 60_000)
    fake_spotify.remove_tracks("alice", fake_spotify.saved_ids("alice")[:5])
    synced.lease_wait = 0.5
    synced.sleep = lambda seconds: None
    result = synced.sync("alice")
    assert (result.mode, result.total) == ("busy", 1234)
    assert "another sync" in result.reason
    assert synced.store.count_songs("alice") == 1234  # nothing touched while the other sync holds the lease
    synced.store.release_lease("alice", "another-sync")
    assert synced.sync("alice").mode == "incremental"
    assert synced.store.count_songs("alice") == 1229


def test_two_syncs_at_once_lose_no_track(dynamodb, fake_spotify):
    import threading
    fake_spotify.add_user("alice", 400)
    caches = [make_cache(fake_spotify, "alice", dynamodb, lease_wait=0.0) for _ in range(2)]
    caches[0].sync("alice")
    fake_spotify.add_tracks("alice", 60)
    fake_spotify.remove_tracks("alice", fake_spotify.saved_ids("alice")[100:103])
    both_asked = threading.Barrier(2, timeout=30)  # overlap for sure, however loaded the machine
    # DynamoDB's conditional writes are atomic; moto's in-process backend is not thread-safe (two
    # UpdateItems on one item at once can fail inside moto), so the two lease writes take turns
    atomic = threading.Lock()

    def take_lease_then_wait_for_the_other(store, original):
        def take_lease(*args):
            with atomic:
                taken = original(*args)
            both_asked.wait()
            store.take_lease = original
            return taken
        return take_lease
    for cache in caches:
        cache.store.take_lease = take_lease_then_wait_for_the_other(cache.store, cache.store.take_lease)
    results = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.sync("alice", force_full=True))) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.mode for r in results) == ["busy", "full"]  # one waited out by the lease, not raced
    assert cached_ids(caches[0].store, "alice") == set(fake_spotify.saved_ids("alice"))
    metadata = caches[0].store.get_metadata("alice")
    assert metadata["totalTracks"] == 457 and "syncLease" not in metadata


def test_a_library_that_changes_during_a_full_sync_is_read_again_and_loses_nothing(dynamodb, fake_spotify):
    fake_spotify.add_user("alice", 500)
    cache = make_cache(fake_spotify, "alice", dynamodb, page_concurrency=1)
    cache.sync("alice")
    original = cache.spotify.saved_tracks_page
    calls = []

    def page_while_the_user_saves_tracks(offset=0, limit=50):
        calls.append(offset)
        if len(calls) == 4:  # mid-read: 30 new saves shift every later offset by 30
            fake_spotify.add_tracks("alice", 30)
        return original(offset, limit)
    cache.spotify.saved_tracks_page = page_while_the_user_saves_tracks
    result = cache.sync("alice", force_full=True)
    assert result.mode == "full" and calls.count(0) == 2  # read once more from the start
    assert cached_ids(cache.store, "alice") == set(fake_spotify.saved_ids("alice"))
    assert cache.store.get_metadata("alice")["syncStatus"] == "ok"


def test_a_full_sync_deletes_only_what_spotify_confirms_is_gone(synced, fake_spotify):
    """If a page read skipped tracks (offsets shifted by a removal), they are not deleted."""
    gone = fake_spotify.saved_ids("alice")[700:702]
    original = synced.spotify.saved_tracks_page

    def page_missing_some(offset=0, limit=50):
        page = original(offset, limit)
        return {**page, "items": [i for i in page["items"] if i["track"]["id"] not in gone]}
    synced.spotify.saved_tracks_page = page_missing_some
    result = synced.sync("alice", force_full=True)
    assert result.removed == 0 and set(gone) <= cached_ids(synced.store, "alice")  # still saved: kept


def test_a_forced_full_sync_with_nothing_changed_writes_nothing(synced, fake_spotify):
    writes = []
    synced.store.client.meta.events.register(
        "before-call.dynamodb.BatchWriteItem", lambda **kw: writes.append(kw["params"]))
    result = synced.sync("alice", force_full=True)
    assert (result.mode, result.added, result.removed, writes) == ("full", 0, 0, [])
    fake_spotify.libraries["alice"][600]["track"]["name"] = "Renamed by its artist"
    assert synced.sync("alice", force_full=True).added == 1 and len(writes) == 1  # only what changed


def test_a_missing_index_degrades_like_a_missing_table_and_names_it(fake_spotify, caplog):
    fake_spotify.add_user("alice", 60)
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name=REGION)
        spec = load_spec("liked_songs")
        spec.pop("GlobalSecondaryIndexes")
        spec["AttributeDefinitions"] = spec["AttributeDefinitions"][:2]
        resource.meta.client.create_table(**spec)
        resource.meta.client.create_table(**load_spec("liked_songs_metadata"))
        cache = make_cache(fake_spotify, "alice", resource)
        with caplog.at_level(logging.INFO):
            tracks = cache.my_saved_tracks("alice")
            stats = cache.stats("alice")
    assert [t["trackId"] for t in tracks] == fake_spotify.saved_ids("alice")
    assert "index userId-addedAt-index" in stats["metadata"]["message"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "liked_songs index userId-addedAt-index" in errors[0]


def test_a_retry_after_longer_than_a_request_can_wait_fails_at_once(dynamodb, fake_spotify):
    fake_spotify.add_user("alice", 10)
    sleeps = []
    cache = make_cache(fake_spotify, "alice", dynamodb, sleeps=sleeps)
    fake_spotify.fail_next(429, times=1, retry_after=3600)
    with pytest.raises(SpotifyError, match="asks to wait 3600s"):
        cache.spotify.saved_tracks_page(0)
    assert sleeps == []


def test_a_sync_whose_lease_was_taken_over_does_not_write_over_the_other(synced, fake_spotify):
    """The lease expired mid-sync and another sync took it: the first one ends as "busy" and the
    other's metadata stands (seen once under load, when two syncs' conditional writes raced)."""
    original = synced.store.cached_index

    def taken_over_meanwhile(user_id):
        synced.store.metadata.update_item(  # as after our lease expired: another sync holds it now
            Key={"userId": user_id}, UpdateExpression="SET syncLease = :other, syncLeaseUntil = :until",
            ExpressionAttributeValues={":other": "the-other-sync", ":until": synced.now_ms() + 60_000})
        return original(user_id)
    synced.store.cached_index = taken_over_meanwhile
    result = synced.sync("alice", force_full=True)
    assert (result.mode, result.total) == ("busy", 1234) and "took over" in result.reason
    assert synced.store.get_metadata("alice")["syncLease"] == "the-other-sync"


def test_song_items_are_sent_in_the_wire_form_typeserializer_gives():
    from decimal import Decimal

    from boto3.dynamodb.types import TypeSerializer

    from spotify_playlist.dynamo import typed
    item = {"userId": "alice", "trackId": "t1", "addedAt": 1_600_000_000_000, "popularity": 0, "trackName": "",
            "explicit": True, "rating": Decimal("4.5"), "tags": ["a"], "extra": {"k": 1}, "gone": None}
    assert typed(item) == {name: TypeSerializer().serialize(value) for name, value in item.items()}


class CountingClient:
    """A low-level client that records when each BatchWriteItem starts and how many run at once."""

    def __init__(self, client, events):
        self._client = client
        self.events = events
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems):
        with self.lock:
            self.events.append("write")
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return self._client.batch_write_item(RequestItems=RequestItems)
        finally:
            with self.lock:
                self.running -= 1


def test_a_full_sync_writes_while_it_reads_with_bounded_writers(dynamodb, fake_spotify):
    """Writes start as the first pages come, not after the last one: the sync takes as long as the
    slower of reading and writing, and at most `write_concurrency` calls run at once."""
    from spotify_playlist.dynamo import LikedSongsStore, plain_client
    fake_spotify.add_user("alice", 2000)
    events: list = []
    cache = make_cache(fake_spotify, "alice", dynamodb)
    client = CountingClient(plain_client(dynamodb), events)
    cache.store = LikedSongsStore(dynamodb, write_concurrency=3, client=client)
    original = cache.spotify.saved_tracks_page

    def page(offset=0, limit=50):
        events.append(f"page {offset}")
        return original(offset, limit)
    cache.spotify.saved_tracks_page = page
    assert cache.sync("alice").added == 2000
    assert events.count("write") == 80 and cache.store.count_songs("alice") == 2000
    # writes interleave with the reading: written after the last page, this would be 0. (With the
    # threads scheduled promptly it is about 56 = 80 - 2 x 3 waiting batches - 9 pages read ahead x 2;
    # a busy machine delays the writers' threads, so the bound asks for a quarter of them)
    assert events[:events.index("page 1950")].count("write") >= 20
    assert 1 < client.most_at_once <= 3


def test_a_track_read_twice_across_pages_is_written_once(dynamodb, fake_spotify):
    """A removal mid-read shifts offsets: the first track of a page was the last of the one before.
    Where a batch of 25 straddles the two pages (a local file, which has no id, made page 0 hold
    49 tracks), sending it twice would fail the whole sync: DynamoDB refuses duplicate keys."""
    fake_spotify.add_user("alice", 200)
    cache = make_cache(fake_spotify, "alice", dynamodb)
    original = cache.spotify.saved_tracks_page
    local_file = fake_spotify.saved_ids("alice")[10]

    def shifted(offset=0, limit=50):
        page = original(offset, limit)
        items = list(page["items"])
        if offset == 0:
            items[10] = {"added_at": items[10]["added_at"], "track": {"id": None, "name": "a local file"}}
        if offset == 50:
            items.insert(0, original(0, 50)["items"][-1])
        return {**page, "items": items}
    cache.spotify.saved_tracks_page = shifted
    result = cache.sync("alice")
    assert result.mode == "full" and result.added == 199
    assert cached_ids(cache.store, "alice") == set(fake_spotify.saved_ids("alice")) - {local_file}


def test_a_save_between_two_page_reads_of_new_tracks_writes_each_once(synced, fake_spotify):
    fake_spotify.add_tracks("alice", 60)
    original = synced.spotify.saved_tracks_page

    def a_save_after_the_first_page(offset=0, limit=50):
        if offset == 50:
            fake_spotify.add_tracks("alice", 1)  # everything after shifts by one
        return original(offset, limit)
    synced.spotify.saved_tracks_page = a_save_after_the_first_page
    result = synced.sync("alice")
    assert result.mode in ("incremental", "full")
    synced.spotify.saved_tracks_page = original
    synced.sync("alice")  # the next sync catches up with the save made meanwhile
    assert cached_ids(synced.store, "alice") == set(fake_spotify.saved_ids("alice"))
    assert synced.store.count_songs("alice") == 1234 + 61


class FailingAfter:
    """A low-level client whose BatchWriteItem fails with an AWS error from its `after`-th call on."""

    def __init__(self, client, after):
        self._client = client
        self.after = after
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems):
        from botocore.exceptions import ClientError
        self.calls += 1
        if self.calls >= self.after:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "BatchWriteItem")
        return self._client.batch_write_item(RequestItems=RequestItems)


def test_a_write_failing_mid_sync_stops_it_and_keeps_the_previous_cache(synced, fake_spotify):
    from spotify_playlist.dynamo import LikedSongsStore, plain_client
    from spotify_playlist.liked_songs_cache import SyncFailed
    for saved in fake_spotify.libraries["alice"][:600]:  # 600 tracks renamed: 24 batches to write
        saved["track"]["name"] += " (remastered)"
    fake_spotify.remove_tracks("alice", fake_spotify.saved_ids("alice")[1000:1010])
    failing = FailingAfter(plain_client(synced.store.resource), after=5)
    synced.store = LikedSongsStore(synced.store.resource, client=failing, sleep=lambda s: None)
    with pytest.raises(SyncFailed, match="InternalServerError"):
        synced.sync("alice", force_full=True)
    assert failing.calls < 5 + 2 * 4 + 4  # stopped soon after: queued batches cancelled, none sent later
    assert synced.store.count_songs("alice") == 1234  # nothing deleted: the removals wait for a whole read
    metadata = synced.store.get_metadata("alice")
    assert metadata["syncStatus"] == "error" and "syncLease" not in metadata
    synced.store = LikedSongsStore(synced.store.resource, sleep=lambda s: None)
    assert synced.sync("alice").mode == "full"  # the error status forces a full sync that repairs it
    assert cached_ids(synced.store, "alice") == set(fake_spotify.saved_ids("alice"))


def test_a_lagging_page_never_deletes_a_saved_track(synced, fake_spotify):
    """A first page answered one item late (a lagging replica) makes the position arithmetic name
    the newest track as the removal; Spotify denies it, so nothing saved is deleted and the full
    sync that follows removes the track really gone."""
    saved = fake_spotify.saved_ids("alice")
    really_gone = saved[700]
    fake_spotify.remove_tracks("alice", [really_gone])
    honest = synced.spotify.saved_tracks_page
    late = iter([True])

    def lagging(offset=0, limit=50):
        if offset == 0 and next(late, False):
            page = honest(1, limit)
            return {**page, "offset": 0}
        return honest(offset, limit)
    synced.spotify.saved_tracks_page = lagging
    result = synced.sync("alice")
    assert result.mode == "full" and "Spotify still has" in result.reason
    cached = cached_ids(synced.store, "alice")
    assert saved[0] in cached and really_gone not in cached
    assert cached == set(fake_spotify.saved_ids("alice"))
    assert synced.store.get_metadata("alice")["syncStatus"] == "ok"


def test_an_incremental_sync_failing_after_its_first_page_is_marked_error(synced, fake_spotify):
    from spotify_playlist.liked_songs_cache import SyncFailed
    fake_spotify.add_tracks("alice", 3)
    fake_spotify.remove_tracks("alice", fake_spotify.saved_ids("alice")[20:22])

    def broken(*args, **kwargs):
        raise RuntimeError("BatchWriteItem refused")
    synced.store.put_songs = broken
    with pytest.raises(SyncFailed, match="incremental sync failed"):
        synced.sync("alice")
    metadata = synced.store.get_metadata("alice")
    assert metadata["syncStatus"] == "error" and "BatchWriteItem refused" in metadata["syncError"]
    assert "syncLease" not in metadata


class PageBudget:
    """An invocation's remaining time, as seen by the cache: plenty for `pages` Spotify page
    reads of this invocation, then none (deterministic, whatever the machine's speed)."""

    def __init__(self, fake, pages: int):
        self.fake, self.pages, self.start = fake, pages, 0

    def new_invocation(self):
        self.start = self.fake.calls[PAGES]

    def __call__(self) -> float:
        return 60.0 if self.fake.calls[PAGES] - self.start < self.pages else 0.0


def test_a_full_sync_longer_than_an_invocation_goes_on_over_several_and_loses_nothing(synced, fake_spotify):
    """2,000 tracks, 12 pages an invocation: the sync pauses (`partial`, the cache serving what it
    has), each next call goes on where it stopped."""
    fake_spotify.add_user("bob", 2000)
    budget = PageBudget(fake_spotify, pages=12)
    cache = make_cache(fake_spotify, "bob", synced.store.resource, remaining=budget, reserve=1.0)
    results, offsets = [], []
    for _ in range(20):
        budget.new_invocation()
        results.append(cache.sync("bob"))
        if results[-1].mode != "partial":
            break
        metadata = cache.store.get_metadata("bob")
        assert metadata["syncStatus"] == "partial"
        offsets.append(int(metadata["resumeOffset"]))
        stats = cache.stats("bob")
        assert stats["syncProgress"]["tracksRead"] == offsets[-1] and stats["syncProgress"]["of"] == 2000
    assert len(results) >= 4 and {r.mode for r in results[:-1]} == {"partial"} and results[-1].mode == "full"
    assert offsets == sorted(set(offsets)) and all(o % 50 == 0 for o in offsets)   # page boundaries, onwards
    assert results[-1].total == 2000 and results[-1].added == 2000
    assert cached_ids(cache.store, "bob") == set(fake_spotify.saved_ids("bob"))
    assert cache.store.count_songs("bob") == 2000            # every track present once
    metadata = cache.store.get_metadata("bob")
    assert metadata["syncStatus"] == "ok" and "resumeOffset" not in metadata and "syncLease" not in metadata


def test_a_paused_full_sync_deletes_removals_only_after_its_last_page(synced, fake_spotify):
    ids = fake_spotify.saved_ids("alice")
    gone_early, gone_late = ids[100], ids[1200]          # one in the first invocation's part, one in the last
    fake_spotify.remove_tracks("alice", [gone_early, gone_late])
    budget = PageBudget(fake_spotify, pages=10)
    cache = make_cache(fake_spotify, "alice", synced.store.resource, remaining=budget, reserve=1.0)
    budget.new_invocation()
    first = cache.sync("alice", force_full=True)
    assert first.mode == "partial"
    assert {gone_early, gone_late} <= cached_ids(cache.store, "alice")   # nothing deleted while paused
    assert cache.store.get_metadata("alice")["resumeCandidates"] == [gone_early]
    while True:
        budget.new_invocation()
        result = cache.sync("alice")
        if result.mode != "partial":
            break
    assert result.removed == 2
    assert cached_ids(cache.store, "alice") == set(fake_spotify.saved_ids("alice"))


def test_a_paused_sync_is_taken_over_by_one_caller_and_frees_itself_if_never_resumed(synced, fake_spotify):
    fake_spotify.add_user("carol", 300)
    budget = PageBudget(fake_spotify, pages=2)
    now = [1_700_000_000.0]
    cache = make_cache(fake_spotify, "carol", synced.store.resource, remaining=budget, reserve=1.0,
                       clock=lambda: now[0])
    budget.new_invocation()
    assert cache.sync("carol").mode == "partial"
    held = cache.store.get_metadata("carol")
    assert held["syncLease"] == held["resumeLease"]        # held for the continuation, with an expiry
    assert cache.store.take_lease("carol", "first-caller", int(now[0] * 1000), int(now[0] * 1000) + 1000)
    assert not cache.store.take_lease("carol", "second-caller", int(now[0] * 1000), int(now[0] * 1000) + 1000)
    cache.store.release_lease("carol", "first-caller")
    # never resumed: after its expiry anyone may sync again, and it goes on from where it stopped
    budget.new_invocation()
    assert cache.sync("carol").mode == "partial"
    now[0] += 16 * 60
    budget.pages = 100
    budget.new_invocation()
    final = cache.sync("carol")
    assert final.mode == "full" and cache.store.count_songs("carol") == 300


def test_the_page_window_widens_while_spotify_is_slow_and_narrows_when_it_pushes_back(dynamodb, fake_spotify):
    fake_spotify.add_user("dana", 1000)
    fake_spotify.latency = 0.1               # latency dominates: more pages in flight hide it
    cache = make_cache(fake_spotify, "dana", dynamodb, page_concurrency=4)
    assert cache.sync("dana").total == 1000
    assert cache.spotify.window.largest > 4
    fake_spotify.latency = 0.0
    fake_spotify.add_user("erin", 1000)
    # Spotify pushes back: fewer 429s than a page may retry (5), so no page fails even if all hit one
    fake_spotify.fail_next(429, times=4, retry_after=0, after=2)
    cache = make_cache(fake_spotify, "erin", dynamodb, page_concurrency=8)
    assert cache.sync("erin").total == 1000
    assert cache.spotify.window.smallest < 8
    assert cached_ids(cache.store, "erin") == set(fake_spotify.saved_ids("erin"))


def test_throttled_writes_narrow_the_page_window(dynamodb, fake_spotify):
    from spotify_playlist.spotify import PageWindow
    window = PageWindow(start=8)
    store = make_cache(fake_spotify, "x", dynamodb).store
    responses = iter([{"UnprocessedItems": {"liked_songs": [{"PutRequest": {"Item": {}}}]}}, {}])
    store._client = type("Stub", (), {"batch_write_item": lambda self, **kw: next(responses)})()
    assert store.write_batch([{"PutRequest": {"Item": {}}}], throttled=window.pushed_back) == 1
    assert window.size == 4 and window.smallest == 4


def test_the_writers_narrow_while_the_table_pushes_back_and_stay_wide_while_it_does_not(dynamodb, fake_spotify):
    """Half of the calls throttled: fewer writers back off instead of four burning retries; nothing
    lost either way, and a table that takes everything keeps all four busy."""
    import threading
    import time as clock

    from spotify_playlist.dynamo import SongWriter
    store = make_cache(fake_spotify, "x", dynamodb).store
    store.sleep = lambda seconds: None

    class Table:
        def __init__(self, throttle_every: int):
            self.throttle_every, self.calls, self.running, self.peak = throttle_every, 0, 0, 0
            self.taken: list = []
            self.lock = threading.Lock()

        def batch_write_item(self, RequestItems):
            with self.lock:
                self.calls += 1
                self.running += 1
                self.peak = max(self.peak, self.running)
                throttled = self.throttle_every and self.calls % self.throttle_every == 0
            clock.sleep(0.005)
            with self.lock:
                self.running -= 1
                if not throttled:
                    self.taken += [r["PutRequest"]["Item"]["trackId"]["S"] for r in RequestItems["liked_songs"]]
            return {"UnprocessedItems": RequestItems} if throttled else {}

    for throttle_every, narrowed in ((2, True), (0, False)):
        store._client = table = Table(throttle_every)
        writer = SongWriter(store, 4)
        with writer:
            writer.put({"userId": "x", "trackId": f"t{n:04d}"} for n in range(1000))
        assert writer.written == 1000 and sorted(table.taken) == [f"t{n:04d}" for n in range(1000)]
        assert (writer.smallest < 4) is narrowed, (throttle_every, writer.smallest)
        if not narrowed:
            assert table.peak == 4
