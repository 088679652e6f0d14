# ruff: noqa: F811 - the fixtures of test_check are imported by name
"""`checker migrate` end to end on moto's server: a table migration that adds an LSI to
liked_songs (copy, verify, guarded switch, rollback), data migrations with the ledger, and the
safety properties (resume after a stop, a second migrate refused, a changed file refused)."""
from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest

from checker.migrate.checksum import Checksum, canonical

from .conftest import REGION
from .test_check import FUNCTION, ROLE, app, checklist, deploy, exact_policy  # noqa: F401 - fixtures

USER = "dana"
TRACKS = 120


def dynamodb(endpoint):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)


def fill(endpoint, table="liked_songs", count=TRACKS):
    client = dynamodb(endpoint)
    if table not in client.list_tables()["TableNames"]:   # the unit tests' own, without apply
        client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"},
                                                  {"AttributeName": "trackId", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"},
                                       {"AttributeName": "trackId", "KeyType": "RANGE"}])
    for start in range(0, count, 25):
        client.batch_write_item(RequestItems={table: [
            {"PutRequest": {"Item": {"userId": {"S": USER}, "trackId": {"S": f"t{n:04d}"}, "addedAt": {"N": str(1000 + n)},
                                     "trackName": {"S": f"song {n}"}, "tags": {"SS": ["a", "b"]}}}}
            for n in range(start, min(count, start + 25))]})


def as_text(item: dict) -> str:
    return json.dumps(item, sort_keys=True)


def items(endpoint, table):
    return [item for page in dynamodb(endpoint).get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
            for item in page["Items"]]


def migration_file(project, name: str, source: str):
    """migrations/NAME beside the test project's checklist."""
    migrations = project / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / name).write_text(source)
    return migrations / name


def on_demand(project, name="liked_songs"):
    """Tests copy at full speed: the shipped spec's 1 RCU/1 WCU would meter the copy to an item a second."""
    path = project / "table_specs" / f"{name}.json"
    spec = json.loads(path.read_text())
    spec["BillingMode"] = "PAY_PER_REQUEST"
    spec.pop("ProvisionedThroughput", None)
    for index in spec.get("GlobalSecondaryIndexes", []):
        index.pop("ProvisionedThroughput", None)
    path.write_text(json.dumps(spec))
    return spec


def add_v2(project, checklist):
    """liked_songs_v2: liked_songs plus an LSI (fixed at creation: a new table), the app bound to it."""
    spec = on_demand(project)
    spec["TableName"] = "liked_songs_v2"
    spec["LocalSecondaryIndexes"] = [{"IndexName": "userId-trackName-index",
                                      "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"},
                                                    {"AttributeName": "trackName", "KeyType": "RANGE"}],
                                      "Projection": {"ProjectionType": "KEYS_ONLY"}}]
    spec["AttributeDefinitions"].append({"AttributeName": "trackName", "AttributeType": "S"})
    (project / "table_specs" / "liked_songs_v2.json").write_text(json.dumps(spec))
    checklist.setdefault("tables", {})["liked_songs_v2"] = {"migrate_from": "liked_songs"}
    checklist["lambda"]["bindings"]["LIKED_SONGS_TABLE"] = "liked_songs_v2"
    checklist.write()


def function_variables(endpoint):
    config = boto3.client("lambda", endpoint_url=endpoint, region_name=REGION).get_function_configuration(
        FunctionName=FUNCTION)
    return config["Environment"]["Variables"]


def grant_v2(endpoint, checklist):
    """The role gets on liked_songs_v2 exactly what it has on liked_songs."""
    policy = exact_policy(checklist)
    statements = []
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        mine = [r.replace("table/liked_songs", "table/liked_songs_v2") for r in resources
                if r.endswith("table/liked_songs") or "table/liked_songs/" in r]
        if mine:
            statements.append({**statement, "Resource": mine + [m.split("/index/")[0] + "/index/*" for m in mine
                                                                  if "/index/" in m]})
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
    iam.put_role_policy(RoleName=ROLE, PolicyName="v2", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))


@pytest.fixture
def live(cli, endpoint, project, checklist, app):  # noqa: F811
    on_demand(project)
    assert cli("apply", "--endpoint-url", endpoint, "--yes", "--env", "dev").exit_code == 0
    deploy(endpoint, checklist)
    fill(endpoint)
    return ["--endpoint-url", endpoint, "--env", "dev", "--base-url", app.url]


