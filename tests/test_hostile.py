"""Bad input, as a hostile user gives it: every case ends with exit 1, an `error:` line or a problem
naming the file or option, no traceback, in bounded time, and no planted secret in any output.

The classes matter more than the examples: files that are not documents (FIFOs, devices, huge,
not UTF-8, nested or aliased without end), values of the wrong type, names DynamoDB rejects,
values that would make a wait endless, options click rejects, and secrets in every place a user
puts one."""
from __future__ import annotations

import json
import os
from xml.etree import ElementTree

import pytest
import yaml

from .conftest import ROOT, load_spec

pytestmark = pytest.mark.timeout(60)
SECRET = "PLANTED-hostile-Zq81xK"


def refused(result, *named):
    """Exit 1, no traceback, and each of `named` said somewhere in the output."""
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "Traceback" not in output
    for text in named:
        assert text in output, f"{text!r} not in {output[:2000]!r}"
    assert len(output) < 50_000  # nothing echoed itself whole
    return output


def write_spec(project, text, name="user"):
    path = project / "table_specs" / f"{name}.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def spec_with(change):
    spec = load_spec("user")
    change(spec)
    return json.dumps(spec)


def nested(depth):
    return "[" * depth + "]" * depth


# -- table specs ------------------------------------------------------------------------------

