"""The one redaction function: known secrets in every encoding, and secret-looking fields in text
that came from elsewhere (an endpoint's answer, a log line)."""
from __future__ import annotations

import json

import pytest

from checker.checklist import Endpoint
from checker.checks.endpoints import check_endpoint
from checker.checks.logs import sample_line
from checker.local.http import LocalServer, send_json
from checker.secrets import Redactor, mask_secret_fields

REFRESH, ACCESS = "AQD-refresh-PLANTED-71c2", "BQ-access-PLANTED-93ab"


@pytest.mark.parametrize("text, secret", [
    (json.dumps({"id": "koalemos", "spotifyAuth": {"refreshToken": REFRESH, "accessToken": ACCESS}}), REFRESH),
    (json.dumps({"ACCESS_TOKEN": ACCESS}), ACCESS),
    (json.dumps({"x-api-key": ACCESS}), ACCESS),
    (json.dumps({"pwd": ACCESS}), ACCESS),
    (json.dumps({"body": json.dumps({"password": ACCESS})}), ACCESS),      # JSON inside a JSON string
    (f"GET /callback?access_token={ACCESS}&state=1", ACCESS),
    (repr({"password": ACCESS, "n": 1}), ACCESS),                          # a Python dict repr
    (f"Authorization: Bearer {ACCESS}", ACCESS),
    (f"login failed for user=bob password={ACCESS}", ACCESS),
    (f"https://x/?sig={ACCESS}", ACCESS),
    (f"refreshing the session with token {REFRESH} for dana", REFRESH),           # free text
    (f"the api key is {ACCESS}", ACCESS),
    (f"client secret: {ACCESS}", ACCESS),
    ("got eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkYW5hIn0.c2lnbmF0dXJlLXBsYW50ZWQ back", "eyJhbGciOiJIUzI1NiJ9"),   # a JWT
    ("using AKIAIOSFODNN7EXAMPLE now", "AKIAIOSFODNN7EXAMPLE"),
    ("upstream said AQDn3x9Kq0Lz7PLANTEDv8Wm2Rb5Ty1Uo4Ie6Pa rejected", "AQDn3x9Kq0Lz7PLANTEDv8Wm2Rb5Ty1Uo4Ie6Pa"),
])
def test_secret_looking_fields_are_masked_in_any_notation(text, secret):
    masked = mask_secret_fields(text)
    assert secret not in masked and "***" in masked


def test_ordinary_fields_are_left_alone():
    text = json.dumps({"trackName": "Song", "author": "Ann", "KeySchema": [{"AttributeName": "id"}], "total": 3})
    assert mask_secret_fields(text) == text


@pytest.mark.parametrize("text", [
    "[ERROR]\t2026-12-02T10:00:00.123Z\t8f1b2c3d-1234-5678-9abc-def012345678\tKeyError: 'userId'",   # a request id
    "at async Dynamo.getLikedSongsMetadata (/var/task/dist/dynamo.js:120:22)",                       # the app's frame
    "arn:aws:lambda:us-east-1:123456789012:function:spotify-playlist-dev",
    "the token expired after 3600 seconds; table liked_songs_metadata2 not found",
])
def test_free_text_that_holds_no_secret_is_left_alone(text):
    assert mask_secret_fields(text) == text


def test_an_endpoint_echoing_the_users_tokens_shows_neither(tmp_path):
    def route(handler, method):
        send_json(handler, 502, {"message": "cannot find user", "user": {
            "spotifyAuth": {"refreshToken": REFRESH, "accessToken": ACCESS}}})
    server = LocalServer(route).start()
    try:
        result = check_endpoint(Endpoint("stats", retries=0), server.url, secrets=["hook-PLANTED"])
    finally:
        server.stop()
    shown = json.dumps(result.to_dict())
    assert result.status.failing and "HTTP 502" in result.found
    assert REFRESH not in shown and ACCESS not in shown


def test_a_variable_value_is_masked_wherever_it_comes_back():
    def route(handler, method):
        send_json(handler, 500, {"echo": handler.path})
    server = LocalServer(route).start()
    try:
        result = check_endpoint(Endpoint("hook", path="/hooks/tok3n-PLANTED", query={"q": "abc"}, retries=0),
                                server.url, secrets=["tok3n-PLANTED", "abc"])
    finally:
        server.stop()
    shown = json.dumps(result.to_dict())
    assert "tok3n-PLANTED" not in shown and "q=abc" not in shown and "***" in shown


