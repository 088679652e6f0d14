"""`checker local` runs a user's handler as Lambda does: execution environments of their own
(a process each), the function's Timeout, a 502 for a handler that exits, loops, or answers
what Lambda would not carry, only that invocation failing, and nothing left running after."""
from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request

import boto3
import pytest

from checker.errors import CheckerError
from checker.local.app_server import AppServer
from checker.local.apps import load_app
from checker.local.deploy import deploy_function

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out

HANDLER = '''
import datetime, os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)      # a handler that ignores stop signals
signal.signal(signal.SIGINT, signal.SIG_IGN)

def handler(event, context):
    path = event.get("rawPath") or "/"
    if path == "/exit":
        sys.exit(3)
    if path == "/loop":
        while True:
            pass
    if path == "/when":
        return {"statusCode": 200, "body": {"when": datetime.datetime.now()}}
    if path == "/big":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    if path == "/fork":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        return {"statusCode": 200, "body": str(child.pid)}
    return {"statusCode": 200, "body": "pid " + str(os.getpid())}
'''


def get(url: str, timeout: float = 30) -> tuple:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def log_messages(endpoint: str, group: str) -> list:
    logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
    return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:   # a zombie is gone for our purposes
        return stat.read().split()[2] != "Z"


@pytest.fixture
def served(tmp_path, endpoint):
    deploy_function(endpoint, "us-east-1", "edge", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]}, {"A": "1"}, function_url=False)
    boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1").update_function_configuration(
        FunctionName="edge", Timeout=1)
    (tmp_path / "edge_app.py").write_text(HANDLER)
    app = load_app("edge_app:handler", tmp_path, {"A": "1"}, "edge")
    server = AppServer({"A": "1"}, dynamodb_endpoint=endpoint, app=app, log_group="/aws/lambda/edge",
                       function_name="edge")
    server.follow("edge")
    with server:
        yield server


def test_a_handler_that_exits_answers_502_and_the_next_invocation_gets_a_new_environment(served, endpoint):
    status, first = get(served.url)
    assert status == 200
    assert get(served.url + "exit")[0] == 502
    status, after = get(served.url)
    assert status == 200 and after != first            # another process: a new execution environment
    assert any("Runtime exited with error: exit status 3" in m for m in log_messages(endpoint, "/aws/lambda/edge"))


def test_a_handler_past_its_timeout_answers_502_while_other_invocations_are_served(served, endpoint):
    looping: dict = {}
    thread = threading.Thread(target=lambda: looping.update(answer=get(served.url + "loop")))
    thread.start()
    time.sleep(0.3)
    assert get(served.url)[0] == 200                   # not blocked by the looping one: a second environment
    thread.join(30)
    assert looping["answer"][0] == 502   # within get()'s own 30 s: the function's 1 s Timeout ended it
    assert any("Task timed out after 1.00 seconds" in m for m in log_messages(endpoint, "/aws/lambda/edge"))


@pytest.mark.parametrize("path, logged", [("when", "Runtime.MarshalError"), ("big", "exceeded maximum allowed payload size")])
def test_an_answer_lambda_cannot_carry_is_a_502(served, endpoint, path, logged):
    assert get(served.url + path)[0] == 502
    assert any(logged in m for m in log_messages(endpoint, "/aws/lambda/edge"))
    assert get(served.url)[0] == 200


def test_nothing_the_handler_started_outlives_the_stack(served):
    status, child = get(served.url + "fork")
    status, worker = get(served.url)
    pids = [int(child), int(worker.split()[1])]
    assert status == 200 and all(alive(p) for p in pids)
    served.__exit__(None, None, None)                  # the handler ignores SIGTERM and SIGINT
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


def test_a_missing_dependency_is_not_called_a_missing_app(tmp_path):
    (tmp_path / "needs_app.py").write_text("import no_such_dependency_xyz\ndef handler(e, c):\n    return 1\n")
    with pytest.raises(CheckerError, match="needs the module no_such_dependency_xyz, which is not installed"):
        load_app("needs_app:handler", tmp_path)
    with pytest.raises(CheckerError, match=r"no module absent_app in .* \(run checker local in the app's folder"):
        load_app("absent_app:handler", tmp_path)


def test_an_edit_of_the_apps_code_reaches_the_next_invocation(tmp_path, endpoint):
    """As after a code deploy on Lambda: the next invocation runs in a new environment, the edited
    module imported afresh (`checker local` left running while the user edits)."""
    (tmp_path / "helper.py").write_text("WORD = 'before'\n")
    (tmp_path / "edited_app.py").write_text("from helper import WORD\n"
                                            "def handler(event, context):\n    return {'statusCode': 200, 'body': WORD}\n")
    app = load_app("edited_app:handler", tmp_path, {}, "edited")
    with AppServer({}, dynamodb_endpoint=endpoint, app=app, function_name="edited") as server:
        assert get(server.url) == (200, "before")
        assert get(server.url) == (200, "before")         # warm: the same environment
        time.sleep(0.01)
        (tmp_path / "helper.py").write_text("WORD = 'after'\n")
        assert get(server.url) == (200, "after")
