"""An HTTP proxy in front of a moto server that behaves like real DynamoDB in two ways moto does not:

- state: a table reports CREATING after CreateTable, and a GSI added by UpdateTable reports
  CREATING (moto reports ACTIVE at once): for `table_seconds` / `index_seconds` of wall-clock
  time (benchmarks), or for the next `table_polls` / `index_polls` DescribeTable answers about it
  (tests: deterministic whatever the machine's load);
- faults: an operation can be made to answer an AWS error (AccessDenied, throttling, ...);
- lies: with `drop_index_creates`, an UpdateTable that creates a GSI is acknowledged and dropped
  (what dynalite does), so apply's verification has something to catch;
- weather: `throttle_rate` answers that share of requests (chosen by a seeded random) with
  `throttle_code` (only for `throttle_operations` when set): ThrottlingException as a busy account does, or
  ProvisionedThroughputExceededException as a provisioned table over its capacity does;
- latency: `latency` seconds added to every request, standing for a real region's round trip;
- AWS's rules: with `aws_index_rules`, an UpdateTable creating a GSI with ProvisionedThroughput on an
  on-demand table is refused with AWS's ValidationException (every emulator accepts it);
- lag: with `tag_lag_reads` N, the N ListTagsOfResource answers after a TagResource still show
  the tags from before it, as AWS documents (TagResource is asynchronous, the read eventually
  consistent).

It is a real server on 127.0.0.1 that the CLI reaches over HTTP; nothing inside checker is patched.
Every request is kept in `calls` as (operation, params), so a test can prove what was never sent.
"""
from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
import zlib

from .http import LocalServer, send


