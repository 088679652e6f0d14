"""An online table migration (`catch_up: stream`): the app keeps writing to the source through the
copy, the catch-up and the switch; afterwards the new table holds exactly the last acknowledged
state of every key. On moto and on ministack (a stream of one shard on both)."""
from __future__ import annotations

import json
import random
import threading
import time

import boto3
import pytest
import yaml

from .backends import songs_function, songs_spec, start_backend
from .conftest import REGION, Cli

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out

FUNCTION = "songs-online"
KEYS = 150


@pytest.fixture(scope="module", params=["moto", "ministack"])
def backend(request, tmp_path_factory):
    yield from start_backend(request.param, tmp_path_factory.mktemp("online"))


class App:
    """Writes as the app would, to whichever table the function's variable names now; remembers
    the last acknowledged state of every key (None: deleted). Neither server enforces IAM: the app
    honours checker's fence on its role itself, as IAM would (`ignores_the_fence`: as a writer the
    fence does not cover). tests/test_migrate_adversary.py proves the fence on a server that enforces it."""

    def __init__(self, url: str, function: str, role: str = ""):
        self.dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name=REGION)
        self.lam = boto3.client("lambda", endpoint_url=url, region_name=REGION)
        self.iam = boto3.client("iam", endpoint_url=url, region_name=REGION)
        self.role = role
        self.ignores_the_fence = False
        self.denied = 0
        self.function = function
        self.state: dict = {}
        self.stop = threading.Event()
        self.random = random.Random(11)
        self.writes = {"source": 0, "target": 0}
        self.error = None

    def table(self) -> str:
        return self.lam.get_function_configuration(FunctionName=self.function)["Environment"]["Variables"]["SONGS_TABLE"]

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                table = self.table()
                key = f"t{self.random.randrange(KEYS):03d}"
                n += 1
                item = None if self.random.random() < 0.2 else {
                    "userId": {"S": "u"}, "trackId": {"S": key}, "addedAt": {"N": str(n)}, "v": {"S": f"w{n}"}}
                if self.fenced(table):
                    self.denied += 1           # AccessDenied: the app sees an error, nothing is written
                    continue
                self.write(table, key, item)
                self.state[key] = item
                self.writes["target" if "_v2" in table else "source"] += 1
                time.sleep(0.005)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def fenced(self, table: str) -> bool:
        if self.ignores_the_fence or not self.role:
            return False
        try:
            self.iam.get_role_policy(RoleName=self.role, PolicyName=f"checker-fence-{table}")
        except self.iam.exceptions.NoSuchEntityException:
            return False
        return True

    def write(self, table: str, key: str, item) -> None:
        """`item` None: a delete."""
        if item is None:
            self.dynamodb.delete_item(TableName=table, Key={"userId": {"S": "u"}, "trackId": {"S": key}})
        else:
            self.dynamodb.put_item(TableName=table, Item=item)


@pytest.fixture
def online_app(tmp_path, backend):
    suffix = f"-{tmp_path.name[-8:].replace('_', '-')}"
    (tmp_path / "table_specs").mkdir()
    (tmp_path / "table_specs" / "songs_v2.json").write_text(json.dumps(songs_spec("songs_v2", lsi=True)))
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev",
        "environments": {"dev": {"region": REGION, "endpoint_url": backend.url, "table_suffix": suffix,
                                 "function_name": FUNCTION + suffix}},
        "tables": {"songs_v2": {"migrate_from": "songs", "catch_up": "stream"}},
        "lambda": {"bindings": {"SONGS_TABLE": "songs_v2"}}}))
    dynamodb = boto3.client("dynamodb", endpoint_url=backend.url, region_name=REGION)
    dynamodb.create_table(**dict(songs_spec("songs"), TableName=f"songs{suffix}"))
    dynamodb.get_waiter("table_exists").wait(TableName=f"songs{suffix}", WaiterConfig={"Delay": 0.2})
    app = App(backend.url, FUNCTION + suffix, role=f"role{suffix}")
    for n in range(KEYS):
        item = {"userId": {"S": "u"}, "trackId": {"S": f"t{n:03d}"}, "addedAt": {"N": str(100_000 + n)}, "v": {"S": "seed"}}
        dynamodb.put_item(TableName=f"songs{suffix}", Item=item)
        app.state[f"t{n:03d}"] = item
    songs_function(backend.url, suffix, FUNCTION + suffix, {"SONGS_TABLE": f"songs{suffix}"}, timeout=1)
    return tmp_path, suffix, app


