"""How long does the liked-songs cache take to sync, and how many Spotify and DynamoDB calls?

Each case beside the naive way (paginate Spotify on every request). DynamoDB is a fresh dynalite
(an independent DynamoDB from the npm registry, installed into bench/.cache by bench_deploy), or
moto in-process when npm is missing (slower than the cache itself: its figures are moto's). The
fake Spotify, with `latency_ms` per call, runs in a process of its own, as Spotify is not in the
Lambda's process (its JSON encoding would otherwise take the sync's CPU and GIL); the bench drives
it over stdin. The physical limit of a first full sync is a tight loop doing only the necessary
calls: every page read 16 at a time, every item written in BatchWriteItem calls of 25, 16 at a
time, into the same backend. Prints figures and records them in bench/results.json; asserts nothing.

Usage: .venv/bin/python bench/bench_sync.py [tracks] [latency_ms]
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import boto3
from bench_deploy import dynalite_command, free_port
from results import record

from checker.specs import load_specs
from spotify_playlist.dynamo import BATCH_SIZE, LikedSongsStore, plain_client, typed
from spotify_playlist.liked_songs_cache import LikedSongsCache, page_items
from spotify_playlist.spotify import PAGE_SIZE, TOKENS, SpotifyClient, SpotifyCredentials

SPECS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "table_specs")
USER = "bench"
RUNS = 3
TARGETS = {2000: "1.5x", 100_000: "1.3x"}   # a first full sync beside its physical limit
HEAP_BUDGET_MIB = 16.0

SPOTIFY_PROCESS = """
import json, sys
from checker.local.fake_spotify import FakeSpotify
fake = FakeSpotify(latency=float(sys.argv[3]), port=int(sys.argv[1]))
fake.add_user("bench", int(sys.argv[2]))
fake.start()
print("ready", flush=True)
for line in sys.stdin:
    command, _, argument = line.strip().partition(" ")
    if command == "add":
        fake.add_tracks("bench", int(argument))
    elif command == "remove":
        fake.remove_tracks("bench", argument.split(","))
    elif command == "reset":
        fake.reset_counts()
    answer = {"ids": fake.saved_ids("bench"), "calls": sum(fake.calls.values())}
    print(json.dumps(answer if command == "ids" else {"calls": answer["calls"]}), flush=True)
"""


class SpotifyProcess:
    """The fake Spotify in a process of its own, told over stdin what the user saves or removes."""

    def __init__(self, tracks: int, latency_ms: float):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-c", SPOTIFY_PROCESS, str(self.port), str(tracks), str(latency_ms / 1000)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the fake Spotify did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def client(self) -> SpotifyClient:
        return SpotifyClient(SpotifyCredentials(refresh_token=f"refresh-{USER}"), api_base=f"{self.url}/v1",
                             accounts_base=self.url)

    def close(self) -> None:
        self.process.kill()


TABLES = ("user", "liked_songs", "liked_songs_metadata")  # what the handler reads and the cache writes


def create_cache_tables(resource):
    for spec in load_specs(SPECS):
        if spec.name in TABLES:
            resource.meta.client.create_table(**spec.request)
    for name in TABLES:
        resource.meta.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
    return resource


def through_the_handler(resource, spotify: SpotifyProcess) -> None:
    """A no-change sync as the Lambda serves it: a new cache and Spotify client per request, the
    access token reused from the container's earlier request."""
    from spotify_playlist.handler import handle
    environ = {"DEFAULT_USER_ID": USER, "SPOTIFY_REFRESH_TOKEN": f"refresh-{USER}",
               "SPOTIFY_API_BASE_URL": f"{spotify.url}/v1", "SPOTIFY_ACCOUNTS_BASE_URL": spotify.url}
    event = {"queryStringParameters": {"action": "sync-liked-songs"}, "requestContext": {}}
    TOKENS.clear()
    handle(event, None, environ=environ, resource_factory=lambda: resource)  # the container's first request
    spotify.ask("reset")
    started_at = time.perf_counter()
    answer = handle(event, None, environ=environ, resource_factory=lambda: resource)
    seconds = time.perf_counter() - started_at
    mode = json.loads(answer["body"]).get("sync", {}).get("mode")
    print(f"{'nothing changed, via handler':<30} {seconds:7.3f} s  {spotify.ask('calls')['calls']:4d} Spotify calls"
          f"  (HTTP {answer['statusCode']}, {mode}; target 1 call)")


def started(command: list, port: int):
    import socket

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{command[0]} did not listen on port {port}")


@contextmanager
def fresh_dynamodb(dynalite: list):
    """A DynamoDB resource with empty cache tables: a new dynalite process, or moto in-process."""
    if dynalite:
        port = free_port()
        process = started([*dynalite, "--port", str(port)], port)
        try:
            yield create_cache_tables(boto3.resource("dynamodb", endpoint_url=f"http://127.0.0.1:{port}",
                                                     region_name="us-east-1"))
        finally:
            process.kill()
    else:
        from moto import mock_aws
        with mock_aws():
            yield create_cache_tables(boto3.resource("dynamodb", region_name="us-east-1"))


