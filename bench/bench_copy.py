"""How fast does the copy engine of `checker migrate` copy a table, and is its memory flat?

On dynalite (100,000 items; installed from npm by bench_deploy) and on moto's server (10,000:
moto's Scan is slow per page), each figure beside, from the same run:
- naive: a serial Scan + PutItem loop, what a hand-written migration script does;
- the physical limit: BatchWriteItem of 25, 16 calls in parallel, of items already in memory
  (no reading at all).
The engine's run includes its checkpoints in a real ledger table on the same backend. Peak
Python heap (tracemalloc) of the engine at 10,000 and 50,000 items: flat means within 10 %.
Prints figures and records them in bench/results.json; asserts nothing.

Usage: .venv/bin/python bench/bench_copy.py [dynalite_items] [moto_items]
"""
from __future__ import annotations

import os
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import boto3
from bench_deploy import dynalite_command, free_port
from bench_sync import started
from results import record

from checker.migrate.copy import copy_items
from checker.migrate.ledger import Ledger

KEY = {"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
       "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}


def item(n: int) -> dict:
    return {"id": {"S": f"item-{n:07d}"}, "name": {"S": f"song number {n}"}, "addedAt": {"N": str(1_700_000_000 + n)},
            "tags": {"SS": ["a", "b"]}, "album": {"M": {"name": {"S": "album"}, "year": {"N": "1999"}}}}


def create(client, name: str) -> None:
    client.create_table(TableName=name, **KEY)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})


def batch_put(client, table: str, items: list) -> None:
    pending = {table: [{"PutRequest": {"Item": i}} for i in items]}
    while pending:
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def fill(client, table: str, count: int) -> float:
    """The physical limit: every item put with BatchWriteItem of 25, 16 at a time."""
    started_at = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda start: batch_put(client, table, [item(n) for n in range(start, min(count, start + 25))]),
                      range(0, count, 25)))
    return time.perf_counter() - started_at


def naive(client, source: str, target: str) -> float:
    started_at = time.perf_counter()
    for page in client.get_paginator("scan").paginate(TableName=source):
        for found in page["Items"]:
            client.put_item(TableName=target, Item=found)
    return time.perf_counter() - started_at


def engine(client, source: str, target: str, ledger: Ledger, trace: bool = False) -> tuple:
    ledger.put(target, kind="bench", checkpoints={}, itemsRead=0, itemsWritten=0)
    if trace:
        tracemalloc.start()
    started_at = time.perf_counter()
    counts = copy_items(client, source, target, {},
                        lambda segment, key, read, written: ledger.checkpoint(target, segment, key, read, written))
    seconds = time.perf_counter() - started_at
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    del counts
    return seconds, peak


def on(backend: str, url: str, count: int) -> None:
    client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    ledger = Ledger(client, "bench_ledger")
    ledger.ensure()
    create(client, "source")
    limit = fill(client, "source", count)
    create(client, "by_engine")
    ours, _ = engine(client, "source", "by_engine", ledger)
    naive_items = min(count, 5000)       # the naive loop on a slice: its rate is what matters
    create(client, "naive_source")
    fill(client, "naive_source", naive_items)
    create(client, "by_naive")
    serial = naive(client, "naive_source", "by_naive") * count / naive_items
    print(f"{backend}: copy {count:,} items   engine {ours:7.2f}s ({count / ours:8,.0f} items/s)   "
          f"naive {serial:7.2f}s ({count / serial:6,.0f} items/s)   write limit {limit:6.2f}s", flush=True)
    record(f"migrate: copy {count:,} items, {backend}", ours, limit, "physical limit (BatchWriteItem x16, no reads)")
    record(f"migrate: copy {count:,} items, {backend}, beside a serial Scan + PutItem", ours, serial,
           "naive loop (extrapolated from 5,000)")


def memory(url: str) -> None:
    client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    ledger = Ledger(client, "bench_ledger")
    peaks = {}
    for count in (10_000, 50_000):
        create(client, f"mem_{count}")
        fill(client, f"mem_{count}", count)
        create(client, f"mem_{count}_copy")
        peaks[count] = engine(client, f"mem_{count}", f"mem_{count}_copy", ledger, trace=True)[1] / 2**20
    print(f"peak Python heap of the copy: 10,000 items {peaks[10_000]:.1f} MiB, 50,000 items {peaks[50_000]:.1f} MiB")
    record("migrate: peak Python heap of a copy, 50,000 items", peaks[50_000], peaks[10_000],
           "the same at 10,000", "within 10 %", unit="MiB")


def main(dynalite_items: int, moto_items: int) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    dynalite = dynalite_command()
    if dynalite:
        port = free_port()
        process = started([*dynalite, "--port", str(port)], port)
        try:
            on("dynalite", f"http://127.0.0.1:{port}", dynalite_items)
            memory(f"http://127.0.0.1:{port}")
        finally:
            process.kill()
    else:
        print("dynalite: skipped (npm is not installed)")
    port = free_port()
    moto = started([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port)
    try:
        on("moto server", f"http://127.0.0.1:{port}", moto_items)
    finally:
        moto.kill()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