SPEC_CASES = {
    "nested thousands deep": (nested(5000), "nested too deeply"),
    "key attribute name is a list": (spec_with(lambda s: s["KeySchema"][0].update(AttributeName=["id"])),
                                     "$.KeySchema[0].AttributeName"),
    "key attribute name is an object": (spec_with(lambda s: s["KeySchema"][0].update(AttributeName={"a": 1})),
                                        "$.KeySchema[0].AttributeName"),
    "definition name is a list": (spec_with(lambda s: s["AttributeDefinitions"][0].update(AttributeName=[1])),
                                  "$.AttributeDefinitions[0].AttributeName"),
    "capacity 1.0": (spec_with(lambda s: s["ProvisionedThroughput"].update(ReadCapacityUnits=1.0)),
                     "ProvisionedThroughput.ReadCapacityUnits"),
    "capacity 1e30": (spec_with(lambda s: s["ProvisionedThroughput"].update(ReadCapacityUnits=1e30)),
                      "ProvisionedThroughput.ReadCapacityUnits"),
    "capacity 10**30": (spec_with(lambda s: s["ProvisionedThroughput"].update(ReadCapacityUnits=10**30)),
                        "ProvisionedThroughput.ReadCapacityUnits"),
    "capacity true": (spec_with(lambda s: s["ProvisionedThroughput"].update(WriteCapacityUnits=True)),
                      "ProvisionedThroughput.WriteCapacityUnits"),
    "capacity 0": (spec_with(lambda s: s["ProvisionedThroughput"].update(WriteCapacityUnits=0)),
                   "ProvisionedThroughput.WriteCapacityUnits"),
    "table name with a newline": (spec_with(lambda s: s.update(TableName="user\n")), "$.TableName"),
    "table name too short": (spec_with(lambda s: s.update(TableName="u")), "$.TableName"),
    "table name with a space": (spec_with(lambda s: s.update(TableName="my user")), "$.TableName"),
    "table name null": (spec_with(lambda s: s.update(TableName=None)), "$.TableName"),
    "duplicate key": ('{"TableName": "user", "TableName": "other"}', "given twice"),
    "NaN": ('{"TableName": NaN}', "NaN is not a number"),
    "Infinity": ('{"ProvisionedThroughput": {"ReadCapacityUnits": Infinity}}', "Infinity is not a number"),
    "not UTF-8": (b'{"TableName": "\xff\xfe"}', "not UTF-8"),
    "empty file": ("", "malformed JSON"),
    "a list": ("[]", "$"),
    "a string": ('"user"', "$"),
    "two megabytes": ('{"TableName": "' + "x" * 2_000_000 + '"}', "larger than"),
    "unknown field": (spec_with(lambda s: s.update(Colour="blue")), "unknown field(s) 'Colour'"),
    "unknown attribute type": (spec_with(lambda s: s["AttributeDefinitions"][0].update(AttributeType="X")),
                               "expected one of"),
    "no keys": (spec_with(lambda s: s.update(KeySchema=[])), "$.KeySchema"),
    "three keys": (spec_with(lambda s: s.update(KeySchema=s["KeySchema"] * 3)), "$.KeySchema"),
    "billing mode lowercase": (spec_with(lambda s: s.update(BillingMode="provisioned")), "$.BillingMode"),
    "trailing garbage": ('{"TableName": "user"} {}', "malformed JSON"),
    "a 40 MB-like array is not echoed": (spec_with(lambda s: s.update(AttributeDefinitions=[[0] * 100_000])),
                                         "$.AttributeDefinitions"),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_bad_spec(cli, project, case):
    text, named = SPEC_CASES[case]
    write_spec(project, text)
    refused(cli("validate"), "table_specs/user.json", named)
    refused(cli("plan", "--endpoint-url", "http://127.0.0.1:9"), "table_specs/user.json")


def test_index_names_of_the_wrong_type_or_form(cli, project):
    for bad in (["a", "b"], {"x": 1}, "idx\n", "a"):
        write_spec(project, spec_with(lambda s, bad=bad: s.update(GlobalSecondaryIndexes=[{
            "IndexName": bad, "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}])))
        refused(cli("validate"), "$.GlobalSecondaryIndexes[0].IndexName")


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_spec_that_is_not_a_regular_file(cli, project, kind):
    path = project / "table_specs" / "track.json"
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.symlink("/dev/zero", path)
    else:
        path.mkdir()
    refused(cli("validate"), "table_specs/track.json")


# -- the checklist ----------------------------------------------------------------------------

def checklist_with(change=None):
    document = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    if change:
        change(document)
    return yaml.safe_dump(document)


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))

CHECKLIST_CASES = {
    "nested thousands deep": ("version: 1\nx: " + nested(5000) + "\n", "nested too deeply"),
    "alias bomb": (ALIAS_BOMB, "more than 200000 values"),
    "a hundred and fifty aliases": ("version: 1\nx: &x 1\ny: [" + ", ".join(["*x"] * 150) + "]\n", "YAML aliases"),
    "environment named 1": ("version: 1\nenvironments:\n  1: {region: us-east-1}\n", "must be a string"),
    "duplicate key": ("version: 1\nversion: 1\nenvironments: {dev: {}}\n", "given twice"),
    "endpoint URL http://[::1": (checklist_with(lambda d: d["endpoints"].append({"name": "v6", "url": "http://[::1"})),
                                 "$.endpoints[2].url"),
    "endpoint URL ftp": (checklist_with(lambda d: d["endpoints"].append({"name": "f", "url": "ftp://x/y"})),
                         "$.endpoints[2].url"),
    "remote $ref": (checklist_with(lambda d: d["endpoints"][0].update(
        schema={"$ref": "https://example.invalid/schema.json"})), "only local references"),
    "invalid schema": (checklist_with(lambda d: d["endpoints"][0].update(schema={"type": "nothing"})),
                       "not a valid JSON Schema"),
    "prefix with a space": (checklist_with(lambda d: d["environments"]["dev"].update(table_prefix="my app")),
                            "$.environments.dev.table_prefix"),
    "suffix making a name too long": (checklist_with(lambda d: d["environments"]["prod"].update(
        table_suffix="-" + "x" * 260)), "$.environments.prod"),
    "timeout .nan": ("version: 1\nenvironments: {dev: {}}\nendpoints:\n  - {name: x, url: 'http://a/', timeout: .nan}\n",
                     "nan is not a number"),
    "retry_delay .inf": ("version: 1\nenvironments: {dev: {}}\nendpoints:\n  - {name: x, url: 'http://a/', "
                         "retry_delay: .inf}\n", "inf is not a number"),
    "version 2": (checklist_with(lambda d: d.update(version=2)), "$.version"),
    "unknown section": (checklist_with(lambda d: d.update(colour="blue")), "unknown field(s) 'colour'"),
    "a list": ("- 1\n- 2\n", "$"),
    "binding to an unknown table": (checklist_with(lambda d: d["lambda"]["bindings"].update(X_TABLE="nope")),
                                    "$.lambda.bindings.X_TABLE"),
    "malformed reference": (checklist_with(lambda d: d["environments"]["dev"].update(base_url="${URL")),
                            "malformed ${...} reference"),
    "not UTF-8": (b"version: 1\nenvironments: {dev: {region: \"\xff\"}}\n", "not UTF-8"),
    "two megabytes": ("version: 1\nx: '" + "y" * 2_000_000 + "'\n", "larger than"),
    "environment name with a newline": ('version: 1\nenvironments:\n  "dev\\n": {}\n', "$.environments"),
    "negative retries": (checklist_with(lambda d: d["endpoints"][0].update(retries=-1)), "$.endpoints[0].retries"),
    "environment endpoint_url not a URL": (checklist_with(lambda d: d["environments"]["dev"].update(
        endpoint_url="not a url")), "$.environments.dev.endpoint_url"),
    "environment role_arn not an ARN": (checklist_with(lambda d: d["environments"]["dev"].update(
        role_arn="arn:aws:iam::1:role/x")), "$.environments.dev.role_arn"),
}


@pytest.mark.parametrize("case", sorted(CHECKLIST_CASES))
def test_bad_checklist(cli, project, case):
    text, named = CHECKLIST_CASES[case]
    path = project / "checklist.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(cli("validate"), "checklist.yaml", named)


def test_a_checklist_that_is_a_fifo(cli, project):
    os.mkfifo(project / "checklist.yaml")
    refused(cli("validate"), "checklist.yaml: $: not a regular file")
    refused(cli("check", "--env", "dev", "--format", "junit"), "not a regular file")


# -- options ----------------------------------------------------------------------------------

OPTION_CASES = {
    "--since of 400 digits": (["check", "--since", "9" * 400], "--since"),
    "--since yesterday": (["smoke", "--since", "yesterday"], "--since"),
    "--timeout nan": (["wait", "--timeout", "nan"], "--timeout"),
    "--timeout -1": (["wait", "--timeout", "-1"], "--timeout"),
    "--timeout inf": (["apply", "--timeout", "inf", "--yes"], "--timeout"),
    "--settle nan": (["smoke", "--settle", "nan"], "--settle"),
    "--max-attempts 0": (["plan", "--max-attempts", "0"], "--max-attempts"),
    "--retry-mode bogus": (["plan", "--retry-mode", "bogus"], "--retry-mode"),
    "--format xml": (["plan", "--format", "xml"], "--format"),
    "a misspelt option": (["plan", "--detailed-exit-code"], "--detailed-exit-code"),
    "an unknown command": (["deploy"], "deploy"),
    "--table-prefix with a space": (["plan", "--table-prefix", "my app"], "--table-prefix"),
    "--table-suffix making names too long": (["plan", "--table-suffix", "x" * 260], "--table-prefix/--table-suffix"),
    "--env unknown": (["plan", "--env", "staging"], "no environment 'staging'"),
    "--specs missing": (["plan", "--specs", "nowhere"], "nowhere: spec directory not found"),
    "--checklist missing": (["validate", "--checklist", "nope.yaml"], "nope.yaml: checklist not found"),
    "--only bogus": (["check", "--only", "bogus"], "unknown check kind(s) bogus"),
    "--concurrency 0": (["apply", "--concurrency", "0"], "--concurrency"),
    "--endpoint-url not a URL": (["plan", "--endpoint-url", "http://[::1"], "error:"),
    "local --port 70000": (["local", "--port", "70000"], "--port"),
    "--all-envs with --env": (["check", "--all-envs", "--env", "dev"], "--all-envs and --env"),
    "export without --specs": (["export"], "--specs"),
    "export --table of a bad name": (["export", "--specs", "out", "--table", "bad\nname", "--endpoint-url",
                                      "http://127.0.0.1:9"], "error:"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_bad_option(cli, project, case):
    (project / "checklist.yaml").write_text((ROOT / "checklist.yaml").read_text())
    args, named = OPTION_CASES[case]
    refused(cli(*args), named)


def test_usage_errors_of_checks_commands_still_give_a_junit_result(cli, project):
    result = cli("smoke", "--format", "junit", "--bogus")
    refused(result, "--bogus")
    (case,) = ElementTree.fromstring(result.stdout).iter("testcase")
    assert case.find("error") is not None


def test_plan_detailed_exitcode_never_mistakes_a_usage_error_for_changes(cli):
    assert cli("plan", "--detailed-exitcode", "--nope").exit_code == 1


def test_a_password_in_endpoint_url_is_never_shown(cli, project):
    url = f"http://admin:{SECRET}@127.0.0.1:9"
    for args in (["plan"], ["check", "--only", "tables"], ["check", "--only", "tables", "--format", "json"]):
        result = cli(*args, "--endpoint-url", url, "--max-attempts", "1")
        output = refused(result)
        assert SECRET not in output and "admin" not in output
    result = cli("check", "--only", "tables", "--endpoint-url", url, "--max-attempts", "1")
    assert "cannot reach the AWS endpoint" in result.stdout


# -- an endpoint that is not AWS ----------------------------------------------------------------

@pytest.fixture
def not_aws():
    """An HTTP server answering 200 to everything, with HTML or an empty JSON object."""
    from checker.local.http import LocalServer, send

    answers = {"body": b"<html>hello</html>", "type": "text/html"}

    def route(handler, method):
        handler.body()
        send(handler, 200, answers["body"], {}, answers["type"])
    server = LocalServer(route).start()
    yield server, answers
    server.stop()


def test_an_endpoint_that_is_not_aws_never_makes_a_check_pass(cli, project, not_aws):
    server, answers = not_aws
    (project / "checklist.yaml").write_text((ROOT / "checklist.yaml").read_text())
    for body, content_type in ((b"<html>hello</html>", "text/html"), (b"{}", "application/x-amz-json-1.1"),
                               (b"{}", "application/json")):
        answers.update(body=body, type=content_type)
        result, report = cli.json("check", "--endpoint-url", server.url, "--env", "dev", "--max-attempts", "1",
                                  "--only", "tables,lambda,logs")
        refused(result)
        assert [r for r in report["results"] if r["status"] == "pass"] == [], report["results"]
        refused(cli("plan", "--endpoint-url", server.url, "--max-attempts", "1"))


# -- secrets ----------------------------------------------------------------------------------

@pytest.fixture
def echo_server():
    """Answers 500 with everything it was sent (path, query, headers), as a careless app would."""
    from checker.local.http import LocalServer, send

    def route(handler, method):
        handler.body()
        echoed = json.dumps({"path": handler.path, "headers": dict(handler.headers)})
        send(handler, int(handler.headers.get("X-Status", "500")), ("x" * int(handler.headers.get("X-Pad", "0"))
                                                                   + echoed + "\x00\x1b\x07").encode())
    server = LocalServer(route).start()
    yield server
    server.stop()


def smoke_against(cli, project, endpoints, *extra):
    document = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    document["endpoints"] = endpoints
    (project / "checklist.yaml").write_text(yaml.safe_dump(document))
    outputs = []
    for output_format in ("text", "json", "junit"):
        result = cli("smoke", "--env", "dev", "--only", "endpoints", "--format", output_format, *extra)
        outputs.append(refused(result))
        if output_format == "junit":
            ElementTree.fromstring(result.stdout)  # well-formed whatever the app answered
    return "\n".join(outputs)


@pytest.mark.parametrize("token", [SECRET + "\n", SECRET + "\r\n", "  " + SECRET + "\t"])
def test_a_ci_secret_with_a_line_end_is_sent_trimmed_and_never_shown(cli, project, echo_server, monkeypatch, token):
    monkeypatch.setenv("CHECKER_TEST_API_TOKEN", token)
    output = smoke_against(cli, project, [{"name": "e", "url": f"{echo_server.url}/x", "retries": 0,
                                           "headers": {"Authorization": "Bearer ${CHECKER_TEST_API_TOKEN}"}}])
    assert SECRET not in output and "HTTP 500" in output


def test_a_line_break_inside_a_header_value_is_an_error_result(cli, project, echo_server, monkeypatch):
    monkeypatch.setenv("CHECKER_TEST_API_TOKEN", f"{SECRET}\nX-Injected: 1")
    output = smoke_against(cli, project, [{"name": "e", "url": f"{echo_server.url}/x", "retries": 0,
                                           "headers": {"X-Api-Key": "${CHECKER_TEST_API_TOKEN}"}}])
    assert "holds a line break" in output and SECRET not in output   # refused when the checklist loads


@pytest.mark.parametrize("where", ["user name", "password", "query", "percent-encoded query", "cut by the excerpt"])
def test_secrets_in_urls_are_masked_in_every_encoding(cli, project, echo_server, where):
    host = echo_server.url.removeprefix("http://")
    secret = SECRET + " +/&="  # characters that change under percent-encoding
    quoted = __import__("urllib.parse").parse.quote(secret, safe="")
    url, headers = {
        "user name": (f"http://{quoted}@{host}/p", {}),
        "password": (f"http://user:{quoted}@{host}/p", {}),
        "query": (f"{echo_server.url}/p?api_key={SECRET}", {}),
        "percent-encoded query": (f"{echo_server.url}/p?token={quoted}", {}),
        "cut by the excerpt": (f"{echo_server.url}/p?session={SECRET}", {"X-Pad": "180"}),
    }[where]
    output = smoke_against(cli, project, [{"name": "e", "url": url, "retries": 0, "headers": headers}])
    for form in (SECRET, quoted, SECRET[:7]):
        assert form not in output, (where, form)


def test_a_token_in_a_log_sample_is_masked(cli, endpoint, project, monkeypatch):
    import boto3

    from checker.local.deploy import deploy_function
    monkeypatch.setenv("CHECKER_TEST_API_TOKEN", SECRET)
    document = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    document["endpoints"][0]["headers"] = {"Authorization": "Bearer ${CHECKER_TEST_API_TOKEN}"}
    (project / "checklist.yaml").write_text(yaml.safe_dump(document))
    deploy_function(endpoint, "us-east-1", "spotify-playlist-dev", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]}, {})
    logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
    logs.create_log_group(logGroupName="/aws/lambda/spotify-playlist-dev")
    logs.create_log_stream(logGroupName="/aws/lambda/spotify-playlist-dev", logStreamName="s")
    import time
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/aws/lambda/spotify-playlist-dev", logStreamName="s", logEvents=[
        {"timestamp": now, "message": f"ERROR request with Authorization Bearer {SECRET}"},
        {"timestamp": now + 1, "message": json.dumps({"level": "ERROR", "refreshToken": "rt-PLANTED-987654"})}])
    for output_format in ("text", "json", "junit"):
        result = cli("check", "--endpoint-url", endpoint, "--env", "dev", "--only", "logs", "--since", "5m",
                     "--format", output_format)
        output = refused(result, "ERROR")
        assert SECRET not in output and "rt-PLANTED-987654" not in output


def test_the_runtime_logs_no_secret_at_debug(fake_spotify, capsys, monkeypatch):
    """LOG_LEVEL=DEBUG: botocore would print the GetItem answer (the refresh token) and the
    signed headers (the session token); they stay at WARNING."""
    import logging

    import boto3
    from moto import mock_aws

    from spotify_playlist import handler

    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "PLANTED-session-token-55")
    fake_spotify.add_user("dana", 3)
    fake_spotify.refresh_tokens["PLANTED-refresh-77"] = "dana"
    environ = {"DEFAULT_USER_ID": "dana", "SPOTIFY_API_BASE_URL": fake_spotify.api_base,
               "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url, "SPOTIFY_CLIENT_ID": "id",
               "SPOTIFY_CLIENT_SECRET": "PLANTED-client-secret-33"}
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        handler.configure_logging()
        with mock_aws():
            resource = boto3.resource("dynamodb", region_name="us-east-1")
            for name in ("user", "liked_songs", "liked_songs_metadata"):
                resource.meta.client.create_table(**load_spec(name))
            resource.Table("user").put_item(Item={"id": "dana", "refreshToken": "PLANTED-refresh-77"})
            for action in ("sync-liked-songs", "health"):
                answer = handler.handle({"queryStringParameters": {"action": action}}, None, environ=environ,
                                        resource_factory=lambda: resource)
                assert answer["statusCode"] == 200, answer
    finally:
        root.handlers, root.level = saved
    printed = capsys.readouterr()
    logged = printed.out + printed.err
    assert '"level": "DEBUG"' in logged or '"level": "INFO"' in logged
    for secret in ("PLANTED-refresh-77", "PLANTED-session-token-55", "PLANTED-client-secret-33", "access-dana"):
        assert secret not in logged, secret


@pytest.mark.parametrize("event", [None, "a string", 42, [], {"queryStringParameters": "action=health"},
                                   {"queryStringParameters": ["action"]}, {"requestContext": "x"},
                                   {"queryStringParameters": {"action": "x" * 1_000_000}}])
def test_the_handler_answers_any_event(event, caplog):
    from spotify_playlist.handler import handle
    answer = handle(event, None, environ={"DEFAULT_USER_ID": "dana"})
    assert answer["statusCode"] == 400
    assert len(answer["body"]) < 1000 and all(len(r.getMessage()) < 2000 for r in caplog.records)


@pytest.mark.parametrize("output_format", ["text", "json", "junit"])
def test_a_lone_surrogate_in_a_name_is_written_escaped_never_a_crash(project, output_format):
    """YAML's "\\ud800" is a str no UTF-8 stream can carry: the command's own streams escape it."""
    import os
    import subprocess
    import sys
    (project / "checklist.yaml").write_text('version: 1\nenvironments: {dev: {}}\nendpoints:\n'
                                            '  - {name: "a\\ud800b", url: "http://127.0.0.1:9/", retries: 0}\n')
    process = subprocess.run([os.path.join(os.path.dirname(sys.executable), "checker"), "check", "--env", "dev",
                              "--only", "endpoints", "--format", output_format], cwd=project, capture_output=True,
                             text=True, errors="replace")
    assert process.returncode == 1 and "a bug in checker" not in process.stderr, process.stderr
    assert "a\\ud800b" in process.stdout
