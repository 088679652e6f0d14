"""The adversary of a migration, as databases prove replication: a seeded app that writes through
its binding while checker migrates, a model of every write it saw acknowledged, and an oracle
that compares the table the app is bound to at the end, key by key, with that model.

The app writes as a Lambda does: each invocation reads its variable from the function's
configuration, then makes one to three writes with the credentials of the function's role
(sts:AssumeRole, so a fence on that role denies it), a few milliseconds apart: an invocation
that began before a switch still writes the old table. The mix: puts, updates (ADD and SET,
ALL_NEW read back), deletes, conditional puts and updates, two-item transactions, and bursts on
a few hot keys. Each writer thread owns its keys, so per key the order of acknowledgements is
the order of the writes. A write refused (AccessDenied, a failed condition, a cancelled
transaction) changes nothing; a write whose outcome is unknown (a dropped connection) makes its
keys ambiguous: the oracle accepts either state there and counts them.

The server is moto with IAM authorization at DynamoDB's table level (tests/moto_iam_server.py).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from .backends import songs_function, songs_spec

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
CHECKER = os.path.join(os.path.dirname(sys.executable), "checker")
REFUSED = ("ConditionalCheckFailedException", "TransactionCanceledException", "ResourceNotFoundException")


@dataclass
class Server:
    url: str
    admin: dict             # the access key checker and the test use (an IAM user allowed everything)
    process: subprocess.Popen

    def client(self, service: str, **credentials):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                            **(credentials or self.admin))

    def environ(self) -> dict:
        """The environment a checker subprocess runs in: the admin's key, nothing of the machine's."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {**base, "AWS_ACCESS_KEY_ID": self.admin["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": self.admin["aws_secret_access_key"], "AWS_DEFAULT_REGION": REGION}


def start_server(log: Path):
    """A generator for a fixture: moto with IAM authorization on, and an admin's key. Its output
    goes to `log` (a pipe nobody reads would stop the server once full)."""
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "tests.moto_iam_server"], cwd=ROOT, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not log.read_text().split("\n", 1)[0].strip().isdigit():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the IAM moto server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(log.read_text().split(chr(10), 1)[0])}"
        iam = boto3.client("iam", endpoint_url=url, region_name=REGION, aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        iam.create_user(UserName="checker")
        iam.put_user_policy(UserName="checker", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="checker")["AccessKey"]
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                                                      headers={"Content-Type": "application/octet-stream"})).read()
        yield Server(url, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]},
                     process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Model:
    """The last acknowledged state of every key (None: deleted), and the keys whose last write's
    outcome is unknown."""

    state: dict = field(default_factory=dict)
    ambiguous: set = field(default_factory=set)
    acknowledged: int = 0
    denied: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, key: str, item) -> None:
        with self.lock:
            self.state[key] = item
            self.acknowledged += 1


BIG_SHARE = 0.05      # of the plain puts: items of about 390 KB (a batch of them passes 16 MB reads)
BIG_PAD = 390_000