def test_lambda_node_errors_keep_the_error_and_the_apps_own_frames():
    stack = ["ResourceNotFoundException: Requested resource not found",
             *[f"    at f{i} (/var/task/node_modules/@smithy/smithy-client/dist-cjs/index.js:{i}:1)" for i in range(8)],
             "    at async Dynamo.getLikedSongsMetadata (/var/task/dist/dynamo.js:120:22)"]
    line = ("2025-10-04T23:20:00.000Z\tabc\tERROR\tInvoke Error \t" + json.dumps({
        "errorType": "ResourceNotFoundException", "errorMessage": "Requested resource not found", "stack": stack}))
    sample = sample_line(line, Redactor())
    assert sample.startswith("Invoke Error: ResourceNotFoundException: Requested resource not found")
    assert "Dynamo.getLikedSongsMetadata (/var/task/dist/dynamo.js:120:22)" in sample
    assert "smithy" not in sample


def test_python_tracebacks_keep_the_error_and_the_apps_own_frames():
    line = ("[ERROR] KeyError: 'userId'\nTraceback (most recent call last):\n"
            '  File "/var/runtime/bootstrap.py", line 60, in main\n'
            '  File "/var/task/app/handler.py", line 20, in handler\n    return x["userId"]\n')
    sample = sample_line(line, Redactor())
    assert sample == "[ERROR] KeyError: 'userId' | at /var/task/app/handler.py:20 in handler"


PLANTED = {  # a value per field a ${VAR} may fill; the short one stands for a value too short to search for
    "HOOK_TOKEN": "hk-PLANTED-1", "SAS_SIG": "sv=PLANTED/2+x", "APP_PASSWORD": "pw-PLANTED-3", "TRACE": "tr-PLANTED-4",
    "SHORT": "q7", "BASE_PASSWORD": "p%2FPLANTED%235",
}


def encodings(value: str) -> set:
    from urllib.parse import quote, quote_plus
    return {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}


def test_every_substituted_value_stays_hidden_in_every_format_and_fix_line(cli, project, monkeypatch):
    """The app echoes everything it was sent (path, query, headers, body) in a 500; nothing a
    ${VAR} put in the request shows in any output, whatever field held it and whatever its name."""
    def route(handler, method):
        send_json(handler, 500, {"path": handler.path, "headers": dict(handler.headers),
                                 "body": handler.body().decode()})
    server = LocalServer(route).start()
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    host = server.url.split("://", 1)[1]
    (project / "checklist.yaml").write_text(f"""
version: 1
default_env: dev
environments:
  dev: {{base_url: "http://admin:${{BASE_PASSWORD}}@{host}/"}}
entry_point: {{require: none}}
endpoints:
  - name: hook
    method: POST
    path: /hooks/${{HOOK_TOKEN}}/${{SHORT}}
    query: {{sig: "${{SAS_SIG}}", page: "${{SHORT}}"}}
    headers: {{X-Trace: "${{TRACE}}"}}
    body: {{user: bob, password: "${{APP_PASSWORD}}"}}
    retries: 0
""")
    try:
        outputs = [cli("check", "--only", "endpoints", "--format", fmt) for fmt in ("text", "json", "junit")]
    finally:
        server.stop()
    for result in outputs:
        assert result.exit_code == 1
        shown = result.stdout + result.stderr
        for name, value in PLANTED.items():
            if name == "SHORT":
                continue  # too short to search for in free text; its places in the URL are masked below
            assert not encodings(value) & {e for e in encodings(value) if e in shown}, (name, shown)
    text = outputs[0].stdout
    assert "/hooks/***/***" in text and "page=***" in text and "sig=***" in text
    assert "curl -i -X POST 'http://***:***@" in text


def test_a_url_password_holding_a_slash_is_named_never_shown(cli, project, monkeypatch):
    monkeypatch.setenv("BASE_PASSWORD", "p/PLANTED#5")
    (project / "checklist.yaml").write_text('version: 1\nenvironments:\n'
                                            '  dev: {base_url: "https://admin:${BASE_PASSWORD}@example.com/"}\n')
    for result in (cli("validate"), cli("check", "--env", "dev", "--only", "tables", "--endpoint-url", "http://127.0.0.1:9")):
        assert result.exit_code == 1
        assert "percent-encode them" in result.output
        assert "PLANTED" not in result.output and "'p'" not in result.output