class Counted:
    """A cache whose DynamoDB calls (typed and low-level clients alike) are counted."""

    def __init__(self, resource, spotify: SpotifyClient):
        self.store = LikedSongsStore(resource)
        self.cache = LikedSongsCache(self.store, spotify)
        self.dynamodb_calls = 0
        for client in (resource.meta.client, self.store.client):
            client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, **kwargs) -> None:
        self.dynamodb_calls += 1


def physical_limit(resource, spotify: SpotifyProcess) -> float:
    """Every page read and every item written, nothing else: no metadata, no lease, no compare."""
    client = spotify.client()
    writer = plain_client(resource)

    def write(batch: list) -> None:
        pending = {"liked_songs": batch}
        while pending:
            pending = writer.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    started_at = time.perf_counter()
    first = client.saved_tracks_page(0)
    offsets = range(PAGE_SIZE, int(first["total"]), PAGE_SIZE)
    with ThreadPoolExecutor(16) as readers, ThreadPoolExecutor(16) as writers:
        writes = []
        for page in [first, *readers.map(client.saved_tracks_page, offsets)]:
            requests = [{"PutRequest": {"Item": typed(item)}} for item in page_items(USER, page, 0)]
            writes += [writers.submit(write, requests[n:n + BATCH_SIZE]) for n in range(0, len(requests), BATCH_SIZE)]
        for done in writes:
            done.result()
    return time.perf_counter() - started_at


def timed(label: str, spotify: SpotifyProcess, counted: Counted, **sync_options) -> float:
    spotify.ask("reset")
    counted.dynamodb_calls = 0
    started_at = time.perf_counter()
    result = counted.cache.sync(USER, **sync_options)
    seconds = time.perf_counter() - started_at
    print(f"{label:<30} {seconds:7.3f} s  {spotify.ask('calls')['calls']:4d} Spotify calls  "
          f"{counted.dynamodb_calls:4d} DynamoDB calls  {result.mode}: {result.total} tracks, "
          f"{result.added} item writes, {result.removed} removed")
    return seconds


def main(tracks: int, latency_ms: float) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    dynalite = dynalite_command()
    backend = "a fresh dynalite each" if dynalite else "moto in-process (npm not found: no dynalite)"
    print(f"{tracks} saved tracks, Spotify at {latency_ms:g} ms a call (its own process), DynamoDB: {backend}")
    spotify = SpotifyProcess(tracks, latency_ms)
    try:
        client = spotify.client()
        started_at = time.perf_counter()
        pages = list(client.saved_track_pages())
        naive = time.perf_counter() - started_at
        print(f"{'naive: paginate Spotify':<30} {naive:7.3f} s  {len(pages):4d} Spotify calls, on every request")

        firsts, limits = [], []
        for _ in range(RUNS):
            with fresh_dynamodb(dynalite) as resource:
                TOKENS.clear()  # each run a new container: its first call refreshes the token
                firsts.append(timed("first full sync", spotify, Counted(resource, spotify.client())))
            with fresh_dynamodb(dynalite) as resource:
                TOKENS.clear()
                limits.append(physical_limit(resource, spotify))
        print(f"{'  median of ' + str(RUNS):<30} {statistics.median(firsts):7.3f} s   "
              f"physical limit {statistics.median(limits):7.3f} s")
        on = f"{tracks:,} tracks, Spotify at {latency_ms:g} ms, {'dynalite' if dynalite else 'moto'}"
        record(f"cache: first full sync, {on}", firsts, limits, "physical limit", TARGETS.get(tracks, ""))

        with fresh_dynamodb(dynalite) as resource:
            counted = Counted(resource, spotify.client())
            tracemalloc.start()  # slows Python down: this time is not comparable with the others
            timed("first full sync, traced", spotify, counted)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"{'  its peak Python heap':<30} {peak / 2**20:7.1f} MiB"
                  f"{'' if dynalite else ' (moto tables included)'}")
            record(f"cache: peak Python heap of that sync, {tracks:,} tracks", peak / 2**20, HEAP_BUDGET_MIB,
                   "budget", f"under {HEAP_BUDGET_MIB:g} MiB", unit="MiB")
            unchanged = timed("nothing changed", spotify, counted)
            record(f"cache: sync, nothing changed, {on}", unchanged, naive, "naive: paginate Spotify")
            through_the_handler(resource, spotify)
            spotify.ask("add 25")
            timed("25 new tracks", spotify, counted)
            ids = spotify.ask("ids")["ids"]
            spotify.ask("remove " + ",".join(ids[5:8]))
            timed("3 recent removals", spotify, counted)
            ids = spotify.ask("ids")["ids"]
            spotify.ask("remove " + ",".join(ids[int(len(ids) * f)] for f in (0.76, 0.85, 0.99)))
            removals = timed("3 old removals (>= 75 %)", spotify, counted)
            record(f"cache: 3 removals at >= 75 % of the library, {on}", removals, naive, "naive: paginate Spotify")
            timed("forced full, nothing changed", spotify, counted, force_full=True)
            started_at = time.perf_counter()
            cached = list(counted.store.query_songs(USER))
            read = time.perf_counter() - started_at
            print(f"{'read the cache, newest first':<30} {read:7.3f} s  "
                  f"{len(cached)} tracks (paginating Spotify for them: {naive:.3f} s)")
            record(f"cache: read every cached track, newest first, {on}", read, naive, "naive: paginate Spotify")
    finally:
        spotify.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, float(sys.argv[2]) if len(sys.argv) > 2 else 0)
