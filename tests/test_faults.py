"""apply under faults, through the fault-injecting proxy in front of moto: it converges, stops
promptly, and never sends a Delete* or a disabling call (every test ends by checking the record)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from checker.api import Project, Target
from checker.local.dynamo_proxy import DynamoProxy

from .conftest import REGION, load_spec

pytestmark = pytest.mark.timeout(120)
NAMES = ["user", "action_history", "track", "liked_songs", "liked_songs_metadata"]


@pytest.fixture(autouse=True)
def in_project(project, monkeypatch):
    monkeypatch.chdir(project)  # no checklist here: the tables alone


@pytest.fixture
def proxy(endpoint):
    with DynamoProxy(endpoint) as proxy:
        yield proxy
        assert proxy.destructive_calls() == []


def project_at(project_dir, url, **options):
    return Project.load(Target(specs_dir=project_dir / "table_specs", endpoint_url=url, **options), use_checklist=False)


def test_every_create_table_is_sent_before_any_table_is_active(project, proxy):
    proxy.table_polls = 3
    result, waited = project_at(project, proxy.url).apply(timeout=60)
    assert result.ok and waited.ready
    creates = [i for i, (op, _) in enumerate(proxy.calls) if op == "CreateTable"]
    assert len(creates) == 5 and creates == list(range(creates[0], creates[0] + 5))
    first_active = next(i for i, (op, _, status) in enumerate(proxy.statuses) if status == "ACTIVE")
    assert all(op == "CreateTable" for op, _, _ in proxy.statuses[:5]) and first_active > 5


def test_concurrency_bounds_the_operations_in_flight(project, proxy):
    proxy.table_polls = 2
    result, _ = project_at(project, proxy.url).apply(timeout=60, concurrency=2)
    assert result.ok
    in_flight, most = set(), 0
    for operation, table, status in proxy.statuses:
        if operation == "CreateTable":
            in_flight.add(table)
        elif status == "ACTIVE":
            in_flight.discard(table)
        most = max(most, len(in_flight))
    assert most == 2


def test_apply_converges_under_30_percent_throttling(project, proxy):
    for name in ("action_history", "track", "liked_songs_metadata"):
        (project / "table_specs" / f"{name}.json").unlink()  # two tables keep botocore's backoff short
    proxy.throttle_rate = 0.3
    proxy.table_polls = 2
    loaded = project_at(project, proxy.url, max_attempts=10)
    result, waited = loaded.apply(timeout=120)
    assert result.ok and waited.ready, [o.message for o in result.failed]
    proxy.throttle_rate = 0.0
    assert [c for c in loaded.plan() if c.pending] == []
    assert sorted(t for op, t, _ in proxy.statuses if op == "CreateTable") == ["liked_songs", "user"]


def test_a_table_deleted_while_waited_on_fails_at_once(project, proxy, endpoint):
    proxy.table_polls = 10_000
    upstream = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)

    def delete_when_created():
        while "CreateTable" not in proxy.operations():
            time.sleep(0.01)
        time.sleep(0.2)
        upstream.delete_table(TableName="user")
    threading.Thread(target=delete_when_created, daemon=True).start()
    started = time.monotonic()
    (project / "table_specs" / "track.json").unlink()
    for name in ("action_history", "liked_songs", "liked_songs_metadata"):
        (project / "table_specs" / f"{name}.json").unlink()
    result, _ = project_at(project, proxy.url).apply(timeout=600)
    assert time.monotonic() - started < 30
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.message) == ("failed", "table user was deleted while apply waited on it")


def test_two_applies_adding_the_same_index_both_succeed(project, proxy):
    spec = load_spec("liked_songs")
    bare = {k: v for k, v in spec.items() if k != "GlobalSecondaryIndexes"}
    bare["AttributeDefinitions"] = spec["AttributeDefinitions"][:2]
    client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
    client.create_table(**bare)
    for name in ("user", "action_history", "track", "liked_songs_metadata"):
        client.create_table(**load_spec(name))
    proxy.index_polls = 4
    plans = [project_at(project, proxy.url).plan() for _ in range(2)]  # both see the index missing
    results: list = [None, None]

    def run(i):
        results[i] = project_at(project, proxy.url).apply(plans[i], timeout=60)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result, waited in results:
        assert result.ok and waited.ready, [o.message for o in result.outcomes]
    statuses = sorted(o.status for result, _ in results for o in result.outcomes)
    assert statuses == ["already-in-progress", "applied"]
    indexes = client.describe_table(TableName="liked_songs")["Table"]["GlobalSecondaryIndexes"]
    assert [i["IndexName"] for i in indexes] == ["userId-addedAt-index"]


def checker_command():
    return os.path.join(os.path.dirname(sys.executable), "checker")


def test_ctrl_c_during_apply_stops_at_once_naming_what_is_in_flight(project, proxy):
    proxy.table_polls = 10_000
    process = subprocess.Popen([checker_command(), "apply", "--yes", "--endpoint-url", proxy.url],
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while proxy.operations().count("CreateTable") < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert time.monotonic() - interrupted < 5
    assert process.returncode == 130
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted; still in flight on AWS, carrying on there: ")
    assert all(f"{name} (create-table)" in last for name in NAMES)


def test_killed_mid_apply_a_rerun_converges_and_creates_each_table_once(project, proxy, cli):
    proxy.table_polls = 6
    proxy.latency = 0.05
    process = subprocess.Popen([checker_command(), "apply", "--yes", "--endpoint-url", proxy.url, "--concurrency", "2"],
                               cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while "CreateTable" not in proxy.operations() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait(timeout=10)
    proxy.latency = 0.0
    result = cli("apply", "--yes", "--endpoint-url", proxy.url)
    assert result.exit_code == 0, result.output
    assert cli("plan", "--endpoint-url", proxy.url, "--detailed-exitcode").exit_code == 0
    created = [table for operation, table, _ in proxy.statuses if operation == "CreateTable"]
    assert sorted(created) == sorted(NAMES)


def test_a_full_sync_over_the_tables_capacity_loses_no_track(proxy, endpoint, fake_spotify, monkeypatch):
    """The Lambda's DynamoDB calls (the song writes' low-level client included) use standard
    retries: a BatchWriteItem over a provisioned table's capacity is backed off and sent again,
    and every track lands."""
    from spotify_playlist.handler import handle
    upstream = boto3.resource("dynamodb", endpoint_url=endpoint, region_name=REGION)
    for name in ("liked_songs", "liked_songs_metadata"):
        upstream.meta.client.create_table(**load_spec(name))
    fake_spotify.add_user("erin", 1000)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)  # the handler's own resource, unchanged
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    environ = {"DEFAULT_USER_ID": "erin", "SPOTIFY_REFRESH_TOKEN": "refresh-erin", "USER_TABLE": "user",
               "SPOTIFY_API_BASE_URL": fake_spotify.api_base, "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url}
    proxy.throttle_rate, proxy.throttle_code = 0.25, "ProvisionedThroughputExceededException"
    answer = handle({"queryStringParameters": {"action": "sync-liked-songs"}}, None, environ=environ)
    assert answer["statusCode"] == 200, answer["body"]
    writes = [params for operation, params in proxy.calls if operation == "BatchWriteItem"]
    assert len(writes) > 40  # 40 batches of 25, and the throttled ones sent again
    assert upstream.Table("liked_songs").scan(Select="COUNT")["Count"] == 1000


def test_timeout_is_a_deadline_for_the_whole_command_retries_included(cli, endpoint):
    """LimitExceeded on every CreateTable (a limit that clears, so it is retried) and throttling on
    every read: botocore's own retries come on top of checker's, and still --timeout bounds the run."""
    import time

    from checker.local.dynamo_proxy import DynamoProxy
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("CreateTable", "LimitExceededException",
                   "Subscriber limit exceeded: Only 10 tables can be created, updated, or deleted simultaneously")
        started = time.monotonic()
        applied = cli("apply", "--endpoint-url", proxy.url, "--yes", "--timeout", "3")
        apply_seconds = time.monotonic() - started
        proxy.faults.clear()
        proxy.throttle_rate = 1.0
        started = time.monotonic()
        planned = cli("plan", "--endpoint-url", proxy.url, "--timeout", "2", "--max-attempts", "20")
        plan_seconds = time.monotonic() - started
    # apply stops sending at its --timeout; its last reads (what is still not ready) get 10 s more
    assert applied.exit_code == 1 and apply_seconds < 3 + 10 + 4, (apply_seconds, applied.output)
    assert planned.exit_code == 1 and plan_seconds < 2 + 4, (plan_seconds, planned.output)
    assert "--timeout" in planned.stderr and "Traceback" not in planned.output + applied.output


def wait_until_catching(process, signum, seconds=20.0):
    """Until `process` has a handler for `signum` (the SigCgt mask of /proc/PID/status)."""
    status = Path(f"/proc/{process.pid}/status")
    if not status.exists():
        pytest.skip("needs /proc to see when the entry point has started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except FileNotFoundError:   # it ended between the two looks
            break
        if int(fields["SigCgt"].strip(), 16) & (1 << (signum - 1)):
            return
        time.sleep(0.002)
    assert process.poll() is None, "the command ended before its entry point caught signals"


@pytest.mark.parametrize("after", [0.0, 0.05, 0.15, 0.4])
def test_ctrl_c_at_any_moment_is_one_line_never_a_traceback(project, after):
    """From the entry point's first line: while Python still imports click and boto3, too.

    The clock starts when the entry point has run its first line (it catches SIGTERM then, which
    /proc shows): a signal before that lands in CPython's own start-up (importing `site`), which
    no code of ours runs in and which dies with CPython's "Fatal Python error" whatever we write.
    """
    process = subprocess.Popen([checker_command(), "plan", "--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "1"],
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_catching(process, signal.SIGTERM)
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert "Traceback" not in stderr
    if process.returncode == 130:   # interrupted (a fast machine may have finished before the signal)
        assert [line for line in stderr.splitlines() if line.startswith("error:")] == \
            [next(line for line in stderr.splitlines() if line.startswith("error: interrupted"))]


def test_sigterm_during_apply_names_what_is_in_flight(project, proxy):
    proxy.table_polls = 10_000
    process = subprocess.Popen([checker_command(), "apply", "--yes", "--endpoint-url", proxy.url],
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while proxy.operations().count("CreateTable") < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted; still in flight on AWS, carrying on there: ")


def test_a_throttled_first_sync_outlives_an_invocation_and_completes_over_several(proxy, endpoint, fake_spotify,
                                                                                  monkeypatch):
    """The production spec's 1 WCU: writes throttled 40 % of the time, a Lambda with a second to
    live each call. Each invocation stops in time (`partial`), the next goes on, and all 600
    tracks land once (the 2,000-track case runs on a page budget in test_cache); throttling is backed off, never fatal."""
    import json as json_module

    from spotify_playlist.handler import handle
    upstream = boto3.resource("dynamodb", endpoint_url=endpoint, region_name=REGION)
    for name in ("liked_songs", "liked_songs_metadata"):
        upstream.meta.client.create_table(**load_spec(name))
    fake_spotify.add_user("erin", 600)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    environ = {"DEFAULT_USER_ID": "erin", "SPOTIFY_REFRESH_TOKEN": "refresh-erin", "USER_TABLE": "user",
               "SPOTIFY_API_BASE_URL": fake_spotify.api_base, "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url,
               "SYNC_TIME_RESERVE_SECONDS": "0.2"}
    proxy.throttle_rate, proxy.throttle_code = 0.4, "ProvisionedThroughputExceededException"
    proxy.throttle_operations = {"BatchWriteItem"}   # what a table over its write capacity refuses

    class Invocation:
        def __init__(self, seconds):
            self.deadline = time.monotonic() + seconds

        def get_remaining_time_in_millis(self):
            return max(0, int((self.deadline - time.monotonic()) * 1000))
    modes = []
    for _ in range(40):
        answer = handle({"queryStringParameters": {"action": "sync-liked-songs"}}, Invocation(0.6), environ=environ)
        assert answer["statusCode"] == 200, answer["body"]
        modes.append(json_module.loads(answer["body"])["sync"]["mode"])
        if modes[-1] != "partial":
            break
    assert len(modes) >= 3 and set(modes[:-1]) == {"partial"} and modes[-1] == "full", modes
    assert upstream.Table("liked_songs").scan(Select="COUNT")["Count"] == 600


def many_specs(project, count: int) -> None:
    for spec in (project / "table_specs").glob("*.json"):
        spec.unlink()
    for n in range(count):
        (project / "table_specs" / f"t{n:03d}.json").write_text(json.dumps({
            "TableName": f"t{n:03d}", "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}))


def test_apply_and_check_of_many_tables_reuse_their_connections(project, proxy):
    """60 tables: creates sent concurrently, verification re-read concurrently, and botocore's pool
    sized to the threads sharing it, so a few dozen kept-alive connections carry every call
    (botocore's default pool of 10 opened one per call beyond it)."""
    many_specs(project, 60)
    proxy.table_polls = 1
    loaded = project_at(project, proxy.url)
    from checker.live import MAX_PARALLEL
    result, waited = loaded.apply(timeout=60)
    assert result.ok and waited.ready
    applied = proxy.server.connections
    assert len(proxy.calls) > 180 and applied <= MAX_PARALLEL + 4, (applied, len(proxy.calls))
    calls = len(proxy.calls)
    loaded.check(kinds=("tables",))   # a client of its own: a pool of its own
    assert len(proxy.calls) - calls >= 60 and proxy.server.connections - applied <= MAX_PARALLEL + 4


def test_the_local_servers_take_a_burst_of_connections_as_aws_does():
    """checker opens up to 50 connections at once; a listen backlog of 5 (socketserver's default)
    drops the SYNs beyond it and the kernel resends them a second later: every bench and the local
    stack would then measure a delay no AWS endpoint has. Nobody accepts here, so only the backlog
    lets a connect complete."""
    import socket

    from checker.local.http import LocalServer
    server = LocalServer(lambda handler, method: None)
    sockets = []
    try:
        for _ in range(60):
            sock = socket.socket()
            sock.settimeout(0.5)
            sock.connect(("127.0.0.1", server.port))   # times out once the backlog is full
            sockets.append(sock)
    finally:
        for sock in sockets:
            sock.close()
        server.httpd.server_close()
    assert len(sockets) == 60


def test_the_default_concurrency_is_dynamodbs_own_limit():
    from checker.apply import CONTROL_PLANE_LIMIT, CONTROL_PLANE_LIMIT_WITH_INDEXES, control_plane_limit
    from checker.model import Action, Change
    plain = Change("a", Action.CREATE_TABLE, "", True, params={"TableName": "a"}, operation="CreateTable")
    indexed = Change("b", Action.CREATE_TABLE, "", True, params={"TableName": "b", "GlobalSecondaryIndexes": [{}]},
                     operation="CreateTable")
    assert control_plane_limit([plain]) == CONTROL_PLANE_LIMIT == 500
    assert control_plane_limit([plain, indexed]) == CONTROL_PLANE_LIMIT_WITH_INDEXES == 250


def test_a_table_seen_ready_after_its_change_is_not_described_again(project, proxy):
    """apply's last look at a table (ready, after its change) is the re-read: neither the final
    wait nor the verification describes it a second time."""
    many_specs(project, 20)
    proxy.table_polls = 2
    result, waited = project_at(project, proxy.url).apply(timeout=60)
    assert result.ok and waited.ready and len(waited.states) == 20
    after_active: dict = {}
    for operation, table, status in proxy.statuses:
        if operation == "DescribeTable" and table in after_active:
            after_active[table] += 1
        elif operation == "DescribeTable" and status == "ACTIVE":
            after_active[table] = 0
    assert sorted(after_active) == [f"t{n:03d}" for n in range(20)]
    assert set(after_active.values()) == {0}


def test_a_ctrl_c_inside_a_fields_set_name_is_still_one_line(monkeypatch, capsys):
    """Python before 3.12 wraps what a dataclass field's __set_name__ raised in a RuntimeError: a
    Ctrl-C landing while checker's modules build their classes arrives so, the interrupt its cause."""
    import checker.cli
    from checker import entry

    def interrupted_while_importing(**_):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on '_HAS_DEFAULT_FACTORY_CLASS' instance") from exc
    monkeypatch.setattr(checker.cli, "main", interrupted_while_importing)
    with pytest.raises(SystemExit) as stopped:
        entry.run()
    assert stopped.value.code == 130 and capsys.readouterr().err == "error: interrupted\n"