class App:
    """The writers and the model: `start()`, then `stop()` when the test has seen enough."""

    def __init__(self, server: Server, function: str, variable: str, seed: int, keys: int = 120, threads: int = 3,
                 pause: float = 0.01, moved_to: str = ""):
        self.server, self.function, self.variable = server, function, variable
        self.moved_to = moved_to      # a target keyed by `slot` (moved()): writes there go to the item's slot
        self.seed, self.keys, self.threads, self.pause = seed, keys, threads, pause
        self.model = Model()
        self.stopping = threading.Event()
        self.running = threading.Event()       # cleared by pause_writes(): the writers wait between invocations
        self.running.set()
        self.idle = threading.Condition()
        self.busy = 0                          # writers inside an invocation
        self.errors: list = []
        self.big = 0                           # items of about 390 KB it wrote
        self.workers: list = []
        self.tables_written: dict = {}
        self.lambda_client = server.client("lambda")
        role = self.lambda_client.get_function_configuration(FunctionName=function)["Role"]
        credentials = server.client("sts").assume_role(RoleArn=role, RoleSessionName="app")["Credentials"]
        self.role_credentials = {"aws_access_key_id": credentials["AccessKeyId"],
                                 "aws_secret_access_key": credentials["SecretAccessKey"],
                                 "aws_session_token": credentials["SessionToken"]}

    def key_names(self, worker: int) -> list:
        if worker == 0:
            return [f"hot{n}" for n in range(4)]            # bursts on a few hot keys
        return [f"t{n:04d}" for n in range(self.keys) if n % (self.threads - 1) == worker - 1]

    def seed_items(self, table: str) -> None:
        """Every key of every worker present before the migration starts (in the model too)."""
        client = self.server.client("dynamodb")
        for worker in range(self.threads):
            for key in self.key_names(worker):
                item = self.item(key, 0, "seed")
                client.put_item(TableName=table, Item=item)
                self.model.state[key] = item

    @staticmethod
    def item(key: str, n: int, value: str) -> dict:
        return {"userId": {"S": "u"}, "trackId": {"S": key}, "addedAt": {"N": str(n)}, "v": {"S": value}}

    def start(self) -> None:
        for worker in range(self.threads):
            thread = threading.Thread(target=self.work, args=(worker,), name=f"app-{worker}", daemon=True)
            thread.start()
            self.workers.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.workers:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self.workers), "a writer did not stop"

    def pause_writes(self) -> None:
        """Every writer between two invocations (its writes acknowledged or failed), until resume_writes():
        the oracle may judge a table the app is still bound to."""
        self.running.clear()
        with self.idle:
            assert self.idle.wait_for(lambda: self.busy == 0, timeout=30), "a writer did not pause"

    def resume_writes(self) -> None:
        self.running.set()

    def table(self) -> str:
        config = self.lambda_client.get_function_configuration(FunctionName=self.function)
        return config["Environment"]["Variables"][self.variable]

    def work(self, worker: int) -> None:
        chance = random.Random(self.seed * 1000 + worker)
        dynamodb = self.server.client("dynamodb", **self.role_credentials)
        keys = self.key_names(worker)
        n = 0
        try:
            while not self.stopping.is_set():
                if not self.running.wait(timeout=0.1):
                    continue
                with self.idle:
                    self.busy += 1
                try:
                    table = self.table()                          # an invocation reads its variable once
                    for _ in range(chance.randint(1, 3) if worker else chance.randint(5, 12)):
                        n += 1
                        write = self.write_moved if table == self.moved_to else self.write
                        write(dynamodb, table, chance, keys, worker * 1_000_000 + n)
                        with self.model.lock:
                            self.tables_written[table] = self.tables_written.get(table, 0) + 1
                        if worker:
                            time.sleep(chance.uniform(0, 0.01))   # the invocation's own work between writes
                finally:
                    with self.idle:
                        self.busy -= 1
                        self.idle.notify_all()
                time.sleep(chance.uniform(0, self.pause * 2))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            self.errors.append(repr(exc))

    def write(self, dynamodb, table: str, chance: random.Random, keys: list, n: int) -> None:
        key = chance.choice(keys)
        wire_key = {"userId": {"S": "u"}, "trackId": {"S": key}}
        roll = chance.random()
        touched = [key]
        try:
            if roll < 0.35:
                item = self.item(key, n, f"put{n}")
                if chance.random() < BIG_SHARE:      # near DynamoDB's 400 KB item limit
                    item["pad"] = {"S": "x" * BIG_PAD}
                    self.big += 1
                dynamodb.put_item(TableName=table, Item=item)
                self.model.set(key, item)
            elif roll < 0.55:
                answer = dynamodb.update_item(TableName=table, Key=wire_key, ReturnValues="ALL_NEW",
                                              UpdateExpression="SET v = :v, addedAt = :n ADD hits :one",
                                              ExpressionAttributeValues={":v": {"S": f"upd{n}"}, ":n": {"N": str(n)},
                                                                         ":one": {"N": "1"}})
                self.model.set(key, answer["Attributes"])
            elif roll < 0.70:
                dynamodb.delete_item(TableName=table, Key=wire_key)
                self.model.set(key, None)
            elif roll < 0.80:
                item = self.item(key, n, f"new{n}")
                dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(trackId)")
                self.model.set(key, item)
            elif roll < 0.90:
                with self.model.lock:
                    known = self.model.state.get(key)
                if known is None:
                    return
                answer = dynamodb.update_item(TableName=table, Key=wire_key, ReturnValues="ALL_NEW",
                                              UpdateExpression="SET v = :v", ConditionExpression="v = :was",
                                              ExpressionAttributeValues={":v": {"S": f"cas{n}"}, ":was": known["v"]})
                self.model.set(key, answer["Attributes"])
            else:
                other = chance.choice(keys)
                if other == key:
                    return
                touched = [key, other]
                item = self.item(key, n, f"txn{n}")
                dynamodb.transact_write_items(TransactItems=[
                    {"Put": {"TableName": table, "Item": item}},
                    {"Delete": {"TableName": table, "Key": {"userId": {"S": "u"}, "trackId": {"S": other}}}}])
                with self.model.lock:
                    self.model.state[key], self.model.state[other] = item, None
                    self.model.acknowledged += 1
        except Exception as exc:  # noqa: BLE001 - judged by failed()
            self.failed(exc, touched)

    def failed(self, exc: Exception, touched: list) -> None:
        """A write that raised: one refused (denied by the fence, a failed condition, a cancelled
        transaction) changed nothing; any other (a dropped connection) may or may not have landed,
        and its keys are ambiguous."""
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 403 or "AccessDenied" in code or "AccessDenied" in str(exc):
                with self.model.lock:
                    self.model.denied += 1                        # refused, loudly: nothing written
                return
            if code in REFUSED:
                return
        with self.model.lock:
            self.model.ambiguous.update(touched)

    def write_moved(self, dynamodb, table: str, chance: random.Random, keys: list, n: int) -> None:
        """A write to the moving-key target: an item lives at its slot, which every change of v
        moves (a transaction: the new slot put, the old one deleted)."""
        key = chance.choice(keys)
        with self.model.lock:
            if key in self.model.ambiguous:
                return
            known = self.model.state.get(key)
        old_slot = {"userId": {"S": "u"}, "slot": moved(known)["slot"]} if known else None
        roll = chance.random()
        try:
            if roll < 0.6:      # the model holds items as the source would (without slot): moved() judges here
                item = self.item(key, n, f"mv{n}")
                operations = [{"Put": {"TableName": table, "Item": moved(item)}}]
                if old_slot is not None:
                    operations.append({"Delete": {"TableName": table, "Key": old_slot}})
                dynamodb.transact_write_items(TransactItems=operations)
                self.model.set(key, item)
            elif roll < 0.8:
                if old_slot is not None:
                    dynamodb.delete_item(TableName=table, Key=old_slot)
                    self.model.set(key, None)
            elif known is None:
                item = self.item(key, n, f"new{n}")
                dynamodb.put_item(TableName=table, Item=moved(item), ConditionExpression="attribute_not_exists(slot)")
                self.model.set(key, item)
        except Exception as exc:  # noqa: BLE001 - judged by failed()
            self.failed(exc, [key])