def test_a_table_migration_adds_an_lsi_and_switches_the_app_only_when_proven(cli, endpoint, project, checklist, live):
    before = items(endpoint, "liked_songs")
    add_v2(project, checklist)
    planned = cli("plan", *live[:4], "--detailed-exitcode")
    assert planned.exit_code == 2 and "migrate-table liked_songs -> liked_songs_v2" in planned.stdout, planned.stdout
    assert "[checker migrate]" in planned.stdout
    applied = cli("apply", *live[:4], "--yes")          # apply never creates a migration's target
    assert applied.exit_code == 0, applied.output
    assert "liked_songs_v2" not in dynamodb(endpoint).list_tables()["TableNames"]
    assert cli("migrate", *live, "--yes").exit_code == 1   # table migrations need the operator's --offline

    # the role may use liked_songs but not liked_songs_v2: copied and verified, never switched
    refused = cli("migrate", *live, "--offline", "--yes")
    assert refused.exit_code == 1 and "may not do on liked_songs_v2" in refused.stderr, refused.output
    assert "put-role-policy" in refused.stderr
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"

    grant_v2(endpoint, checklist)
    done = cli("migrate", *live, "--offline", "--yes")
    assert done.exit_code == 0, done.output
    variables = function_variables(endpoint)
    assert variables["LIKED_SONGS_TABLE"] == "liked_songs_v2"
    assert variables["SPOTIFY_CLIENT_SECRET"] not in done.output       # values are never printed
    assert variables["USER_TABLE"] == "user"                            # the rest of Environment kept
    copied = items(endpoint, "liked_songs_v2")
    assert sorted(json.dumps(i, sort_keys=True) for i in copied) == sorted(json.dumps(i, sort_keys=True) for i in before)
    assert items(endpoint, "liked_songs") == before                     # the source untouched, never deleted
    lsi = dynamodb(endpoint).describe_table(TableName="liked_songs_v2")["Table"]["LocalSecondaryIndexes"]
    assert [i["IndexName"] for i in lsi] == ["userId-trackName-index"]
    assert "delete-table --table-name liked_songs" in done.stdout       # the command a person runs later
    assert "gives no RevisionId" in done.stdout     # moto: the switch could not be guarded, and says so

    again = cli("migrate", *live, "--offline", "--yes")
    assert again.exit_code == 0 and "Nothing to migrate" in again.stdout
    followed = cli("check", *live, "--only", "migrations,bindings,iam")   # iam: the table the app uses now
    assert followed.exit_code == 0 and "iam:liked_songs_v2" in followed.stdout, followed.output
    status = cli("migrate", "status", *live[:4])
    assert status.exit_code == 0 and "switched" in status.stdout and "fenced" in status.stdout, status.stdout
    as_json = json.loads(cli("migrate", "status", *live[:4], "--format", "json").stdout)   # the JSON agrees with the text
    [entry] = [m for m in as_json["migrations"] if m["kind"] == "table"]
    assert entry["status"] == "switched" and entry["switched"] is True
    assert entry["read"] == entry["written"] == len(before) and f"{len(before):,} read" in entry["detail"]

    # the switched app writes the new table: a rollback carries its writes back, deletes included
    new_table = dynamodb(endpoint)
    written = dict(copied[0], trackName={"S": "written after the switch"})
    new_table.put_item(TableName="liked_songs_v2", Item=written)
    new_table.delete_item(TableName="liked_songs_v2", Key={k: copied[1][k] for k in ("userId", "trackId")})
    back = cli("migrate", "rollback", "table:liked_songs_v2", *live[:4], "--yes", "--fence-quiet", "0")
    assert back.exit_code == 0, back.output
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"
    assert sorted(map(as_text, items(endpoint, "liked_songs"))) == sorted(map(as_text, items(endpoint, "liked_songs_v2")))
    assert written in items(endpoint, "liked_songs") and copied[1] not in items(endpoint, "liked_songs")
    assert "liked_songs_v2 is kept, fenced" in back.stdout


def test_during_a_pending_migration_the_fix_lines_name_the_migration_not_apply(cli, endpoint, project, checklist, live):
    """apply never creates a migration's target, and the app must not be bound to a table that
    does not exist yet: both fixes are the migration, with the run's options."""
    add_v2(project, checklist)
    result, report = cli.json("check", *live[:4], "--only", "tables,bindings,migrations")
    fixes = {r["id"]: r["remediation"] for r in report["results"] if r["status"] == "fail"}
    assert set(fixes) == {"table:liked_songs_v2", "bindings:LIKED_SONGS_TABLE", "migrations:table:liked_songs_v2"}, fixes
    for fix in fixes.values():
        assert fix.endswith(f"checker migrate --offline --env dev --endpoint-url {endpoint}") and "apply" not in fix, fix


