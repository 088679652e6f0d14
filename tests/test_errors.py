"""Bad AWS state and bad input: one clear line on stderr, exit 1, never a traceback."""
from __future__ import annotations

import json

import pytest

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
    assert_one_clear_error(cli("plan", "--profile", "nope"), "error: AWS profile 'nope' (from --profile) is not in")


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
    lines = result.stderr.splitlines()   # one `error:` line; every further problem indented under it
    assert lines[0] == "error: table_specs/user.json: $: 'AttributeDefinitions' is a required property"
    assert "       table_specs/user.json: $: 'KeySchema' is a required property" in lines[1:]
    assert [line for line in lines if line.startswith("error:")] == lines[:1]


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


@pytest.mark.parametrize("variable, value, expected", [
    ("AWS_PROFILE", "nosuch", "error: AWS profile 'nosuch' (from AWS_PROFILE) is not in the AWS config files"),
    ("AWS_MAX_ATTEMPTS", "abc", "error: AWS_MAX_ATTEMPTS 'abc': expected a whole number of attempts from 1 to 20"),
    ("AWS_MAX_ATTEMPTS", "0", "error: AWS_MAX_ATTEMPTS '0': expected a whole number"),
    ("AWS_RETRY_MODE", "fast", "error: AWS_RETRY_MODE 'fast': expected one of standard, adaptive, legacy"),
])
def test_aws_own_environment_variables_get_the_options_errors(cli, monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    assert_one_clear_error(cli("plan", "--endpoint-url", "http://127.0.0.1:9"), expected)


def test_a_malformed_aws_config_file_is_one_line_and_validate_does_not_need_it(cli, monkeypatch, tmp_path):
    config = tmp_path / "config"
    config.write_text("[default\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert_one_clear_error(cli("plan", "--endpoint-url", "http://127.0.0.1:9"),
                           f"error: the AWS config file {config} cannot be parsed")
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    assert cli("validate").exit_code == 0   # offline: the AWS config is never read


def test_aws_max_attempts_from_the_environment_is_used(monkeypatch):
    from checker.aws import AwsOptions
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    client = AwsOptions(region="us-east-1", endpoint_url="http://127.0.0.1:9").client("dynamodb")
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 2}
    client = AwsOptions(region="us-east-1", endpoint_url="http://127.0.0.1:9", max_attempts=3).client("dynamodb")
    assert client.meta.config.retries["total_max_attempts"] == 3


