"""The switch of a table migration on backends that implement what moto leaves out: ministack
answers a stale RevisionId with PreconditionFailedException and reports LastUpdateStatus
InProgress, then Successful (moto gives no RevisionId and is Successful at once: the switch says
it was unguarded)."""
from __future__ import annotations

import json

import boto3
import pytest
import yaml

from .backends import songs_function, songs_spec, start_backend
from .conftest import REGION, Cli

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out

FUNCTION = "songs-app"


@pytest.fixture(scope="module")
def ministack(tmp_path_factory):
    yield from start_backend("ministack", tmp_path_factory.mktemp("ministack"))


@pytest.fixture
def songs_app(tmp_path, ministack):
    """songs (60 items) bound to a function whose role may use songs and songs_v2; the checklist
    migrates songs_v2 from songs. Table names are unique per test: the backend lives for the module."""
    suffix = f"-{tmp_path.name[-8:].replace('_', '-')}"
    (tmp_path / "table_specs").mkdir()
    (tmp_path / "table_specs" / "songs.json").write_text(json.dumps(songs_spec("songs")))
    (tmp_path / "table_specs" / "songs_v2.json").write_text(json.dumps(songs_spec("songs_v2", lsi=True)))
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev",
        "environments": {"dev": {"region": REGION, "endpoint_url": ministack.url, "table_suffix": suffix,
                                 "function_name": FUNCTION + suffix}},
        "tables": {"songs_v2": {"migrate_from": "songs"}},
        "lambda": {"bindings": {"SONGS_TABLE": "songs_v2"}}}))
    dynamodb = boto3.client("dynamodb", endpoint_url=ministack.url, region_name=REGION)
    dynamodb.create_table(**dict(songs_spec("songs"), TableName=f"songs{suffix}"))
    dynamodb.get_waiter("table_exists").wait(TableName=f"songs{suffix}", WaiterConfig={"Delay": 0.2})
    for n in range(60):
        dynamodb.put_item(TableName=f"songs{suffix}", Item={"userId": {"S": "u"}, "trackId": {"S": f"t{n:03d}"},
                                                            "addedAt": {"N": str(n)}})
    lam = songs_function(ministack.url, suffix, FUNCTION + suffix,
                         {"SONGS_TABLE": f"songs{suffix}", "API_KEY": "PLANTED-key-77"})
    return tmp_path, suffix, lam


def variables(lam, name):
    return lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]


def test_a_configuration_changed_under_the_switch_is_refused_and_kept(songs_app, monkeypatch):
    project, suffix, lam = songs_app
    import checker.migrate.switch as switch
    sent = switch.call

    def someone_deploys_meanwhile(client, operation, *args, **kwargs):
        if operation == "UpdateFunctionConfiguration":   # after checker read the configuration, before its update
            current = variables(lam, FUNCTION + suffix)
            lam.update_function_configuration(FunctionName=FUNCTION + suffix,
                                              Environment={"Variables": {**current, "DEPLOYED": "yes"}})
        return sent(client, operation, *args, **kwargs)
    monkeypatch.setattr(switch, "call", someone_deploys_meanwhile)
    refused = Cli(project)("migrate", "--offline", "--yes")
    assert refused.exit_code == 1 and "configuration changed while checker switched it" in refused.stderr, refused.output
    after = variables(lam, FUNCTION + suffix)
    assert after["SONGS_TABLE"] == f"songs{suffix}" and after["DEPLOYED"] == "yes"   # theirs kept, nothing switched
    assert "PLANTED-key-77" not in refused.output


def test_the_switch_waits_for_the_update_to_succeed_and_is_guarded(songs_app):
    project, suffix, lam = songs_app
    done = Cli(project)("migrate", "--offline", "--yes")
    assert done.exit_code == 0, done.output
    assert variables(lam, FUNCTION + suffix)["SONGS_TABLE"] == f"songs_v2{suffix}"
    assert lam.get_function_configuration(FunctionName=FUNCTION + suffix)["LastUpdateStatus"] == "Successful"
    assert "RevisionId" not in done.output and "LastUpdateStatus" not in done.output   # guarded, its end seen
    dynamodb = boto3.client("dynamodb", endpoint_url=lam.meta.endpoint_url, region_name=REGION)
    assert dynamodb.scan(TableName=f"songs_v2{suffix}", Select="COUNT")["Count"] == 60
    assert dynamodb.scan(TableName=f"songs{suffix}", Select="COUNT")["Count"] == 60


def test_the_switch_refuses_a_role_that_may_not_query_the_new_tables_index(songs_app):
    """The role may Query both tables but no index: the new table's LSI is what the app will
    Query after the switch (AccessDenied on AWS): refused, naming the index, the binding kept."""
    project, suffix, lam = songs_app
    iam = boto3.client("iam", endpoint_url=lam.meta.endpoint_url, region_name=REGION)
    tables = [f"arn:aws:dynamodb:*:*:table/{name}{suffix}" for name in ("songs", "songs_v2")]
    iam.put_role_policy(RoleName=f"role{suffix}", PolicyName="tables", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": tables}]}))
    refused = Cli(project)("migrate", "--offline", "--yes")
    assert refused.exit_code == 1 and f"songs_v2{suffix}/index/by-added" in refused.stderr, refused.output
    assert "dynamodb:Query" in refused.stderr and "put-role-policy" in refused.stderr
    assert variables(lam, FUNCTION + suffix)["SONGS_TABLE"] == f"songs{suffix}"