def test_a_switch_the_smoke_checks_fail_prints_a_rollback_that_runs_as_printed(cli, endpoint, project, checklist, live):
    """The fix line after a failed post-switch smoke names the migration and carries the run's
    options: pasted as printed, it switches the app back."""
    import re
    import shlex
    add_v2(project, checklist)
    grant_v2(endpoint, checklist)
    checklist["endpoints"].append({"name": "down", "url": "http://127.0.0.1:9/", "retries": 0, "timeout": 1})
    checklist.write()
    done = cli("migrate", *live, "--offline", "--yes")
    assert done.exit_code == 1 and function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs_v2", done.output
    [line] = re.findall(r"`(checker migrate rollback [^`]+)`", done.stderr)
    assert "table:liked_songs_v2" in line and "--env dev" in line and endpoint in line, line
    back = cli(*shlex.split(line)[1:])
    assert back.exit_code == 0, back.output
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"


def test_a_rollback_after_a_transform_needs_its_reverse_and_then_carries_every_write_back(cli, endpoint, project,
                                                                                          checklist, live):
    """A transform made the new table: without a reverse the rollback refuses, switching
    nothing, and lists every key the app wrote since the switch; with `reverse:` it copies the
    new table back through it, deletes what the app deleted, and switches back."""
    add_v2(project, checklist)
    grant_v2(endpoint, checklist)
    (project / "shape.py").write_text("def reshape(item):\n    return {**item, 'shape': 2}\n"
                                      "def unshape(item):\n    return {k: v for k, v in item.items() if k != 'shape'}\n")
    checklist["tables"]["liked_songs_v2"]["transform"] = "shape:reshape"
    checklist.write()
    assert cli("migrate", *live, "--offline", "--yes").exit_code == 0
    client = dynamodb(endpoint)
    client.put_item(TableName="liked_songs_v2", Item={"userId": {"S": USER}, "trackId": {"S": "new"},
                                                      "trackName": {"S": "after"}, "shape": {"N": "2"}})
    client.update_item(TableName="liked_songs_v2", Key={"userId": {"S": USER}, "trackId": {"S": "t0003"}},
                       UpdateExpression="SET trackName = :n", ExpressionAttributeValues={":n": {"S": "renamed"}})
    client.delete_item(TableName="liked_songs_v2", Key={"userId": {"S": USER}, "trackId": {"S": "t0007"}})

    refused = cli("migrate", "rollback", "table:liked_songs_v2", *live[:4], "--yes", "--fence-quiet", "0")
    assert refused.exit_code == 1 and "gives no reverse" in refused.stderr, refused.output
    listed = [line for line in refused.stderr.splitlines() if "written since the switch" in line]
    assert sorted(listed) == sorted(f'table:liked_songs_v2: written since the switch: {{"userId": "{USER}", '
                                    f'"trackId": "{track}"}}' for track in ("new", "t0003", "t0007")), refused.stderr
    assert "3 of its keys" in refused.stderr
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs_v2"    # nothing done
    assert "Traceback" not in refused.output

    checklist["tables"]["liked_songs_v2"]["reverse"] = "shape:unshape"
    checklist.write()
    back = cli("migrate", "rollback", "table:liked_songs_v2", *live[:4], "--yes", "--fence-quiet", "0")
    assert back.exit_code == 0, back.output
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"
    expected = [{k: v for k, v in item.items() if k != "shape"} for item in items(endpoint, "liked_songs_v2")]
    assert sorted(map(as_text, items(endpoint, "liked_songs"))) == sorted(map(as_text, expected))
    assert len(expected) == TRACKS and "1 key(s) deleted from liked_songs" in back.stderr


def test_a_migrate_from_that_names_no_table_is_an_error_never_an_empty_target(cli, endpoint, project, checklist, live):
    add_v2(project, checklist)
    checklist["tables"]["liked_songs_v2"]["migrate_from"] = "liked_song"        # a typo
    checklist.write()
    for command in (("plan",), ("apply", "--yes")):
        refused = cli(*command, *live[:4])
        assert refused.exit_code == 1 and "migrate_from: liked_song is no live table" in refused.stderr, refused.output
    assert "liked_songs_v2" not in dynamodb(endpoint).list_tables()["TableNames"]   # nothing created
    checked = cli("check", *live, "--only", "migrations")
    assert checked.exit_code == 1 and "liked_song is no live table" in checked.stdout, checked.output