def test_an_echoed_100000_character_option_is_clipped(cli):
    result = cli("plan", "--region", "x" * 100_000, "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and len(result.stderr) < 2000
    result = cli("check", "--region", "x" * 100_000, "--format", "json", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and len(result.stdout) < 4000


def test_a_wrong_typed_aws_answer_is_one_line_naming_the_field(cli):
    """Well-formed JSON of the wrong types (KeySchema a string) is not what the API promises."""
    from checker.local.http import LocalServer, send_json

    def route(handler, method):
        handler.body()
        send_json(handler, 200, {"Table": {"TableName": "user", "TableStatus": "ACTIVE", "KeySchema": "abc",
                                           "TableArn": "arn:aws:dynamodb:us-east-1:1:table/user"}})
    server = LocalServer(route).start()
    try:
        result = cli("plan", "--endpoint-url", server.url, "--max-attempts", "1")
    finally:
        server.stop()
    assert_one_clear_error(result, "error: dynamodb:DescribeTable: ")
    assert "not what the API promises" in result.stderr


def test_one_checks_surprise_is_its_own_error_and_the_others_still_run(cli, project, endpoint, monkeypatch):
    import checker.checks.tables as tables_check

    def explode(ctx, log):
        raise TypeError("'str' object is not subscriptable")
    monkeypatch.setattr(tables_check, "check_tables", explode)
    (project / "checklist.yaml").write_text("version: 1\nenvironments: {dev: {}}\nlogs: {threshold: 0}\n")
    result, report = cli.json("check", "--env", "dev", "--endpoint-url", endpoint)
    assert result.exit_code == 1 and "Traceback" not in result.output
    by_kind = {r["kind"]: r for r in report["results"]}
    assert by_kind["tables"]["status"] == "error"
    assert by_kind["tables"]["summary"] == ("not checked: unexpected TypeError: 'str' object is not subscriptable "
                                            "(a bug in checker)")
    assert "TypeError" not in by_kind["logs"]["summary"]   # the run went on: logs was looked at on its own


@pytest.mark.parametrize("answer, problem", [
    ({"Table": {"TableName": 5}}, "Table.TableName is int, not a string"),
    ({"Table": {"KeySchema": [{"AttributeName": "id", "KeyType": ["HASH"]}]}},
     "Table.KeySchema[0].KeyType is a list, not a string"),
    ({"Table": {"GlobalSecondaryIndexes": {"IndexName": "x"}}}, "Table.GlobalSecondaryIndexes is an object, not a list"),
    ({"Table": {"ItemCount": True}}, "Table.ItemCount is a boolean, not a long"),
    ({"Table": {"TableName": "t", "KeySchema": [], "ItemCount": 3}}, None),
])
def test_answers_are_checked_against_the_apis_output_shape(answer, problem):
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    from checker.answers import answer_problem
    model = ServiceModel(create_loader().load_service_model("dynamodb", "service-2"), "dynamodb")
    assert answer_problem(answer, model.operation_model("DescribeTable")) == problem


def test_yaml_merge_keys_work_and_yaml_only_scalars_are_named(cli, project):
    (project / "checklist.yaml").write_text(
        "version: 1\nenvironments:\n  dev: &dev {region: eu-west-1, function_name: fn}\n"
        "  prod:\n    <<: *dev\n    table_suffix: -prod\n")
    assert cli("validate").exit_code == 0
    from checker.checklist import load_checklist
    prod = load_checklist(project / "checklist.yaml").environments["prod"]
    assert (prod.region, prod.function_name, prod.table_suffix) == ("eu-west-1", "fn", "-prod")
    (project / "checklist.yaml").write_text(
        "version: 1\nenvironments: {dev: {}}\nendpoints:\n  - {name: e, url: 'http://x/', body: {since: 2024-01-01}}\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert "checklist.yaml: $.endpoints[0].body.since: a YAML date is not a JSON value (checker sends JSON): quote it" \
        in result.stdout


@pytest.mark.parametrize("endpoint, message", [
    ({"headers": {"X-Name": "Zoë ☃"}}, "$.endpoints[0].headers.X-Name: holds characters an HTTP header cannot carry"),
    ({"timeout": 1.0e+300}, "$.endpoints[0].timeout: 1e+300 is greater than the maximum of 300"),
    ({"retry_delay": 100000}, "$.endpoints[0].retry_delay: 100000 is greater than the maximum of 300"),
    ({"retries": 21}, "$.endpoints[0].retries: 21 is greater than the maximum of 20"),
])
def test_validate_refuses_what_cannot_be_sent(cli, project, endpoint, message):
    import yaml
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "environments": {"dev": {}}, "endpoints": [{"name": "e", "url": "http://x/", **endpoint}]},
        allow_unicode=True))
    result = cli("validate")
    assert result.exit_code == 1 and message in result.stdout, result.stdout


@pytest.mark.parametrize("body, found", [
    ("[" * 100_000 + "]" * 100_000, "body nested deeper than 200 levels"),
    ('{"status": "bad"}\nPASS  table:liked_songs: forged\n25 checks: 25 passed', "body is not JSON"),
])
def test_a_hostile_answer_is_one_result_and_forges_no_line(cli, project, body, found):
    import yaml

    from checker.local.http import LocalServer, send

    def route(handler, method):
        send(handler, 200, body.encode(), {}, "application/json")
    server = LocalServer(route).start()
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "environments": {"dev": {"base_url": server.url}}, "entry_point": {"require": "none"},
        "endpoints": [{"name": "e", "path": "/", "retries": 0, "schema": {"type": "object"}}]}))
    try:
        result = cli("check", "--env", "dev", "--only", "endpoints")
    finally:
        server.stop()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert found in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("PASS")]
    assert result.stdout.splitlines()[-1] == "1 checks: 0 passed, 0 warnings, 1 failed, 0 errors, 0 skipped"


@pytest.mark.parametrize("path, message", [
    ("/../../admin/delete-all", "$.endpoints[0].path: '/../../admin/delete-all' has a '..' segment"),
    ("/a/%2e%2e/b", "has a '..' segment, which would leave the base URL's path"),
    ("/./x", "has a '.' segment"),
    ("/health?verbose=1", "$.endpoints[0].path: '/health?verbose=1' holds ?: put query parameters under query:"),
])
def test_validate_refuses_a_path_that_leaves_the_base_url_or_holds_a_query(cli, project, path, message):
    import yaml
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "environments": {"dev": {}}, "endpoints": [{"name": "e", "path": path}]}))
    result = cli("validate")
    assert result.exit_code == 1 and message in result.stdout, result.stdout


def test_validate_refuses_a_required_items_key_dynamodb_cannot_hold_without_echoing_it(cli, project):
    import yaml
    key = "k" * 100_000
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "environments": {"dev": {}}, "items": [{"table": "user", "key": {"id": key}}]}))
    result = cli("validate")
    assert result.exit_code == 1
    assert "$.items[0].key.id: is 100,000 bytes; a DynamoDB partition key holds at most 2,048" in result.stdout
    assert key[:3000] not in result.output
