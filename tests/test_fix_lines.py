# ruff: noqa: F811 - the fixtures of test_check are imported by name
"""Every fix line runs as printed: a corpus of breakages on a moto server; for each, `check`
fails, the fix line it prints is run by a shell exactly as printed (the AWS CLI, checker itself),
and `check` then passes. A skeleton (a value only the user knows) is asserted to say so and to
mark its placeholders; with them filled in, it runs and fixes too."""
from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from checker.local.deploy import create_entry_point

from .conftest import REGION, ROOT
from .test_check import FUNCTION, ROLE, SECRET, app, checklist, deploy, exact_policy  # noqa: F401

pytestmark = pytest.mark.slow   # servers and subprocesses: `make test-fast` leaves it out

AWS = ROOT / ".venv-awscli" / "bin" / "aws"
COMMAND = re.compile(r"(?:^|: )((?:aws|checker) .*)$")   # words first, then the command to the end


def aws_cli() -> str:
    found = str(AWS) if AWS.exists() else shutil.which("aws")
    if not found:
        pytest.skip("no AWS CLI: `make backends` installs one in .venv-awscli")
    return found


def client(endpoint, service):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def run_as_printed(line: str, cwd: Path, fill: dict) -> subprocess.CompletedProcess:
    """The line through `sh -c`, as pasted into a terminal (stdin a terminal: checker's own
    confirmation is answered y); placeholders replaced by `fill` first."""
    for placeholder, value in fill.items():
        line = line.replace(placeholder, value)
    path = os.pathsep.join([str(Path(aws_cli()).parent), str(Path(sys.executable).parent), os.environ["PATH"]])
    controller, terminal = pty.openpty()
    os.write(controller, b"y\n")
    try:
        return subprocess.run(["sh", "-c", line], cwd=cwd, env={**os.environ, "PATH": path}, stdin=terminal,
                              capture_output=True, text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)


def break_table(endpoint, checklist):
    client(endpoint, "dynamodb").delete_table(TableName="liked_songs_metadata")


def break_index(endpoint, checklist):
    client(endpoint, "dynamodb").update_table(TableName="track", GlobalSecondaryIndexUpdates=[
        {"Delete": {"IndexName": "status-id-index"}}])


def variables(endpoint) -> dict:
    return client(endpoint, "lambda").get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]


def set_variables(endpoint, values: dict):
    client(endpoint, "lambda").update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": values})


def break_binding(endpoint, checklist):
    set_variables(endpoint, {**variables(endpoint), "LIKED_SONGS_TABLE": "liked_songs-prod"})


def break_variable(endpoint, checklist):
    set_variables(endpoint, {k: v for k, v in variables(endpoint).items() if k != "DEFAULT_USER_ID"})


def without(action: str, table: str):
    def breaking(endpoint, checklist):
        client(endpoint, "iam").put_role_policy(RoleName=ROLE, PolicyName="dynamodb", PolicyDocument=json.dumps(
            exact_policy(checklist, drop=(action, table))))
    return breaking


def api_without_its_permission(kind: str):
    def breaking(endpoint, checklist):
        api = create_entry_point(endpoint, REGION, FUNCTION, kind)
        lam = client(endpoint, "lambda")
        for statement in (f"apigateway-{api}", "lambda-InvokeFunctionUrl", "lambda-InvokeFunction"):
            lam.remove_permission(FunctionName=FUNCTION, StatementId=statement)   # the URL's `*` would let it in
        checklist["entry_point"]["require"] = "api_gateway"
        checklist.write()
    return breaking


def break_function_url_permission(endpoint, checklist):
    for statement in ("lambda-InvokeFunctionUrl", "lambda-InvokeFunction"):
        client(endpoint, "lambda").remove_permission(FunctionName=FUNCTION, StatementId=statement)


def function_url_signed_only(endpoint, checklist):
    client(endpoint, "lambda").update_function_url_config(FunctionName=FUNCTION, AuthType="AWS_IAM")


def delete_item(endpoint, checklist):
    client(endpoint, "dynamodb").delete_item(TableName="user", Key={"id": {"S": "dana"}})


def remove_attribute(endpoint, checklist):
    client(endpoint, "dynamodb").update_item(TableName="user", Key={"id": {"S": "dana"}},
                                             UpdateExpression="REMOVE refreshToken")


# (what breaks, the checks to run, the failing result's id, the placeholders a skeleton has: {marked: value})
BREAKAGES = {
    "table": (break_table, "tables", "table:liked_songs_metadata", {}),
    "index": (break_index, "tables", "table:track", {}),
    "binding": (break_binding, "bindings", "bindings:LIKED_SONGS_TABLE", {}),
    "variable": (break_variable, "lambda", "lambda:env:DEFAULT_USER_ID", {"<the value of DEFAULT_USER_ID>": "dana"}),
    "role action": (without("dynamodb:DeleteItem", "liked_songs_metadata"), "iam", "iam:liked_songs_metadata", {}),
    "index action": (without("dynamodb:Query", "track"), "iam", "iam:track/index/status-id-index@external", {}),
    "rest api invoke permission": (api_without_its_permission("rest_api"), "entry_point", "entry_point", {}),
    "http api invoke permission": (api_without_its_permission("http_api"), "entry_point", "entry_point", {}),
    "function url invoke permission": (break_function_url_permission, "entry_point", "entry_point", {}),
    "function url auth": (function_url_signed_only, "entry_point", "entry_point", {}),   # public: true says NONE
    "missing item": (delete_item, "items", "item:user:dana",
                     {"<the value of refreshToken, or another type than S>": "refresh-dana"}),
    "missing attribute": (remove_attribute, "items", "item:user:dana",
                          {"<the value of refreshToken, or another type than S>": "refresh-dana"}),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_the_printed_fix_line_run_by_a_shell_fixes_what_it_names(cli, endpoint, project, checklist, breakage):
    aws_cli()
    breaking, kinds, failing, fill = BREAKAGES[breakage]
    assert cli("apply", "--endpoint-url", endpoint, "--yes").exit_code == 0
    deploy(endpoint, checklist)
    checklist["items"] = [{"table": "user", "key": {"id": "dana"}, "attributes": ["refreshToken"]}]
    checklist.write()
    client(endpoint, "dynamodb").put_item(TableName="user", Item={"id": {"S": "dana"}, "refreshToken": {"S": "r"}})
    options = ["--endpoint-url", endpoint, "--env", "dev", "--only", kinds]
    before, report = cli.json("check", *options)
    assert before.exit_code == 0, before.stdout
    breaking(endpoint, checklist)
    broken, report = cli.json("check", *options)
    result = {r["id"]: r for r in report["results"]}[failing]
    assert broken.exit_code == 1 and result["status"] == "fail", report
    fix = result["remediation"]
    line = COMMAND.search(fix)
    assert line, f"no command in the fix line: {fix}"
    if fill:
        assert fix.startswith("a skeleton: replace each <...> first") and all(p in fix for p in fill), fix
    else:
        assert "<" not in line.group(1), f"a placeholder in a fix line that is not a skeleton: {fix}"
    done = run_as_printed(line.group(1), project, fill)
    assert done.returncode == 0, (line.group(1), done.stdout, done.stderr)
    assert SECRET not in done.stdout + done.stderr   # a read-modify-write of the variables prints none of them
    after, report = cli.json("check", *options)
    assert after.exit_code == 0, (line.group(1), after.stdout)