def test_the_app_writes_throughout_and_the_new_table_ends_as_the_app_left_it(online_app):
    project, suffix, app = online_app
    writer = threading.Thread(target=app.run)
    writer.start()
    try:
        done = Cli(project)("migrate", "--yes", "--page-items", "25")       # no --offline: online
    finally:
        time.sleep(0.5)              # the app goes on writing on the new table for a while
        app.stop.set()
        writer.join()
    assert app.error is None, app.error
    assert done.exit_code == 0, done.output
    assert app.writes["source"] > 20, app.writes     # it wrote during the copy and the catch-up
    assert app.table() == f"songs_v2{suffix}"
    dynamodb = app.dynamodb
    items = {i["trackId"]["S"]: i for page in dynamodb.get_paginator("scan").paginate(
        TableName=f"songs_v2{suffix}", ConsistentRead=True) for i in page["Items"]}
    expected = {k: v for k, v in app.state.items() if v is not None}
    differ = {k for k in set(items) | set(expected) if items.get(k) != expected.get(k)}
    assert differ == set(), (differ, done.stderr[-2000:])     # fenced: no straggler forks the data
    assert "writes were refused for" in done.stderr


def test_a_fence_that_does_not_hold_is_lifted_and_nothing_is_switched(online_app):
    """A writer the fence does not cover (here: one that ignores it) keeps the fenced stream busy:
    after --fence-settle the fence is lifted, the binding stays, the source keeps every write."""
    project, suffix, app = online_app
    app.ignores_the_fence = True
    writer = threading.Thread(target=app.run)
    writer.start()
    try:
        refused = Cli(project)("migrate", "--yes", "--fence-quiet", "1", "--fence-settle", "3")
    finally:
        app.stop.set()
        writer.join()
    assert app.error is None, app.error
    assert refused.exit_code == 1 and "it does not hold" in refused.stderr, refused.output
    assert "the fence is lifted" in refused.stderr
    assert app.table() == f"songs{suffix}"
    assert app.iam.list_role_policies(RoleName=f"role{suffix}")["PolicyNames"] == ["tables"]   # checker's own, gone
    items = {i["trackId"]["S"]: i for page in app.dynamodb.get_paginator("scan").paginate(
        TableName=f"songs{suffix}", ConsistentRead=True) for i in page["Items"]}
    assert items == {k: v for k, v in app.state.items() if v is not None}


