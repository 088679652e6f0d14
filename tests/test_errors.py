"""Bad AWS state and bad input: one clear line on stderr, exit 1, never a traceback."""
from __future__ import annotations

import json

from checker.local.dynamo_proxy import DynamoProxy


def assert_one_clear_error(result, expected_start):
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(expected_start), errors[0]
    return errors[0]


def test_no_credentials(cli, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert_one_clear_error(cli("plan"), "error: no AWS credentials found")


def test_no_region(cli, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert_one_clear_error(cli("plan"), "error: no AWS region: pass --region")


def test_unknown_profile(cli):
    assert_one_clear_error(cli("plan", "--profile", "nope"), "error: AWS profile not found: nope")


def test_unreachable_endpoint(cli):
    result = cli("plan", "--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "1")
    assert_one_clear_error(result, "error: cannot reach the AWS endpoint http://127.0.0.1:9")


def test_access_denied_names_the_action(cli, endpoint):
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("DescribeTable", "AccessDeniedException",
                   "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: dynamodb:DescribeTable")
        result = cli("plan", "--endpoint-url", proxy.url)
    line = assert_one_clear_error(result, "error: access denied for dynamodb:DescribeTable (AccessDeniedException)")
    assert "user/ci" in line


def test_throttling_after_botocore_retries(cli, endpoint):
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("DescribeTable", "ThrottlingException", "Rate exceeded")
        result = cli("plan", "--endpoint-url", proxy.url, "--max-attempts", "2")
    assert_one_clear_error(result, "error: throttled by AWS on DescribeTable after 2 attempts (ThrottlingException)")
    # botocore retried each (concurrent) DescribeTable once; checker added no retries of its own
    tables = [params["TableName"] for operation, params in proxy.calls if operation == "DescribeTable"]
    assert len(tables) == 2 * len(set(tables)) and all(tables.count(t) == 2 for t in tables)


def test_json_format_errors_are_json_on_stdout(cli, endpoint):
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("DescribeTable", "AccessDeniedException", "denied")
        result = cli("plan", "--endpoint-url", proxy.url, "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"].startswith("access denied for dynamodb:DescribeTable")


def test_invalid_spec_stops_plan_with_every_problem(cli, project):
    (project / "table_specs" / "user.json").write_text('{"TableName": "user"}')
    result = cli("plan")
    assert result.exit_code == 1
    assert "error: table_specs/user.json: $: 'AttributeDefinitions' is a required property" in result.stderr
    assert "error: table_specs/user.json: $: 'KeySchema' is a required property" in result.stderr


def test_checklist_variables_are_needed_only_where_used(cli, project, monkeypatch):
    (project / "checklist.yaml").write_text(
        "version: 1\nenvironments:\n  dev:\n    region: ${CHECKER_TEST_REGION}\n"
        "  prod:\n    base_url: ${CHECKER_TEST_PROD_URL}\n")
    assert cli("validate").exit_code == 0  # offline: a reference's syntax, never its value
    result = cli("plan", "--env", "dev")
    assert result.exit_code == 1
    assert ("error: checklist.yaml: $.environments.dev.region: environment variable CHECKER_TEST_REGION is not set"
            in result.stderr)
    assert "CHECKER_TEST_PROD_URL" not in result.stderr  # another environment's entry is not read
    monkeypatch.setenv("CHECKER_TEST_REGION", "")
    result = cli("plan", "--env", "dev")
    assert "environment variable CHECKER_TEST_REGION is set but empty" in result.stderr


def test_checklist_malformed_variable_reference(cli, project):
    (project / "checklist.yaml").write_text(
        "version: 1\nenvironments:\n  dev:\n    region: ${1REGION}\n    base_url: ${URL\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert "checklist.yaml: $.environments.dev.region: malformed ${...} reference" in result.stdout
    assert "checklist.yaml: $.environments.dev.base_url: malformed ${...} reference" in result.stdout


def test_checklist_malformed_yaml_and_unknown_table(cli, project):
    (project / "checklist.yaml").write_text("version: 1\nenvironments: [\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert "checklist.yaml: line 3 column 1: malformed YAML" in result.stdout
    (project / "checklist.yaml").write_text(
        "version: 1\nenvironments:\n  dev: {}\ntables:\n  songs:\n    point_in_time_recovery: true\n")
    result = cli("validate")
    assert "checklist.yaml: $.tables.songs: no table spec has TableName 'songs'" in result.stdout


def test_checklist_schema_problem(cli, project):
    (project / "checklist.yaml").write_text("version: 1\nenvironments:\n  dev:\n    regoin: us-east-1\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert "checklist.yaml: $.environments.dev: unknown field(s) 'regoin' (did you mean region?)" in result.stdout


def test_a_misspelt_spec_field_gets_a_did_you_mean(cli, project):
    spec = json.loads((project / "table_specs" / "user.json").read_text())
    spec["BilingMode"] = spec.pop("BillingMode", "PAY_PER_REQUEST")
    (project / "table_specs" / "user.json").write_text(json.dumps(spec))
    result = cli("validate")
    assert result.exit_code == 1
    assert "user.json: $: unknown field(s) 'BilingMode' (did you mean BillingMode?)" in result.stdout


def test_env_without_checklist(cli):
    assert_one_clear_error(cli("plan", "--env", "dev"), "error: --env dev needs a checklist")


def test_an_endpoint_without_the_pitr_apis_is_said_so_and_never_read_as_disabled(cli, project, endpoint):
    """dynalite has no DescribeContinuousBackups: apply says the endpoint lacks it (exit 1, the
    checklist's wish is not met), and plan and check name PITR as not compared instead of failing
    or planning to enable it again."""
    (project / "checklist.yaml").write_text(
        "version: 1\ndefault_env: dev\nenvironments:\n  dev:\n    region: us-east-1\n"
        "tables:\n  user:\n    point_in_time_recovery: true\n")
    with DynamoProxy(endpoint) as proxy:
        for operation in ("DescribeContinuousBackups", "UpdateContinuousBackups"):
            proxy.fail(operation, "UnknownOperationException", "", status=400)
        applied = cli("apply", "--yes", "--endpoint-url", proxy.url)
        planned, plan = cli.json("plan", "--endpoint-url", proxy.url)
        checked, check = cli.json("check", "--only", "tables", "--endpoint-url", proxy.url)
    assert applied.exit_code == 1 and "Traceback" not in applied.output, applied.output
    assert "this endpoint does not implement dynamodb:UpdateContinuousBackups (UnknownOperationException)" \
        in applied.stdout
    assert planned.exit_code == 0 and plan["changes"] == []
    assert [(c["table"], c["action"]) for c in plan["not_compared"]] == [("user", "not-compared")]
    assert "DescribeContinuousBackups" in plan["not_compared"][0]["detail"]
    user = next(r for r in check["results"] if r["id"] == "table:user")
    assert user["status"] == "warn" and checked.exit_code == 0


def test_strict_makes_a_warning_fail_the_gate(cli, project, endpoint):
    """A check that could look only in part is a warning: exit 0, unless --strict."""
    (project / "checklist.yaml").write_text(
        "version: 1\ndefault_env: dev\nenvironments:\n  dev:\n    region: us-east-1\n"
        "tables:\n  user:\n    point_in_time_recovery: true\n")
    assert cli("apply", "--yes", "--endpoint-url", endpoint).exit_code == 0
    with DynamoProxy(endpoint) as proxy:
        proxy.fail("DescribeContinuousBackups", "UnknownOperationException", "")
        lenient = cli("check", "--only", "tables", "--endpoint-url", proxy.url)
        strict = cli("check", "--only", "tables", "--endpoint-url", proxy.url, "--strict")
        strict_json, document = cli.json("check", "--only", "tables", "--endpoint-url", proxy.url, "--strict")
    assert lenient.exit_code == 0 and "WARN  table:user" in lenient.stdout
    assert strict.exit_code == 1 and "--strict: 1 warning(s) fail this run" in strict.stderr
    assert strict_json.exit_code == 1 and document["summary"]["warn"] == 1