def test_a_copy_that_stopped_resumes_from_its_checkpoints_and_converges(cli, endpoint, project, checklist, live):
    """A transform that fails half-way (as Ctrl-C or an expired credential would stop it): the
    rerun goes on from the segments' checkpoints; the result is every item once, equal checksums."""
    add_v2(project, checklist)
    grant_v2(endpoint, checklist)
    (project / "shape.py").write_text(
        "import os\n"
        "def reshape(item):\n"
        "    if os.environ.get('FAIL_AT') and item['trackId'] == os.environ['FAIL_AT']:\n"
        "        raise RuntimeError('planted failure')\n"
        "    return {**item, 'shape': 2}\n")
    checklist["tables"]["liked_songs_v2"]["transform"] = "shape:reshape"
    checklist.write()
    import os
    os.environ["FAIL_AT"] = "t0090"
    try:
        stopped = cli("migrate", *live, "--offline", "--yes", "--segments", "2")
    finally:
        del os.environ["FAIL_AT"]
    assert stopped.exit_code == 1 and "planted failure" in stopped.stderr and "RuntimeError" in stopped.stderr
    assert "Traceback" not in stopped.output
    resumed = cli("migrate", *live, "--offline", "--yes", "--segments", "2")
    assert resumed.exit_code == 0, resumed.output
    copied = items(endpoint, "liked_songs_v2")
    assert len(copied) == TRACKS and {i["trackId"]["S"] for i in copied} == {f"t{n:04d}" for n in range(TRACKS)}
    assert all(i["shape"] == {"N": "2"} for i in copied)


def test_a_verification_difference_is_copied_again_and_never_a_dead_end(cli, endpoint, project, checklist, live,
                                                                       monkeypatch):
    """Items that differ after the copy (the target written by someone between copy and
    verification) are copied again from the source and compared again; a difference that keeps
    coming back stops at `differs`, and the same command, run again, repairs and switches."""
    from checker.migrate import table
    add_v2(project, checklist)
    grant_v2(endpoint, checklist)
    client = dynamodb(endpoint)
    source_items = items(endpoint, "liked_songs")
    spoiled = {k: source_items[0][k] for k in ("userId", "trackId")}
    verify = table.TableMigrationRun.verify
    rounds = {"spoil": 1}

    def spoiling(run, online=None):
        original = run.caught_up

        def spoil_then(catch_up, key, origins, attempts=3):
            ok = original(catch_up, key, origins, attempts)
            if rounds["spoil"]:
                client.put_item(TableName="liked_songs_v2", Item={**spoiled, "trackName": {"S": "spoiled"}})
            return ok and not rounds["spoil"]
        run.caught_up = spoil_then
        client.put_item(TableName="liked_songs_v2", Item={**spoiled, "trackName": {"S": "spoiled"}})
        client.delete_item(TableName="liked_songs_v2", Key={k: source_items[1][k] for k in ("userId", "trackId")})
        return verify(run, online)
    monkeypatch.setattr(table.TableMigrationRun, "verify", spoiling)
    stuck = cli("migrate", *live, "--offline", "--yes")
    assert stuck.exit_code == 1 and "after 3 rounds of repair" in stuck.stderr, stuck.output
    assert "verifies and repairs again" in stuck.stderr
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"       # never switched
    rounds["spoil"] = 0                  # the writer that spoiled it is gone: one spoiling before the verification
    again = cli("migrate", *live, "--offline", "--yes")
    assert again.exit_code == 0, again.output
    assert "copied again and matched" in again.stderr
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs_v2"
    assert sorted(map(as_text, items(endpoint, "liked_songs_v2"))) == sorted(map(as_text, source_items))


def test_data_migrations_run_once_in_order_and_a_changed_file_is_refused(cli, endpoint, project, checklist, live):
    migrations = project / "migrations"
    migration_file(project, "0001_genre.py",
        "TABLE = 'liked_songs'\n"
        "def transform(item):\n"
        "    if 'genre' in item:\n"
        "        return None\n"
        "    return {**item, 'genre': 'unknown', 'rank': 1.5}\n")
    assert cli("check", *live, "--only", "migrations").exit_code == 1      # pending
    dry = cli("migrate", *live, "--dry-run")
    assert dry.exit_code == 0 and f"{TRACKS} of {TRACKS} item(s)" in dry.stdout and "genre" in dry.stdout
    assert "unknown" not in dry.stdout                                      # names, never values
    assert all("genre" not in i for i in items(endpoint, "liked_songs"))
    ran = cli("migrate", *live, "--yes")
    assert ran.exit_code == 0, ran.output
    after = items(endpoint, "liked_songs")
    assert all(i["genre"] == {"S": "unknown"} and i["rank"] == {"N": "1.5"} for i in after) and len(after) == TRACKS
    again = cli("migrate", *live, "--yes")
    assert again.exit_code == 0 and "Nothing to migrate" in again.stdout
    assert cli("check", *live, "--only", "migrations").exit_code == 0
    assert cli("plan", *live[:4], "--detailed-exitcode").exit_code == 0

    (migrations / "0001_genre.py").write_text((migrations / "0001_genre.py").read_text() + "# edited\n")
    refused = cli("migrate", *live, "--yes")
    assert refused.exit_code == 1 and "forward-only" in refused.stderr