def test_a_keys_only_stream_is_refused_and_never_turned_off(online_app):
    project, suffix, app = online_app
    app.dynamodb.update_table(TableName=f"songs{suffix}",
                              StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    refused = Cli(project)("migrate", "--yes")
    assert refused.exit_code == 1 and "KEYS_ONLY" in refused.stderr and "never does" in refused.stderr
    described = app.dynamodb.describe_table(TableName=f"songs{suffix}")["Table"]
    assert described["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}


def test_records_trimmed_before_they_were_read_fail_the_migration_loudly(online_app, backend):
    if backend.name != "moto":
        pytest.skip("the proxy stands in front of moto")
    from checker.local.dynamo_proxy import DynamoProxy
    project, suffix, app = online_app
    with DynamoProxy(backend.url) as proxy:
        proxy.fail("GetRecords", "TrimmedDataAccessException", "Operation cannot be performed: data trimmed")
        failed = Cli(project)("migrate", "--yes", "--endpoint-url", proxy.url)
    assert failed.exit_code == 1 and "trimmed before they were read" in failed.stderr, failed.output
    assert "copy afresh" in failed.stderr and "Traceback" not in failed.output
    assert app.table() == f"songs{suffix}"          # never switched
    again = Cli(project)("migrate", "--yes", "--format", "json")  # the stream readable again: a fresh copy
    assert again.exit_code == 0, again.output
    assert app.table() == f"songs_v2{suffix}"


def test_via_s3_export_and_import_then_the_stream_while_the_app_writes(online_app, backend):
    """DynamoDB's own engine for big tables: ExportTableToPointInTime, ImportTable (which creates the
    target), what the import cannot carry applied after it, then the stream from before the export."""
    if backend.name != "moto":
        pytest.skip("ministack implements neither ExportTableToPointInTime nor ImportTable")
    project, suffix, app = online_app
    with_lsi = Cli(project)("migrate", "--yes", "--via", "s3", "--bucket", "exports")
    assert with_lsi.exit_code == 1 and "local secondary indexes, which ImportTable cannot create" in with_lsi.stderr
    v2 = songs_spec("songs_v2")
    v2["AttributeDefinitions"].append({"AttributeName": "addedAt", "AttributeType": "N"})
    v2["GlobalSecondaryIndexes"] = [{"IndexName": "by-added", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                     "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"},
                                                   {"AttributeName": "addedAt", "KeyType": "RANGE"}]}]
    v2["Tags"] = [{"Key": "team", "Value": "music"}]          # not carried by ImportTable: applied after it
    (project / "table_specs" / "songs_v2.json").write_text(json.dumps(v2))
    boto3.client("s3", endpoint_url=backend.url, region_name=REGION).create_bucket(Bucket=f"exports{suffix}")
    writer = threading.Thread(target=app.run)
    writer.start()
    try:
        done = Cli(project)("migrate", "--yes", "--via", "s3", "--bucket", f"exports{suffix}")
    finally:
        time.sleep(0.3)
        app.stop.set()
        writer.join()
    assert app.error is None and done.exit_code == 0, done.output
    assert "exporting" in done.stderr and "importing" in done.stderr
    table = app.dynamodb.describe_table(TableName=f"songs_v2{suffix}")["Table"]
    tags = app.dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {"Key": "team", "Value": "music"} in tags and [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-added"]
    items = {i["trackId"]["S"]: i for page in app.dynamodb.get_paginator("scan").paginate(
        TableName=f"songs_v2{suffix}", ConsistentRead=True) for i in page["Items"]}
    expected = {k: v for k, v in app.state.items() if v is not None}
    differ = {k for k in set(items) | set(expected) if items.get(k) != expected.get(k)}
    assert differ <= {k for k in differ if f'"trackId": "{k}"' in done.stdout}, differ


def test_a_stream_reader_resumes_after_its_last_sequence_number(endpoint):
    """Positions checkpointed per shard: a new reader (the next run) reads only what came after."""
    from checker.migrate.stream import StreamReader
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    dynamodb.create_table(**dict(songs_spec("songs"), StreamSpecification={"StreamEnabled": True,
                                                                       "StreamViewType": "NEW_AND_OLD_IMAGES"}))
    arn = dynamodb.describe_table(TableName="songs")["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=REGION)
    first = StreamReader(streams, arn)
    first.start(at_latest=True)

    def put(n):
        dynamodb.put_item(TableName="songs", Item={"userId": {"S": "u"}, "trackId": {"S": f"t{n}"}})
    for n in range(3):
        put(n)
    assert [r["dynamodb"]["Keys"]["trackId"]["S"] for r in first.poll()] == ["t0", "t1", "t2"]
    for n in range(3, 5):
        put(n)
    resumed = StreamReader(streams, arn, dict(first.positions))
    resumed.start(at_latest=False)
    assert [r["dynamodb"]["Keys"]["trackId"]["S"] for r in resumed.poll()] == ["t3", "t4"]


@pytest.mark.parametrize("name", ["dynalite", "roto"])
def test_backends_without_streams_say_the_online_path_is_unavailable(name, tmp_path, tmp_path_factory):
    for backend in start_backend(name, tmp_path_factory.mktemp(name)):
        (tmp_path / "table_specs").mkdir()
        (tmp_path / "table_specs" / "songs_v2.json").write_text(json.dumps(songs_spec("songs_v2")))
        (tmp_path / "checklist.yaml").write_text(yaml.safe_dump({
            "version": 1, "default_env": "dev", "environments": {"dev": {"region": REGION, "endpoint_url": backend.url}},
            "tables": {"songs_v2": {"migrate_from": "songs", "catch_up": "stream"}}}))
        dynamodb = boto3.client("dynamodb", endpoint_url=backend.url, region_name=REGION)
        dynamodb.create_table(**songs_spec("songs"))
        dynamodb.get_waiter("table_exists").wait(TableName="songs", WaiterConfig={"Delay": 0.2})
        refused = Cli(tmp_path)("migrate", "--yes")
        assert refused.exit_code == 1 and "no working DynamoDB Streams API" in refused.stderr, refused.output
        assert "--offline" in refused.stderr and "Traceback" not in refused.output


def slotted(item: dict) -> dict:
    """The new table's shape: keyed by a slot made of an attribute the app changes (v)."""
    return dict(item, slot={"S": f"{item['v']['S']}#{item['trackId']['S']}"})


class MovingApp(App):
    """The app of a new key schema: on the new table an item's key moves with every write of v."""

    def write(self, table: str, key: str, item) -> None:
        if "_v2" not in table:
            return super().write(table, key, item)
        before = self.state.get(key)
        if item is not None:
            self.dynamodb.put_item(TableName=table, Item=slotted(item))
        if before is not None and (item is None or slotted(before)["slot"] != slotted(item)["slot"]):
            self.dynamodb.delete_item(TableName=table, Key={"userId": {"S": "u"}, "slot": slotted(before)["slot"]})


def test_a_transform_that_moves_the_key_deletes_where_each_item_was(online_app, backend):
    """A MODIFY of the attribute the new key is made of moves the target item: through the copy,
    the verification and the switch, each track ends in the new table once, where its last
    acknowledged state puts it."""
    if backend.name != "moto":
        pytest.skip("the same engine as on moto; the online writer test covers ministack")
    project, suffix, app = online_app
    app.__class__ = MovingApp
    v2 = songs_spec("songs_v2")
    v2["AttributeDefinitions"] = [{"AttributeName": "userId", "AttributeType": "S"},
                                  {"AttributeName": "slot", "AttributeType": "S"}]
    v2["KeySchema"] = [{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "slot", "KeyType": "RANGE"}]
    (project / "table_specs" / "songs_v2.json").write_text(json.dumps(v2))
    (project / "slots.py").write_text("def to_slot(item):\n    return {**item, 'slot': f\"{item['v']}#{item['trackId']}\"}\n")
    checklist = yaml.safe_load((project / "checklist.yaml").read_text())
    checklist["tables"]["songs_v2"]["transform"] = "slots:to_slot"
    (project / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    writer = threading.Thread(target=app.run)
    writer.start()
    try:
        done = Cli(project)("migrate", "--yes", "--page-items", "25")
    finally:
        time.sleep(0.5)
        app.stop.set()
        writer.join()
    assert app.error is None and done.exit_code == 0, (app.error, done.output)
    assert app.writes["source"] > 20 and app.table() == f"songs_v2{suffix}", app.writes
    held: dict = {}
    for page in app.dynamodb.get_paginator("scan").paginate(TableName=f"songs_v2{suffix}", ConsistentRead=True):
        for item in page["Items"]:
            held.setdefault(item["trackId"]["S"], []).append(item)
    expected = {k: slotted(v) for k, v in app.state.items() if v is not None}
    differ = {k for k in set(held) | set(expected) if held.get(k) != ([expected[k]] if k in expected else None)}
    listed = {k for k in differ if f'"trackId": "{k}"' in done.stdout}
    assert differ == listed, ({k: (held.get(k), expected.get(k)) for k in differ - listed}, done.stdout[-1500:])
