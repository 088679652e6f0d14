"""`checker init`: a checklist and specs from a live function, then `checker check` passes."""
from __future__ import annotations

import json

import boto3
import yaml

from checker.local.deploy import deploy_function

from .conftest import REGION, ROOT, load_spec
from .test_check import BINDINGS, exact_policy

FUNCTION = "spotify-playlist-dev"


def test_init_from_a_live_function_then_check_passes(cli, project, endpoint):
    checklist = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    (project / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    variables = {"DEFAULT_USER_ID": "dana", "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "s3cr3t-PLANTED",
                 **BINDINGS}
    deploy_function(endpoint, REGION, FUNCTION, exact_policy(checklist), variables)
    target = project / "mine"
    result = cli("init", "--function", FUNCTION, "--endpoint-url", endpoint, "--dir", str(target))
    assert result.exit_code == 0, result.output
    assert "s3cr3t-PLANTED" not in (target / "checklist.yaml").read_text() + result.output
    document = yaml.safe_load((target / "checklist.yaml").read_text())
    assert document["lambda"]["required_env"] == sorted(variables)
    assert document["lambda"]["bindings"] == BINDINGS
    assert document["entry_point"] == {"require": "function_url", "public": True}
    # the tables its variables and its role name, not the whole account
    assert sorted(p.stem for p in (target / "table_specs").glob("*.json")) == sorted(
        ["action_history", "liked_songs", "liked_songs_metadata", "track", "user"])
    assert f"checker check --checklist {target / 'checklist.yaml'} --env dev --endpoint-url {endpoint}" in result.stdout
    assert cli("validate", "--checklist", str(target / "checklist.yaml")).exit_code == 0
    checked, report = cli.json("check", "--checklist", str(target / "checklist.yaml"), "--endpoint-url", endpoint)
    assert checked.exit_code == 0, [r for r in report["results"] if r["status"] not in ("pass", "skip")]
    again = cli("init", "--function", FUNCTION, "--endpoint-url", endpoint, "--dir", str(target))
    assert again.exit_code == 1 and "exists; pass --force" in again.stderr


def test_init_names_wildcard_grants_and_skips_unrelated_tables(cli, project, endpoint):
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    dynamodb.create_table(**load_spec("user"))
    dynamodb.create_table(**dict(load_spec("track"), TableName="someone-elses"))
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": f"arn:aws:dynamodb:{REGION}:123456789012:table/user"},
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    deploy_function(endpoint, REGION, "worker", policy, {"TABLE": "user"}, function_url=False)
    result = cli("init", "--function", "worker", "--endpoint-url", endpoint, "--dir", str(project / "w"))
    assert result.exit_code == 0, result.output
    text = (project / "w" / "checklist.yaml").read_text()
    assert "# TO FIX BY HAND: policy dynamodb: dynamodb:* on * (a wildcard resource)" in text
    document = yaml.safe_load(text)
    assert document["iam"]["permissions"] == [{"table": "user", "actions": ["dynamodb:GetItem"], "used_by": "external"}]
    assert document["entry_point"] == {"require": "none"}
    assert [p.stem for p in (project / "w" / "table_specs").glob("*.json")] == ["user"]


def test_init_without_a_function_writes_a_starter_that_validates(cli, project):
    result = cli("init", "--dir", str(project / "new"))
    assert result.exit_code == 0
    assert cli("validate", "--checklist", str(project / "new" / "checklist.yaml")).exit_code == 0
    assert json.loads((project / "new" / "table_specs" / "example.json").read_text())["TableName"] == "example"


def test_init_where_list_tables_is_denied_finds_the_tables_by_name(cli, project, endpoint, monkeypatch):
    """A role scoped to its own tables may not ListTables: the tables the variables and the role
    name are described one by one instead."""
    import checker.live
    from checker.errors import AwsError

    def denied(client):
        raise AwsError("access denied for dynamodb:ListTables (AccessDeniedException)", "AccessDeniedException")
    checklist = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    (project / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    deploy_function(endpoint, REGION, FUNCTION, exact_policy(checklist), {"DEFAULT_USER_ID": "dana", **BINDINGS})
    monkeypatch.setattr(checker.live, "table_names", denied)
    result = cli("init", "--function", FUNCTION, "--endpoint-url", endpoint, "--dir", str(project / "mine"))
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in (project / "mine" / "table_specs").glob("*.json")) == sorted(
        ["action_history", "liked_songs", "liked_songs_metadata", "track", "user"])


def test_live_text_in_a_policy_never_becomes_checklist_keys(cli, project, endpoint):
    """A Resource holding a line break (here in a wildcard note) stays inside its comment line."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    dynamodb.create_table(**load_spec("user"))
    planted = "arn:aws:dynamodb:*:*:table/*\nendpoints: [{name: x, url: 'http://evil/'}]\nspecs: /etc"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": f"arn:aws:dynamodb:{REGION}:123456789012:table/user"},
        {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": planted}]}
    deploy_function(endpoint, REGION, "worker", policy, {"TABLE": "user"}, function_url=False)
    result = cli("init", "--function", "worker", "--endpoint-url", endpoint, "--dir", str(project / "w"))
    assert result.exit_code == 0, result.output
    document = yaml.safe_load((project / "w" / "checklist.yaml").read_text())
    assert "endpoints" not in document and "specs" not in document
    assert "\\nendpoints:" in (project / "w" / "checklist.yaml").read_text() and "\nendpoints:" not in result.stderr
