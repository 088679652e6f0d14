"""Several environments in one run, each in its own account: two moto servers stand for two
accounts, one healthy (dev) and one with the incident (prod: the cache tables never created)."""
from __future__ import annotations

import json
from xml.etree import ElementTree

import boto3
import pytest
import yaml

from checker.aws import AwsOptions
from checker.local.deploy import deploy_function

from .conftest import REGION, ROOT, load_spec, moto_server_running, reset_moto


@pytest.fixture(scope="module")
def second_account():
    yield from moto_server_running()


@pytest.fixture
def two_accounts(cli, project, endpoint, second_account):
    reset_moto(second_account)
    document = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    document["environments"]["dev"]["endpoint_url"] = endpoint
    document["environments"]["prod"]["endpoint_url"] = second_account
    (project / "checklist.yaml").write_text(yaml.safe_dump(document))
    assert cli("apply", "--env", "dev", "--yes").exit_code == 0
    prod = boto3.client("dynamodb", endpoint_url=second_account, region_name=REGION)
    for name in ("user", "action_history", "track"):
        prod.create_table(**dict(load_spec(name), TableName=f"{name}-prod"))
    for url, function in ((endpoint, "spotify-playlist-dev"), (second_account, "spotify-playlist-prod")):
        deploy_function(url, REGION, function, {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]},
            {"DEFAULT_USER_ID": "dana", "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "s"})
    return endpoint, second_account


def test_check_two_environments_one_table_exit_1_naming_the_failing_one(cli, two_accounts):
    result = cli("check", "--env", "dev", "--env", "prod", "--only", "tables,lambda")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["check", "dev", "prod"]
    # rows are keyed by the spec's table name: dev's liked_songs and prod's liked_songs-prod meet
    row = next(line for line in lines if line.startswith("table:liked_songs "))
    assert row.split() == ["table:liked_songs", "PASS", "FAIL"]
    assert not any(line.startswith("table:liked_songs-prod") for line in lines)
    assert "== prod ==" in result.stdout and "== dev ==" not in result.stdout
    assert "failing: prod" in result.stderr


def test_json_keyed_by_environment_and_junit_a_suite_each(cli, two_accounts):
    result, report = cli.json("check", "--all-envs", "--only", "tables")
    assert set(report["environments"]) == {"dev", "prod"}
    assert report["environments"]["dev"]["summary"]["ok"] is True
    # the two cache tables never created, and user-prod without the PITR the checklist asks for
    assert report["environments"]["prod"]["summary"]["fail"] == 3 and report["summary"]["ok"] is False
    result = cli("check", "--env", "dev", "--env", "prod", "--only", "tables", "--format", "junit")
    suites = ElementTree.fromstring(result.stdout).findall("testsuite")
    assert [s.get("name") for s in suites] == ["dev", "prod"] and suites[1].get("failures") == "3"
    cases = [(c.get("classname"), c.get("name")) for s in suites for c in s.findall("testcase")]
    assert len(cases) == len(set(cases)) and ("checker.prod.tables", "table:liked_songs") in cases


def test_plan_of_several_environments_exit_2_when_any_has_changes(cli, two_accounts):
    result = cli("plan", "--env", "dev", "--env", "prod", "--detailed-exitcode")
    assert result.exit_code == 2
    assert "== dev ==\nIn sync: 5 table(s)" in result.stdout
    assert "== prod ==\nPlan: " in result.stdout and "liked_songs-prod" in result.stdout
    _, plans = cli.json("plan", "--all-envs")
    assert plans["environments"]["dev"]["in_sync"] is True and plans["environments"]["prod"]["in_sync"] is False


def test_an_unreachable_environment_is_its_own_error_the_others_still_run(cli, project, two_accounts):
    document = yaml.safe_load((project / "checklist.yaml").read_text())
    document["environments"]["prod"]["endpoint_url"] = "http://127.0.0.1:9"
    (project / "checklist.yaml").write_text(yaml.safe_dump(document))
    result, report = cli.json("check", "--all-envs", "--only", "tables", "--max-attempts", "1")
    assert result.exit_code == 1
    assert report["environments"]["dev"]["summary"]["ok"] is True
    assert report["environments"]["prod"]["results"][0]["status"] == "error"
    assert "cannot reach" in json.dumps(report["environments"]["prod"])


def test_apply_and_bootstrap_take_exactly_one_environment(cli, two_accounts):
    for command in (["apply", "--yes"], ["bootstrap", "--yes"], ["iam-policy"]):
        result = cli(*command, "--env", "dev", "--env", "prod")
        assert result.exit_code == 1 and "exactly one environment" in result.stderr
    assert cli("apply", "--all-envs").exit_code == 1  # not an option of apply


def test_an_environment_role_is_assumed_and_its_credentials_used(endpoint):
    options = AwsOptions(region=REGION, endpoint_url=endpoint, role_arn="arn:aws:iam::123456789012:role/deployer")
    credentials = options.session().get_credentials()
    assert credentials.access_key != "testing" and credentials.token
    assert AwsOptions(region=REGION).session().get_credentials().access_key == "testing"
    # botocore refreshes them before they expire: a migration may run for longer than an hour
    from botocore.credentials import RefreshableCredentials
    assert isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed() is False
    credentials._expiry_time = credentials._expiry_time.replace(year=2000)   # as if the hour had passed
    assert credentials.refresh_needed()
    assert credentials.get_frozen_credentials().token and not credentials.refresh_needed()   # fetched again


def test_role_arn_and_profile_are_validated(cli, project):
    document = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    document["environments"]["prod"]["role_arn"] = "not-an-arn"
    (project / "checklist.yaml").write_text(yaml.safe_dump(document))
    result = cli("validate")
    assert result.exit_code == 1 and "$.environments.prod.role_arn" in result.stdout


def test_wait_of_several_environments_in_json_is_one_document(cli, two_accounts):
    result, report = cli.json("wait", "--env", "dev", "--env", "prod", "--timeout", "0")
    assert report["environments"]["dev"]["ready"] is True
    assert report["environments"]["prod"]["ready"] is False  # the cache tables were never created
    assert result.exit_code == 1 and "not ready in: prod" in result.stderr


def verified_in_prod_only(second_account) -> None:
    """prod's ledger says table:liked_songs_v2 is verified; dev has no ledger at all."""
    from checker.migrate.ledger import Ledger, ledger_name
    ledger = Ledger(boto3.client("dynamodb", endpoint_url=second_account, region_name=REGION),
                    ledger_name("", "-prod"))
    ledger.ensure()
    ledger.put("table:liked_songs_v2", status="verified")


def declare_v2(project) -> None:
    spec = load_spec("liked_songs")
    spec["TableName"] = "liked_songs_v2"
    (project / "table_specs" / "liked_songs_v2.json").write_text(json.dumps(spec))
    document = yaml.safe_load((project / "checklist.yaml").read_text())
    document.setdefault("tables", {})["liked_songs_v2"] = {"migrate_from": "liked_songs"}
    (project / "checklist.yaml").write_text(yaml.safe_dump(document))


@pytest.mark.parametrize("where", ["group", "subcommand"])
def test_migrate_status_and_rollback_act_on_the_environment_named(cli, project, two_accounts, where):
    """`checker migrate --env prod status` read dev (the group's options were dropped)."""
    declare_v2(project)
    verified_in_prod_only(two_accounts[1])

    def migrate(subcommand: str, *rest: str):
        env = ("--env", "prod")
        return cli("migrate", *env, subcommand, *rest) if where == "group" else cli("migrate", subcommand, *rest, *env)
    status = migrate("status", "--format", "json")
    report = json.loads(status.stdout)
    assert {m["id"]: m["status"] for m in report["migrations"]}["table:liked_songs_v2"] == "verified", status.output
    rolled = migrate("rollback", "table:liked_songs_v2", "--yes")
    assert rolled.exit_code == 1 and "(ledger: verified)" in rolled.stderr, rolled.output
    # dev has no ledger: nothing there was read as prod's or written
    dev = boto3.client("dynamodb", endpoint_url=two_accounts[0], region_name=REGION)
    assert "checker_migrations" not in dev.list_tables()["TableNames"]


def test_migrate_options_given_twice_must_agree(cli, project, two_accounts):
    result = cli("migrate", "--env", "prod", "status", "--env", "dev")
    assert result.exit_code == 1 and "--env" in result.stderr and "prod" in result.stderr, result.output


def test_migrate_env_is_heard_without_a_default_env(cli, project, two_accounts):
    document = yaml.safe_load((project / "checklist.yaml").read_text())
    document.pop("default_env", None)
    (project / "checklist.yaml").write_text(yaml.safe_dump(document))
    result = cli("migrate", "--env", "prod", "status")
    assert "pass --env" not in result.stderr and result.exit_code in (0, 2), result.output