def moved(item):
    """The moving-key transform, on wire items: the item's slot is its v and its trackId (a
    change of v moves it); idempotent: RESHAPE, the module checker imports, on plain values."""
    if item is None:
        return None
    return {**item, "slot": {"S": f"{item['v']['S']}#{item['trackId']['S']}"}}


def oracle(server: Server, table: str, model: Model, moving: bool = False) -> dict:
    """{lost, stale, extra: [keys]} of `table` against the model (ambiguous keys left out); with
    `moving`, the table is keyed by slot (moved()): each key's state is expected at its slot, and
    a second item of a key (left at an old slot) is extra."""
    dynamodb = server.client("dynamodb")
    found: dict = {}
    verdict: dict = {"lost": [], "stale": [], "extra": []}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            if item["trackId"]["S"] in found:
                verdict["extra"].append(item["trackId"]["S"])
            found[item["trackId"]["S"]] = item
    for key in sorted(set(found) | set(model.state)):
        if key in model.ambiguous:
            continue
        expected, held = model.state.get(key), found.get(key)
        if moving:
            expected = moved(expected)
        if expected is not None and held is None:
            verdict["lost"].append(key)
        elif expected is None and held is not None:
            verdict["extra"].append(key)
        elif expected is not None and json.dumps(expected, sort_keys=True) != json.dumps(held, sort_keys=True):
            verdict["stale"].append(key)
    return verdict


