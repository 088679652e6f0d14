"""Shared fixtures: fake credentials for every test, a moto server on 127.0.0.1, the CLI runner."""
from __future__ import annotations

import json
import logging
import os
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from checker.cli import main

logging.getLogger("werkzeug").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "table_specs"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch, tmp_path):
    """No test may reach real AWS or read the developer's ~/.aws."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture(autouse=True)
def fresh_process_reports():
    """Each test is a new Lambda container as far as the once-per-process ERROR lines and the
    reused access tokens go."""
    from spotify_playlist.health import missing_tables
    from spotify_playlist.spotify import TOKENS
    missing_tables.reset()
    TOKENS.clear()


def moto_server_running():
    """A moto server on a free port of 127.0.0.1 (a generator for fixtures): its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def reset_moto(url: str) -> str:
    """An empty account again."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")).read()
    return url


@pytest.fixture(scope="session")
def moto_server():
    yield from moto_server_running()


@pytest.fixture
def endpoint(moto_server):
    """A moto server with an empty account for this test."""
    return reset_moto(moto_server)


class Cli:
    """Runs the real click command in-process and keeps stdout and stderr apart."""

    def __init__(self, cwd: Path):
        self.cwd = cwd

    def __call__(self, *args: str, input: str | None = None):
        runner = CliRunner()
        old = os.getcwd()
        os.chdir(self.cwd)
        try:
            result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        finally:
            os.chdir(old)
        return result

    def json(self, *args: str):
        result = self(*args, "--format", "json")
        return result, json.loads(result.stdout)


@pytest.fixture
def project(tmp_path):
    """A working directory holding a copy of the real table specs, no checklist."""
    specs = tmp_path / "table_specs"
    specs.mkdir()
    for spec in SPECS.glob("*.json"):
        (specs / spec.name).write_text(spec.read_text())
    return tmp_path


@pytest.fixture
def cli(project):
    return Cli(project)


def load_spec(name: str) -> dict:
    return json.loads((SPECS / f"{name}.json").read_text())


@pytest.fixture
def fake_spotify():
    from checker.local.fake_spotify import FakeSpotify
    with FakeSpotify() as fake:
        yield fake