class DynamoProxy:
    def __init__(self, upstream: str, table_seconds: float = 0.0, index_seconds: float = 0.0,
                 table_polls: int = 0, index_polls: int = 0):
        self.upstream = upstream
        self.table_seconds = table_seconds
        self.index_seconds = index_seconds
        self.table_polls = table_polls
        self.index_polls = index_polls
        self.table_ready_at: dict = {}
        self.index_ready_at: dict = {}
        self.polls_left: dict = {}     # table name or (table, index) -> CREATING answers still to give
        self.faults: dict = {}
        self.drop_index_creates = False
        self.throttle_rate = 0.0
        self.throttle_code = "ThrottlingException"
        self.throttle_operations = None   # None: every operation; else only these (a table's writes)
        self.latency = 0.0
        self.tag_lag_reads = 0
        self.aws_index_rules = False
        self.stale_tags: dict = {}     # ARN -> [tags before the last TagResource, stale answers left]
        self.random = random.Random(7)
        self.statuses: list = []       # (operation, table, TableStatus) of every answer describing a table
        self.calls: list = []
        self.lock = threading.Lock()
        self.server = LocalServer(self.serve)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def serve(self, handler, method: str) -> None:
        status, headers, payload = self.handle(handler.headers, handler.body())
        content_type = headers.pop("Content-Type")
        send(handler, status, payload, headers, content_type)

    def fail(self, operation: str, code: str, message: str, status: int = 400) -> None:
        self.faults[operation] = (status, code, message)

    def operations(self) -> list:
        return [op for op, _ in self.calls]

    def destructive_calls(self) -> list:
        """Every request that deletes or turns something off: checker must never send one."""
        found = []
        for operation, params in self.calls:
            text = json.dumps(params)
            if operation.startswith("Delete") or any(u.get("Delete") for u in params.get("GlobalSecondaryIndexUpdates", [])):
                found.append((operation, params))
            elif ('"StreamEnabled": false' in text or '"DeletionProtectionEnabled": false' in text
                  or '"PointInTimeRecoveryEnabled": false' in text or '"Enabled": false' in text):
                found.append((operation, params))
        return found

    def handle(self, headers, body: bytes):
        operation = headers.get("X-Amz-Target", "").split(".")[-1]
        if not operation:   # STS, IAM (form-encoded): this proxy stands for DynamoDB and its streams only
            return self.reply(400, {"__type": "UnknownOperationException", "message": "DynamoDB only behind this proxy"})
        params = json.loads(body or b"{}")
        with self.lock:
            self.calls.append((operation, params))
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            throttled = (self.throttle_rate and self.random.random() < self.throttle_rate
                         and (self.throttle_operations is None or operation in self.throttle_operations))
        if throttled:
            return self.reply(400, {"__type": f"com.amazonaws.dynamodb.v20120810#{self.throttle_code}",
                                    "message": "Rate of requests exceeds the allowed throughput."})
        if operation in self.faults:
            status, code, message = self.faults[operation]
            return self.reply(status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
        if (self.drop_index_creates and operation == "UpdateTable"
                and any("Create" in u for u in params.get("GlobalSecondaryIndexUpdates", []))):
            status, document = self.forward(headers, "DescribeTable", {"TableName": params["TableName"]})
            return self.reply(status, {"TableDescription": document.get("Table", {})})
        if self.aws_index_rules and operation == "UpdateTable" and self.throughput_on_demand(headers, params):
            return self.reply(400, {"__type": "com.amazon.coral.validate#ValidationException", "message": (
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be "
                "specified when BillingMode is PAY_PER_REQUEST")})
        if operation == "TagResource" and self.tag_lag_reads:
            _, before = self.forward(headers, "ListTagsOfResource", {"ResourceArn": params.get("ResourceArn")})
            self.stale_tags[params.get("ResourceArn")] = [before, self.tag_lag_reads]
        stale = self.stale_tags.get(params.get("ResourceArn")) if operation == "ListTagsOfResource" else None
        if stale and stale[1] > 0:
            stale[1] -= 1
            return self.reply(200, stale[0])
        status, document = self.forward(headers, operation, params, body)
        if status == 200:
            document = self.hold_states(operation, params, document)
        return self.reply(status, document)

    def throughput_on_demand(self, headers, params: dict) -> bool:
        creates = [u["Create"] for u in params.get("GlobalSecondaryIndexUpdates", []) if "Create" in u]
        if not any("ProvisionedThroughput" in c for c in creates) or params.get("BillingMode") == "PROVISIONED":
            return False
        _, described = self.forward(headers, "DescribeTable", {"TableName": params.get("TableName")})
        return (described.get("Table", {}).get("BillingModeSummary") or {}).get("BillingMode") == "PAY_PER_REQUEST"

    def forward(self, headers, operation: str, params: dict, body: bytes | None = None):
        """The request to moto, as is (or rewritten as `operation` with `params`): (status, document)."""
        dropped = ("host", "content-length") if body is not None else ("host", "content-length", "x-amz-target")
        headers = {k: v for k, v in headers.items() if k.lower() not in dropped}
        if body is None:
            body = json.dumps(params).encode()
            headers["X-Amz-Target"] = f"DynamoDB_20120810.{operation}"
        request = urllib.request.Request(self.upstream + "/", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        return status, json.loads(payload or b"{}")

    def hold_states(self, operation: str, params: dict, document: dict) -> dict:
        now = time.monotonic()
        name = params.get("TableName")
        if operation == "CreateTable":
            self.table_ready_at[name] = now + self.table_seconds
            self.polls_left[name] = self.table_polls
        if operation == "UpdateTable":
            for update in params.get("GlobalSecondaryIndexUpdates", []):
                if "Create" in update:
                    key = (name, update["Create"]["IndexName"])
                    self.index_ready_at[key] = now + self.index_seconds
                    self.polls_left[key] = self.index_polls
        table = document.get("Table") or document.get("TableDescription")
        if table:
            described = operation == "DescribeTable"
            table_creating = now < self.table_ready_at.get(name, 0) or self._creating(name, described)
            if table_creating:
                table["TableStatus"] = "CREATING"
            for index in table.get("GlobalSecondaryIndexes", []):
                key = (name, index["IndexName"])
                if table_creating or now < self.index_ready_at.get(key, 0) or self._creating(key, described):
                    index["IndexStatus"] = "CREATING"
            with self.lock:
                self.statuses.append((operation, name, table.get("TableStatus")))
        return document

    def _creating(self, key, described: bool) -> bool:
        """Still CREATING by poll count; a DescribeTable answer uses up one poll."""
        with self.lock:
            left = self.polls_left.get(key, 0)
            if left and described:
                self.polls_left[key] = left - 1
            return left > 0

    @staticmethod
    def reply(status: int, document: dict):
        payload = json.dumps(document).encode()
        # botocore checks DynamoDB's CRC32 header: it must match the body we actually send.
        return status, {"Content-Type": "application/x-amz-json-1.0",
                        "x-amz-crc32": str(zlib.crc32(payload) & 0xFFFFFFFF)}, payload