def test_plan_status_and_check_read_migration_files_without_running_them(cli, endpoint, project, checklist, live):
    """A file that would loop at import, or leave a mark: plan, status and check read its TABLE
    and sha256 without executing it; migrate runs it, and its sys.exit at import is one line, exit
    1. A FIFO among the files is refused by name, never read (it would block)."""
    import os
    marker = project / "ran"
    path = migration_file(project, "0001_loop.py",
        "import os, sys\n"
        f"open({str(marker)!r}, 'w').close()\n"
        "if not os.environ.get('LET_IT_EXIT'):\n"
        "    while True:\n"
        "        pass\n"
        "sys.exit(0)\n"
        "TABLE = 'liked_songs'\n"
        "def transform(item):\n"
        "    return None\n")
    assert cli("plan", *live[:4], "--detailed-exitcode", "--timeout", "30").exit_code == 2
    assert cli("migrate", "status", *live[:4]).exit_code == 2
    assert cli("check", *live, "--only", "migrations").exit_code == 1
    assert not marker.exists()                          # never executed
    os.environ["LET_IT_EXIT"] = "1"
    try:
        ran = cli("migrate", *live, "--yes")
    finally:
        del os.environ["LET_IT_EXIT"]
    assert ran.exit_code == 1 and "importing it raised SystemExit" in ran.stderr, ran.output
    assert marker.exists() and "Traceback" not in ran.output

    path.unlink()
    os.mkfifo(project / "migrations" / "0002_fifo.py")
    blocked = cli("plan", *live[:4], "--timeout", "30")
    assert blocked.exit_code == 1 and "0002_fifo.py: not a regular file" in blocked.stderr, blocked.output


def test_a_failed_data_migration_is_fixed_and_resumed_and_applied_only_when_nothing_is_left(
        cli, endpoint, project, checklist, live, monkeypatch):
    """The transform raises on one item: the fixed file goes on (every sha256 recorded); items the
    old code writes in the old shape during the first pass are changed by a final pass, and only a
    pass that finds nothing left makes it `applied`."""
    path = migration_file(project, "0001_genre.py",
        "TABLE = 'liked_songs'\n"
        "def transform(item):\n"
        "    if item['trackId'] == 't0005':\n"
        "        raise ValueError('planted')\n"
        "    return None if 'genre' in item else {**item, 'genre': 'unknown'}\n")
    failed = cli("migrate", *live, "--yes")
    assert failed.exit_code == 1 and "planted" in failed.stderr
    path.write_text(path.read_text().replace("raise ValueError('planted')", "pass"))
    client = dynamodb(endpoint)
    old_shape = dict(items(endpoint, "liked_songs")[0], trackId={"S": "zz-written-meanwhile"})
    old_shape.pop("genre", None)
    from checker.migrate.copy import Scan
    first_pass = Scan.run
    passes = {"n": 0}

    def the_old_code_writes_meanwhile(self, handle, *args, **kwargs):
        passes["n"] += 1
        result = first_pass(self, handle, *args, **kwargs)
        if passes["n"] == 1:
            client.put_item(TableName="liked_songs", Item=old_shape)
        return result
    monkeypatch.setattr(Scan, "run", the_old_code_writes_meanwhile)
    fixed = cli("migrate", *live, "--yes")
    assert fixed.exit_code == 0, fixed.output
    assert "the file changed since the run that stopped" in fixed.stderr
    assert "pass 2 changed 1 item(s)" in fixed.stderr
    assert all(i.get("genre") == {"S": "unknown"} for i in items(endpoint, "liked_songs"))
    entry = client.get_item(TableName="checker_migrations", Key={"id": {"S": "0001_genre"}})["Item"]
    assert entry["status"] == {"S": "applied"} and len(entry["sha256s"]["S"].split(",")) == 2


