"""Every wait has a deadline: peers that drip a byte at a time, or accept and never answer, and a
credential_process that never returns, cannot hold a command past its --timeout (or an endpoint
past its own timeout). Bounds, not speeds: elapsed < deadline + slack."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import yaml

from .conftest import REGION

SLACK = 6.0


class Drip:
    """A TCP server on 127.0.0.1 that reads a request and answers `answer` one byte every
    `interval` seconds (`answer` None: accepts and never says anything)."""

    def __init__(self, answer=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", interval=0.5):
        self.answer = answer
        self.interval = interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stopped = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def accept(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection):
        with connection:
            try:
                connection.recv(65536)
                while not self.stopped.is_set():
                    for byte in (self.answer or b"") * 1000:
                        connection.sendall(bytes([byte]))
                        time.sleep(self.interval)
                    self.stopped.wait(self.interval)
            except OSError:
                return

    def close(self):
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def drip():
    servers = []

    def start(**kwargs):
        servers.append(Drip(**kwargs))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def one_error_line(result):
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    return errors[0]


@pytest.mark.parametrize("answer", [b'{"Table": {"TableName": "user", "TableStatus": "ACTIVE"}}', None],
                         ids=["dripping", "silent"])
def test_an_aws_endpoint_that_drips_or_never_answers_cannot_hold_plan(cli, drip, answer):
    server = drip(answer=b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + answer if answer else None)
    started = time.monotonic()
    result = cli("plan", "--endpoint-url", server.url, "--timeout", "2", "--max-attempts", "1")
    assert time.monotonic() - started < 2 + SLACK
    assert result.exit_code == 1
    one_error_line(result)


def test_check_on_a_silent_aws_endpoint_ends_at_its_timeout_naming_it(cli, project, drip):
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev", "environments": {"dev": {"function_name": "fn"}},
        "lambda": {"required_env": ["A"]}, "iam": {"permissions": []}, "logs": {"threshold": 0}}))
    server = drip(answer=None)
    started = time.monotonic()
    result, report = cli.json("check", "--endpoint-url", server.url, "--timeout", "3", "--max-attempts", "1")
    assert time.monotonic() - started < 3 + SLACK
    assert result.exit_code == 1
    errors = {r["kind"]: r["summary"] for r in report["results"] if r["status"] == "error"}
    assert set(errors) >= {"tables", "lambda", "logs"}
    assert f"--timeout: 3s passed while waiting for {server.url} to answer" in errors["tables"]


def test_an_aws_endpoint_found_unreachable_is_not_waited_for_again(drip):
    """One read timeout a run: the next call to that endpoint (any client of the command) fails at
    once with the same reason, instead of waiting out its own read timeout."""
    from checker.aws import AwsOptions
    from checker.errors import AwsError, call
    from checker.poll import Deadline
    server = drip(answer=None)
    options = AwsOptions(region=REGION, endpoint_url=server.url, max_attempts=1, read_timeout=1,
                         deadline=Deadline(60))
    started = time.monotonic()
    with pytest.raises(AwsError) as first:
        call(options.client("dynamodb"), "ListTables")
    assert first.value.unreachable and 1 <= time.monotonic() - started < 1 + SLACK
    other = options.client("lambda")         # made first: a client's creation is not what is timed
    again = time.monotonic()
    with pytest.raises(AwsError) as second:
        call(other, "ListFunctions", "lambda")
    assert time.monotonic() - again < 0.5
    assert str(second.value) == str(first.value) and second.value.unreachable


def test_an_endpoint_that_drips_its_headers_is_bounded_by_its_timeout(cli, project, drip):
    server = drip(interval=0.3)
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "default_env": "dev", "environments": {"dev": {"base_url": server.url}}, "entry_point": {"require": "none"},
        "endpoints": [{"name": "slow", "path": "/health", "timeout": 1, "retries": 1, "retry_delay": 0},
                      {"name": "slower", "path": "/stats", "timeout": 1, "retries": 0}]}))
    started = time.monotonic()
    result, report = cli.json("check", "--only", "endpoints")
    elapsed = time.monotonic() - started
    assert elapsed < 3 * 1 + SLACK     # (retries + 1) x timeout for the first, one timeout for the second
    found = {r["id"]: r["found"] for r in report["results"]}
    assert found["endpoint:slow"] == "no whole answer within its timeout of 1s (after 2 attempt(s))"


def test_a_credential_process_that_never_returns_is_stopped_at_the_deadline(cli, project, tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text("[profile stuck]\ncredential_process = sleep 600\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    result = cli("plan", "--profile", "stuck", "--timeout", "2", "--region", REGION)
    assert time.monotonic() - started < 2 + SLACK
    assert result.exit_code == 1
    assert "credential_process (sleep) did not answer within the --timeout of 2s" in one_error_line(result)
