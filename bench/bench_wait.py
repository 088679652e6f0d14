"""How late does `wait` see a table that turns ACTIVE at 3.0 s, and how many polls does it cost?

Runs a moto server and the state-holding proxy from the tests on 127.0.0.1, creates a table that
reports CREATING for HOLD seconds, and times wait_until_active beside botocore's own
`table_exists` waiter (its 20 s delay: once). Prints figures and records them in
bench/results.json; asserts nothing.
Usage: .venv/bin/python bench/bench_wait.py [runs]
"""
from __future__ import annotations

import logging
import os
import statistics
import sys
import time

import boto3
from moto.server import ThreadedMotoServer
from results import record

from checker.local.dynamo_proxy import DynamoProxy
from checker.wait import wait_until_active

HOLD = 3.0


def main(runs: int) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    lateness, polls, waiter = [], [], []
    with DynamoProxy(f"http://{host}:{port}", table_seconds=HOLD) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1")
        for run in range(runs + 1):
            name = f"bench-{run}"
            client.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                                BillingMode="PAY_PER_REQUEST")
            ready_at = proxy.table_ready_at[name]
            before = len(proxy.calls)
            if run == runs:
                client.get_waiter("table_exists").wait(TableName=name)
                waiter.append(time.monotonic() - ready_at)
                continue
            wait_until_active(client, [name], timeout=60)
            lateness.append(time.monotonic() - ready_at)
            polls.append(len(proxy.calls) - before)
    server.stop()
    print(f"table ACTIVE after {HOLD:.1f}s, {runs} runs")
    print(f"seen late by: median {statistics.median(lateness) * 1000:.0f} ms, max {max(lateness) * 1000:.0f} ms; "
          f"botocore's table_exists waiter {waiter[0]:.1f} s")
    print(f"DescribeTable calls per wait: median {statistics.median(polls):.0f}, max {max(polls)}")
    record(f"wait: a table ACTIVE after {HOLD:g} s, seen late by (in-process)", lateness, waiter,
           "botocore's `table_exists` waiter")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