def test_a_backfill_the_old_code_keeps_undoing_is_not_called_applied(cli, endpoint, project, live, monkeypatch):
    from checker.migrate.copy import Scan
    migration_file(project, "0001_genre.py", "TABLE = 'liked_songs'\n"
                   "def transform(item):\n    return None if 'genre' in item else {**item, 'genre': 'unknown'}\n")
    client = dynamodb(endpoint)
    old_shape = {k: v for k, v in items(endpoint, "liked_songs")[0].items() if k != "genre"}
    every_pass = Scan.run

    def the_old_code_writes_throughout(self, handle, *args, **kwargs):
        result = every_pass(self, handle, *args, **kwargs)
        client.put_item(TableName="liked_songs", Item=old_shape)
        return result
    monkeypatch.setattr(Scan, "run", the_old_code_writes_throughout)
    stopped = cli("migrate", *live, "--yes")
    assert stopped.exit_code == 1 and "still have the old shape" in stopped.stderr, stopped.output
    assert "deploy the code that writes the new shape first" in stopped.stderr
    status = cli("migrate", "status", *live[:4])
    assert status.exit_code == 2 and "failed" in status.stdout


def test_a_deleting_transform_needs_allow_deletes_and_a_bad_file_is_one_line(cli, endpoint, project, live):
    migrations = project / "migrations"
    migration_file(project, "0001_drop.py",
        "from checker.migrate import DELETE\nTABLE = 'liked_songs'\n"
        "def transform(item):\n    return DELETE if item['trackId'] < 't0010' else None\n")
    refused = cli("migrate", *live, "--yes")
    assert refused.exit_code == 1 and "--allow-deletes" in refused.stderr
    assert len(items(endpoint, "liked_songs")) == TRACKS
    done = cli("migrate", *live, "--yes", "--allow-deletes")
    assert done.exit_code == 0, done.output
    assert len(items(endpoint, "liked_songs")) == TRACKS - 10
    (migrations / "0002_bad.py").write_text("TABLE = 'no_such_table'\ndef transform(item):\n    return None\n")
    bad = cli("migrate", *live, "--yes")
    assert bad.exit_code == 1 and "0002_bad.py" in bad.stderr and "TABLE must be" in bad.stderr
    (migrations / "0002_bad.py").unlink()
    (migrations / "2_short.py").write_text("")
    assert "NNNN_name.py" in cli("migrate", *live, "--yes").stderr


def test_a_second_migrate_at_once_is_refused_by_the_ledger(cli, endpoint, project, live):
    from checker.environment import resolve
    from checker.migrate.ledger import ledger_of
    from checker.target import Target
    migration_file(project, "0001_noop.py", "TABLE = 'liked_songs'\ndef transform(item):\n    return None\n")
    ledger = ledger_of(resolve(Target(specs_dir=project / "table_specs", checklist_path=project / "checklist.yaml",
                                      env="dev", endpoint_url=endpoint)))
    ledger.ensure()
    with ledger.lease("arn:aws:iam::123456789012:user/first"):
        second = cli("migrate", *live, "--yes")
    assert second.exit_code == 1 and "another checker migrate is running" in second.stderr
    assert "user/first" in second.stderr
    assert cli("migrate", *live, "--yes").exit_code == 0      # freed when the first ends
    exported = cli("export", "--endpoint-url", endpoint, "--specs", str(project / "exported"))
    assert exported.exit_code == 0, exported.output
    files = sorted(p.name for p in (project / "exported").glob("*.json"))
    assert "liked_songs.json" in files and not any("checker_migrations" in f for f in files)   # checker's own table


def test_the_checksum_ignores_order_and_number_spelling_and_sees_every_difference():
    keys = ("id",)
    a, b = Checksum(), Checksum()
    first = {"id": "1", "n": Decimal("1.0"), "s": {"x", "y"}}
    second = {"id": "2", "n": Decimal("10")}
    a.add(first, keys)
    a.add(second, keys)
    b.add({"id": "2", "n": Decimal("1E+1")}, keys)
    b.add({"id": "1", "n": Decimal("1"), "s": {"y", "x"}}, keys)
    assert a.total == b.total and not a.differing_buckets(b)
    b.add(second, keys)                                   # a duplicate is a difference
    assert a.differing_buckets(b)
    assert canonical("1") != canonical(Decimal(1))        # a string is not a number


