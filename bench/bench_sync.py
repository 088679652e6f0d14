"""How long do a full and an incremental liked-songs sync take, and how many Spotify calls?

Runs the fake Spotify (with optional per-call latency) and moto's mock DynamoDB in-process.
Prints figures; asserts nothing. Usage: .venv/bin/python bench/bench_sync.py [tracks] [latency_ms]
"""
from __future__ import annotations

import os
import statistics
import sys
import time
import tracemalloc

import boto3
from moto import mock_aws

from checker.specs import load_specs
from checker.testing.fake_spotify import FakeSpotify
from spotify_playlist.dynamo import LikedSongsStore
from spotify_playlist.liked_songs_cache import LikedSongsCache
from spotify_playlist.spotify import SpotifyClient, SpotifyCredentials

SPECS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "table_specs")


def create_cache_tables(resource):
    for spec in load_specs(SPECS):
        if spec.name in ("liked_songs", "liked_songs_metadata"):
            resource.meta.client.create_table(**spec.request)
    return resource


DYNAMODB_CALLS: list = []


def count_calls(*clients) -> None:
    for client in clients:
        client.meta.events.register("before-call.dynamodb", lambda **kw: DYNAMODB_CALLS.append(1))


def timed(label, fake, action, writes=False) -> float:
    """Runs one sync and prints its figures; Spotify calls are counted when the fake is in-process."""
    if fake:
        fake.reset_counts()
    DYNAMODB_CALLS.clear()
    started_at = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started_at
    written = f"  {result.added} item writes" if writes else ""
    spotify_calls = f"{sum(fake.calls.values()):4d} Spotify calls  " if fake else ""
    print(f"{label:<28} {seconds:7.3f} s  {spotify_calls}"
          f"{len(DYNAMODB_CALLS):4d} DynamoDB calls  mode={result.mode} total={result.total}{written}")
    return seconds


def main(tracks: int, latency_ms: float) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with mock_aws(), FakeSpotify(latency=latency_ms / 1000) as fake:
        resource = create_cache_tables(boto3.resource("dynamodb", region_name="us-east-1"))
        fake.add_user("bench", tracks)
        spotify = SpotifyClient(SpotifyCredentials(refresh_token="refresh-bench"), api_base=fake.api_base,
                                accounts_base=fake.url)
        store = LikedSongsStore(resource)
        count_calls(resource.meta.client, store.client)
        cache = LikedSongsCache(store, spotify)
        naive_started = time.perf_counter()
        pages = list(spotify.saved_track_pages())
        print(f"naive: paginate Spotify on every request: {time.perf_counter() - naive_started:.3f} s, "
              f"{len(pages)} calls")
        print(f"{tracks} saved tracks, {latency_ms:g} ms per Spotify call")
        tracemalloc.start()  # slows Python down: this one time is not comparable with the others
        timed("first full sync (traced)", fake, lambda: cache.sync("bench"))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{'  its peak Python heap':<28} {peak / 2**20:7.1f} MiB (moto's tables included)")
        timed("nothing changed", fake, lambda: cache.sync("bench"))
        fake.add_tracks("bench", 25)
        timed("25 new tracks", fake, lambda: cache.sync("bench"))
        fake.remove_tracks("bench", fake.saved_ids("bench")[5:8])
        timed("3 recent removals", fake, lambda: cache.sync("bench"))
        ids = fake.saved_ids("bench")
        fake.remove_tracks("bench", [ids[int(len(ids) * f)] for f in (0.76, 0.85, 0.99)])
        timed("3 old removals (>= 75%)", fake, lambda: cache.sync("bench"))
        timed("forced full, no change", fake, lambda: cache.sync("bench", force_full=True), writes=True)
        started = time.perf_counter()
        cached = list(cache.store.query_songs("bench"))
        print(f"{'read the cache (newest first)':<28} {time.perf_counter() - started:7.3f} s  {len(cached)} tracks; "
              f"paginating Spotify for them: {len(cached) // 50 + 1} calls")


FAKE_SPOTIFY_PROCESS = """
import sys, time
from checker.testing.fake_spotify import FakeSpotify
fake = FakeSpotify(latency=float(sys.argv[3]), port=int(sys.argv[1]))
fake.add_user("bench", int(sys.argv[2]))
fake.start()
print("ready", flush=True)
time.sleep(3600)
"""


def started(command: list, port: int):
    import socket
    import subprocess

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{command[0]} did not listen on port {port}")


def on_dynalite(tracks: int, latency_ms: float, runs: int = 3) -> None:
    """The first full sync and a forced one, each run on a fresh dynalite (an independent DynamoDB
    from the npm registry, installed into bench/.cache by bench_deploy; skipped without npm). The
    fake Spotify runs in a process of its own here, as Spotify is not in the Lambda's process: its
    JSON encoding would otherwise take the sync's CPU and GIL."""
    from bench_deploy import dynalite_command, free_port

    command = dynalite_command()
    if not command:
        print("dynalite: skipped (npm is not installed)")
        return
    print(f"on dynalite: {tracks} saved tracks, {latency_ms:g} ms per Spotify call, fake Spotify in its own "
          f"process, {runs} runs each on a fresh dynalite")
    firsts = []
    for _ in range(runs):
        dynamodb_port, spotify_port = free_port(), free_port()
        dynalite = started([*command, "--port", str(dynamodb_port)], dynamodb_port)
        spotify_process = started([sys.executable, "-c", FAKE_SPOTIFY_PROCESS, str(spotify_port), str(tracks),
                                   str(latency_ms / 1000)], spotify_port)
        try:
            resource = boto3.resource("dynamodb", endpoint_url=f"http://127.0.0.1:{dynamodb_port}",
                                      region_name="us-east-1")
            create_cache_tables(resource)
            for name in ("liked_songs", "liked_songs_metadata"):
                resource.meta.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
            base = f"http://127.0.0.1:{spotify_port}"
            spotify = SpotifyClient(SpotifyCredentials(refresh_token="refresh-bench"), api_base=f"{base}/v1",
                                    accounts_base=base)
            store = LikedSongsStore(resource)
            count_calls(resource.meta.client, store.client)
            cache = LikedSongsCache(store, spotify)
            firsts.append(timed("first full sync", None, lambda cache=cache: cache.sync("bench")))
            timed("forced full, no change", None, lambda cache=cache: cache.sync("bench", force_full=True),
                  writes=True)
        finally:
            dynalite.kill()
            spotify_process.kill()
    print(f"{'first full sync, median':<28} {statistics.median(firsts):7.3f} s  (target <= 4 s at 10,000 tracks)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, float(sys.argv[2]) if len(sys.argv) > 2 else 0)
    on_dynalite(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, float(sys.argv[2]) if len(sys.argv) > 2 else 0)
