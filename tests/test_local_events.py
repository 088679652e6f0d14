"""The HTTP emulation of `checker local`: the events each entry point sends, a handler's answer
read as API Gateway and Function URLs read it, and `--app` named as Lambda and uvicorn name it."""
from __future__ import annotations

import base64

import pytest

from checker.errors import CheckerError
from checker.local.apps import load_app, parse_app
from checker.local.events import event_for, http_answer, strip_rest_prefix

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out


def test_a_function_url_and_an_http_api_send_payload_format_2():
    event = event_for("http_api", "POST", "/notes?tag=a&tag=b&x=", {"Content-Type": "application/json",
                                                                    "Cookie": "a=1; b=2"}, b'{"id": 1}', "$default")
    assert (event["version"], event["rawPath"], event["rawQueryString"]) == ("2.0", "/notes", "tag=a&tag=b&x=")
    assert event["queryStringParameters"] == {"tag": "a,b", "x": ""}          # repeated values joined, as AWS does
    assert event["requestContext"]["http"]["method"] == "POST" and event["headers"]["content-type"] == "application/json"
    assert event["cookies"] == ["a=1", "b=2"] and event["body"] == '{"id": 1}' and event["isBase64Encoded"] is False


def test_a_rest_api_sends_payload_format_1_with_its_stage():
    stage, target = strip_rest_prefix("/restapis/abc/local/_user_request_/orders/7?full=true")
    assert (stage, target) == ("local", "/orders/7?full=true")
    event = event_for("rest_api", "GET", target, {"Accept": "application/json"}, b"", stage)
    assert (event["httpMethod"], event["path"], event["resource"]) == ("GET", "/orders/7", "/{proxy+}")
    assert event["pathParameters"] == {"proxy": "orders/7"}
    assert event["queryStringParameters"] == {"full": "true"} and event["multiValueQueryStringParameters"] == {"full": ["true"]}
    assert event["requestContext"]["stage"] == "local" and event["body"] is None
    assert strip_rest_prefix("/health?x=1") == (None, "/health?x=1")


def test_a_binary_body_is_sent_base64_encoded():
    event = event_for("function_url", "PUT", "/blob", {}, b"\xff\x00\x01")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\x00\x01"


BAD_GATEWAY = (502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')


@pytest.mark.parametrize("kind, answer, expected", [
    ("function_url", {"statusCode": 201, "headers": {"X-A": "1"}, "body": "made"}, (201, {"X-A": "1"}, b"made")),
    ("function_url", {"ok": True}, (200, {"Content-Type": "application/json"}, b'{"ok": true}')),  # a plain answer
    ("rest_api", {"ok": True}, (502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')),
    ("http_api", {"statusCode": 200, "body": base64.b64encode(b"\xff").decode(), "isBase64Encoded": True},
     (200, {}, b"\xff")),
    ("http_api", None, (200, {"Content-Type": "application/json"}, b"null")),
    ("function_url", {"statusCode": "abc"}, BAD_GATEWAY),
    ("function_url", {"statusCode": 99999}, BAD_GATEWAY),               # never on the status line
    ("function_url", {"statusCode": -1}, BAD_GATEWAY),
    ("function_url", {"statusCode": 200, "headers": {"X-A": "1\r\nSet-Cookie: stolen=1"}}, BAD_GATEWAY),   # no splitting
    ("function_url", {"statusCode": 200, "headers": {"X-A\nB": "1"}}, BAD_GATEWAY),
    ("http_api", {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True}, BAD_GATEWAY),
    ("http_api", {"statusCode": 200, "body": {"when": {1, 2}}}, BAD_GATEWAY),      # a body JSON cannot hold
])
def test_a_handlers_answer_is_read_as_aws_reads_it(kind, answer, expected):
    assert http_answer(kind, answer) == expected


@pytest.mark.parametrize("value, expected", [
    ("app:handler", ("app", "handler")), ("app.handler", ("app", "handler")),
    ("handlers.orders.main", ("handlers.orders", "main")), ("pkg.mod:lambda_handler", ("pkg.mod", "lambda_handler")),
])
def test_app_is_named_as_lambda_or_uvicorn_names_it(value, expected):
    assert parse_app(value) == expected


@pytest.mark.parametrize("value", ["handler", "app:", ":handler", "a b:c", "app:handler()"])
def test_a_badly_named_app_is_one_line(value):
    with pytest.raises(CheckerError, match="expected spotify, none, or MODULE:FUNCTION"):
        parse_app(value)


def test_an_app_that_fails_on_import_or_lacks_its_function_is_one_line(tmp_path):
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('TABLE is not set')\n")
    (tmp_path / "empty_app.py").write_text("x = 1\n")
    with pytest.raises(CheckerError, match=r"importing broken_app raised RuntimeError: TABLE is not set"):
        load_app("broken_app:handler", tmp_path)
    with pytest.raises(CheckerError, match="empty_app has no function handler"):
        load_app("empty_app.handler", tmp_path)


def test_a_handler_that_raises_answers_502_and_logs_lambdas_error_line(tmp_path, caplog):
    (tmp_path / "raising_app.py").write_text("def handler(event, context):\n    print('before')\n"
                                             "    raise ValueError('boom ' + context.function_name)\n")
    app = load_app("raising_app:handler", tmp_path)
    with caplog.at_level("INFO"):
        answer = app.invoke(event_for("function_url", "GET", "/", {}, b""), {"A": "1"}, lambda: None, "fn")
    assert http_answer("function_url", answer)[0] == 502
    lines = [app.formatter().format(r) for r in caplog.records]
    assert lines[0] == "before"            # a print() line is shipped as it is, in its order
    assert lines[1].startswith("[ERROR]\t") and "ValueError: boom fn" in lines[1] and "Traceback" in lines[1]


def test_every_invocation_leaves_lambdas_start_end_and_report_lines_though_the_handler_logs_nothing(tmp_path, endpoint):
    """A healthy handler that logs nothing must not fail smoke's "no log group after the calls":
    Lambda writes START, END and REPORT for every invocation, with its request id."""
    import re
    import urllib.request

    import boto3

    from checker.local.app_server import AppServer
    (tmp_path / "quiet_app.py").write_text("def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n")
    app = load_app("quiet_app:handler", tmp_path)
    with AppServer({}, dynamodb_endpoint=endpoint, log_group="/aws/lambda/quiet", app=app) as server:
        for _ in range(2):
            assert urllib.request.urlopen(server.url + "/").read() == b"ok"
    logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
    messages = [e["message"] for e in logs.filter_log_events(logGroupName="/aws/lambda/quiet")["events"]]
    assert len(messages) == 6, messages
    ids = [re.fullmatch(r"START RequestId: (\S+) Version: \$LATEST", m).group(1) for m in messages[::3]]
    assert len(set(ids)) == 2
    for request_id, (_start, end, report) in zip(ids, (messages[:3], messages[3:]), strict=True):
        assert end == f"END RequestId: {request_id}"
        assert re.fullmatch(rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
                            r"Memory Size: 128 MB\tMax Memory Used: \d+ MB", report), report