def test_the_meter_keeps_a_copy_within_its_share_of_capacity():
    """A provisioned table's share is a rate: whatever the workers ask, what passes in a window is
    at most the rate times the window plus one second's burst."""
    import threading
    import time as clock

    from checker.migrate.copy import Meter, capacity_rate
    rate = capacity_rate({"BillingModeSummary": {"BillingMode": "PROVISIONED"},
                          "ProvisionedThroughput": {"WriteCapacityUnits": 400}}, "WriteCapacityUnits", 0.5)
    assert rate == 200 and capacity_rate({"BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}},
                                         "WriteCapacityUnits", 0.5) is None
    meter = Meter(rate)
    started = clock.monotonic()
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            meter.take(25)
    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    clock.sleep(0.6)
    stop.set()
    for thread in workers:
        thread.join()
    elapsed = clock.monotonic() - started
    assert meter.taken <= rate * elapsed + rate + 4 * 25, (meter.taken, elapsed)
    assert meter.taken >= rate * 0.5            # and it does let work through


def test_a_wait_for_capacity_ends_at_the_migrations_deadline():
    """A 1-unit table's page owes minutes of capacity: the next wait ends at --timeout (the
    caller stops at its checkpoint), not when the debt is paid."""
    from checker.migrate.copy import Meter
    from checker.poll import Deadline, SimulatedClock
    clock = SimulatedClock()
    meter = Meter(0.5, clock)
    meter.take(250)                                  # a big page: 500 s of debt at half a unit a second
    deadline = Deadline(15, clock=clock)
    meter.take(250, deadline=deadline)
    assert 15 <= clock.now() <= 16 and meter.taken == 250, (clock.now(), meter.taken)


def test_a_scan_page_is_bounded_whatever_the_backend_returns(endpoint):
    """Memory stays one page a worker: the copy asks for at most `page_limit` items a page (dynalite
    would hand a whole segment over at once)."""
    from checker.migrate.copy import Scan
    fill(endpoint, count=95)
    sizes = []
    Scan(dynamodb(endpoint), "liked_songs", segments=1, page_limit=10).run(
        lambda segment, page: sizes.append(len(page)) or 0)
    assert sum(sizes) == 95 and max(sizes) <= 10 and len(sizes) >= 10


def test_reads_are_paid_for_before_the_next_read_never_after_the_last(endpoint):
    """A metered copy waits before reading more, not after it has read everything (a copy that
    had finished sat out its last page's read units)."""
    from checker.migrate.copy import Meter, Scan
    fill(endpoint, count=30)

    class Counted(Meter):
        def take(self, units, stop=None, deadline=None):
            self.asked = getattr(self, "asked", 0) + 1
            super().take(units, stop, deadline)
    for page_limit, asked in ((100, 0), (10, 2)):    # one page: nothing owed; three of 10: paid before pages 2 and 3
        meter = Counted(1000.0)
        Scan(dynamodb(endpoint), "liked_songs", segments=1, meter=meter, page_limit=page_limit).run(lambda s, p: 0)
        assert getattr(meter, "asked", 0) == asked, (page_limit, getattr(meter, "asked", 0))


@pytest.mark.parametrize("where", ["import", "transform"])
def test_sys_exit_0_in_a_data_migration_is_a_failure_not_a_success(cli, endpoint, project, live, where):
    """A gate never exits 0 with the work undone: SystemExit from the user's code is an error naming it."""
    exit_at_import = "import sys\nsys.exit(0)\n" if where == "import" else "import sys\n"
    body = "    sys.exit(0)\n" if where == "transform" else "    return item\n"
    migration_file(project, "0001_leave.py", f"{exit_at_import}TABLE = 'liked_songs'\ndef transform(item):\n{body}")
    failed = cli("migrate", *live, "--yes")
    assert failed.exit_code == 1, failed.output
    assert "0001_leave.py" in failed.stderr and "SystemExit" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.output


def test_sys_exit_0_in_a_table_migrations_transform_is_a_failure(cli, endpoint, project, checklist, live):
    add_v2(project, checklist)
    grant_v2(endpoint, checklist)
    (project / "shape.py").write_text("import sys\ndef reshape(item):\n    sys.exit(0)\n")
    checklist["tables"]["liked_songs_v2"]["transform"] = "shape:reshape"
    checklist.write()
    failed = cli("migrate", *live, "--offline", "--yes")
    assert failed.exit_code == 1 and "transform shape:reshape raised SystemExit" in failed.stderr, failed.output
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"


BINARY = {"userId": {"S": "u-bin"}, "trackId": {"S": "t-bin"}, "trackName": {"S": "bin"},
          "cover": {"B": b"\x00\xffpng"}, "thumbs": {"BS": [b"\x01", b"\x02\x03"]}}


def test_a_table_migration_copies_and_verifies_binary_attributes(cli, endpoint, project, checklist, live):
    add_v2(project, checklist)
    grant_v2(endpoint, checklist)
    dynamodb(endpoint).put_item(TableName="liked_songs", Item=BINARY)
    done = cli("migrate", *live, "--offline", "--yes", "--page-items", "7")
    assert done.exit_code == 0, done.output
    copied = dynamodb(endpoint).get_item(TableName="liked_songs_v2", Key={k: BINARY[k] for k in ("userId", "trackId")})
    assert copied["Item"]["cover"] == BINARY["cover"] and sorted(copied["Item"]["thumbs"]["BS"]) == [b"\x01", b"\x02\x03"]


def test_a_data_migration_over_items_with_binary_attributes(cli, endpoint, project, live):
    dynamodb(endpoint).put_item(TableName="liked_songs", Item=BINARY)
    migration_file(project, "0001_mark.py", "TABLE = 'liked_songs'\n"
                   "def transform(item):\n    return {**item, 'marked': True}\n")
    done = cli("migrate", *live, "--yes", "--page-items", "7")
    assert done.exit_code == 0, done.output
    marked = dynamodb(endpoint).get_item(TableName="liked_songs", Key={k: BINARY[k] for k in ("userId", "trackId")})
    assert marked["Item"]["marked"] == {"BOOL": True} and marked["Item"]["cover"] == BINARY["cover"]


@pytest.mark.parametrize("body, said", [
    ("return {**item, 'blob': 'x' * 500_000}", "over DynamoDB's 400 KB item limit"),
    ("return {**item, 'when': __import__('datetime').datetime(2026, 1, 1)}", "a value DynamoDB cannot store")])
def test_a_table_transform_whose_item_cannot_be_stored_stops_naming_the_key(cli, endpoint, project, checklist, live,
                                                                          body, said):
    add_v2(project, checklist)
    grant_v2(endpoint, checklist)
    (project / "grow.py").write_text(f"def grow(item):\n    {body}\n")
    checklist["tables"]["liked_songs_v2"]["transform"] = "grow:grow"
    checklist.write()
    failed = cli("migrate", *live, "--offline", "--yes")
    assert failed.exit_code == 1 and said in failed.stderr and '"userId"' in failed.stderr, failed.output
    assert "a bug in checker" not in failed.stderr
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"


def test_a_transform_returning_what_dynamodb_cannot_store_is_one_line(cli, endpoint, project, live):
    migration_file(project, "0001_when.py",
        "import datetime\nTABLE = 'liked_songs'\n"
        "def transform(item):\n    return {**item, 'seen': datetime.datetime(2026, 1, 1)}\n")
    failed = cli("migrate", *live, "--yes")
    assert failed.exit_code == 1 and "0001_when.py: transform returned a value DynamoDB cannot store" in failed.stderr
    assert "a bug in checker" not in failed.stderr and "Traceback" not in failed.output


def test_a_catch_up_the_app_outpaces_stops_and_says_so():
    import checker.migrate.stream as stream

    class Busy:   # every poll full pages of fresh records: never at the stream's tip
        polls = 0
        at_tip = False

        def poll(self):
            return [{"dynamodb": {"Keys": {}}}] * stream.RECORDS_A_CALL

    class Nothing:
        def apply(self, records):
            pass
    from checker.poll import SimulatedClock
    clock = SimulatedClock()
    with pytest.raises(stream.CheckerError, match="app writes faster than the changes are replayed"):
        stream.tail_until_small_lag(Busy(), Nothing(), None, lambda: None, clock=clock)
    assert clock.time >= stream.CATCH_UP_SECONDS    # ten simulated minutes, none of them slept


def test_via_s3_with_a_transform_is_refused_before_anything_is_done(cli, endpoint, project, checklist, live):
    """ImportTable copies the export as it is: a transform would be skipped, then fail verification."""
    add_v2(project, checklist)
    (project / "shape.py").write_text("def reshape(item):\n    return {**item, 'shape': 2}\n")
    checklist["tables"]["liked_songs_v2"]["transform"] = "shape:reshape"
    checklist.write()
    refused = cli("migrate", *live, "--offline", "--yes", "--via", "s3", "--bucket", "exports")
    assert refused.exit_code == 1 and "cannot run the transform shape:reshape" in refused.stderr, refused.output
    assert "liked_songs_v2" not in dynamodb(endpoint).list_tables()["TableNames"]
    assert function_variables(endpoint)["LIKED_SONGS_TABLE"] == "liked_songs"


def test_a_rollback_before_any_migration_ran_says_there_is_nothing_to_roll_back(cli, project, checklist, live):
    """No ledger yet (nothing ever migrated here): one line, no table created, no traceback."""
    add_v2(project, checklist)
    refused = cli("migrate", "rollback", "table:liked_songs_v2", *live[:4], "--yes")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "nothing to roll back" in refused.stderr, refused.stderr
