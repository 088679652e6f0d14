"""The stream replay's rate: changed keys carried from the source to the target per second.

An online migration switches only when its catch-up outruns the app: each changed key is read
again from the source (consistently) and written to the target. checker's `CatchUp.apply` is fed
stream-shaped records of KEYS distinct keys (each with an old image, as a NEW_AND_OLD_IMAGES
stream gives them) on a moto server; the baseline is the tightest loop anyone would write for
the same work: consistent BatchGetItem of 100 keys and BatchWriteItem of 25 items, 8 requests
at once, no transform and no bookkeeping. Prints records/s and records them in
bench/results.json; asserts nothing.

Usage: .venv/bin/python bench/bench_replay.py [KEYS]
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):   # moto's setup calls; never a real account
    os.environ.setdefault(variable, "bench")

from results import record  # noqa: E402

from tests.adversary import start_server  # noqa: E402
from tests.backends import songs_spec  # noqa: E402

RUNS = 3


def fill(client, table: str, keys: int) -> list:
    items = [{"userId": {"S": "u"}, "trackId": {"S": f"t{n:06d}"}, "v": {"S": f"value {n}"}, "n": {"N": str(n)}}
             for n in range(keys)]
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]})
    return items


def checker_rate(client, source: str, target: str, items: list) -> float:
    from checker.migrate.stream import CatchUp
    records = [{"dynamodb": {"Keys": {"userId": i["userId"], "trackId": i["trackId"]}, "OldImage": i}} for i in items]
    catch_up = CatchUp(client, source, target, ("userId", "trackId"), copying=False)
    started = time.perf_counter()
    catch_up.apply(records)
    return len(records) / (time.perf_counter() - started)


def tight_loop_rate(client, source: str, target: str, items: list) -> float:
    keys = [{"userId": i["userId"], "trackId": i["trackId"]} for i in items]

    def read(chunk: list) -> list:
        found, request = [], {source: {"Keys": chunk, "ConsistentRead": True}}
        while request:
            answer = client.batch_get_item(RequestItems=request)
            found += answer["Responses"].get(source, [])
            request = answer.get("UnprocessedKeys") or {}
        return found

    def write(chunk: list) -> None:
        request = {target: [{"PutRequest": {"Item": i}} for i in chunk]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = [i for part in pool.map(read, [keys[s:s + 100] for s in range(0, len(keys), 100)]) for i in part]
        list(pool.map(write, [found[s:s + 25] for s in range(0, len(found), 25)]))
    return len(keys) / (time.perf_counter() - started)


def main() -> None:
    keys = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as scratch:
        servers = start_server(Path(scratch) / "moto.log")
        server = next(servers)
        try:
            client = server.client("dynamodb")
            client.create_table(**dict(songs_spec("songs"), TableName="songs"))
            items = fill(client, "songs", keys)
            ours, theirs = [], []
            for run in range(RUNS):       # interleaved: the machine's load falls on both alike
                for name in (f"ours{run}", f"loop{run}"):
                    client.create_table(**dict(songs_spec("songs_v2"), TableName=name))
                ours.append(checker_rate(client, "songs", f"ours{run}", items))
                theirs.append(tight_loop_rate(client, "songs", f"loop{run}", items))
            print(f"stream replay of {keys:,} changed keys (moto): checker {', '.join(f'{r:,.0f}' for r in ours)} "
                  f"records/s; tight loop {', '.join(f'{r:,.0f}' for r in theirs)} records/s")
            record(f"migrate stream replay, {keys:,} changed keys (moto)", ours, theirs,
                   "BatchGetItem 100 + BatchWriteItem 25, 8 at once", "at least 10x the app's write rate",
                   unit="records/s")
        finally:
            next(servers, None)


if __name__ == "__main__":
    main()