RESHAPE = """def to_v2(item):
    return {**item, "slot": f"{item['v']}#{item['trackId']}"}


def to_v1(item):
    return {k: v for k, v in item.items() if k != "slot"}
"""


def moving_spec(name: str) -> dict:
    """The target of a moving-key migration: keyed by (userId, slot)."""
    document = songs_spec(name)
    document["AttributeDefinitions"][1] = {"AttributeName": "slot", "AttributeType": "S"}
    document["KeySchema"][1] = {"AttributeName": "slot", "KeyType": "RANGE"}
    return document


def scenario(server: Server, directory: Path, name: str, online: bool = True, moving: bool = False,
             checker_url: str = "") -> tuple:
    """A source table, the function bound to it with a role allowed on both tables (Lambda and IAM
    are not authorized by this server: any key creates them), and a checklist migrating it to a
    table with an LSI (a new table: a key change for DynamoDB), or with `moving` to one keyed by
    slot through RESHAPE (every change of v moves the item). `checker_url`: where checker reaches
    AWS, when not at the server itself (a latency proxy). Returns (checklist directory, suffix,
    function name)."""
    suffix = f"-{name}"
    function = f"songs{suffix}"
    (directory / "table_specs").mkdir(parents=True, exist_ok=True)
    target = moving_spec("songs_v2") if moving else songs_spec("songs_v2", lsi=True)
    (directory / "table_specs" / "songs_v2.json").write_text(json.dumps(target))
    table: dict = {"migrate_from": "songs"}
    if moving:
        (directory / "reshape.py").write_text(RESHAPE)
        table["transform"] = "reshape:to_v2"
        table["reverse"] = "reshape:to_v1"
    if online:
        table["catch_up"] = "stream"
    (directory / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev",
        "environments": {"dev": {"region": REGION, "endpoint_url": checker_url or server.url, "table_suffix": suffix,
                                 "function_name": function}},
        "tables": {"songs_v2": table}, "lambda": {"bindings": {"SONGS_TABLE": "songs_v2"}}}))
    dynamodb = server.client("dynamodb")
    dynamodb.create_table(**dict(songs_spec("songs"), TableName=f"songs{suffix}"))
    songs_function(server.url, suffix, function, {"SONGS_TABLE": f"songs{suffix}"})
    return directory, suffix, function


def checker(server: Server, directory: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real CLI in a process of its own, with the admin's key."""
    return subprocess.run([CHECKER, *args], cwd=directory, env=server.environ(), capture_output=True, text=True,
                          timeout=timeout)


def checker_killed_at(server: Server, directory: Path, line: Optional[str], *args: str, delay: float = 0.0,
                      timeout: float = 300) -> str:
    """The CLI, SIGKILLed `delay` seconds after its stderr shows `line` (or at its end), or with
    `line` None `delay` seconds after it started, wherever it is then; its stderr."""
    process = subprocess.Popen([CHECKER, *args], cwd=directory, env=server.environ(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(delay, process.kill) if line is None else None
    if killer is not None:
        killer.start()
    seen: list = []
    deadline = time.monotonic() + timeout
    for text in process.stderr:   # type: ignore[union-attr]
        seen.append(text)
        if line is not None and line in text:
            time.sleep(delay)
            break
        if time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    if killer is not None:
        killer.cancel()
    return "".join(seen)
