"""`checker local`: a whole environment on 127.0.0.1 that `checker check` passes against."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from .conftest import ROOT


@pytest.fixture
def local_stack(project):
    (project / "checklist.yaml").write_text((ROOT / "checklist.yaml").read_text())
    command = [os.path.join(os.path.dirname(sys.executable), "checker"), "local", "--port", "0", "--tracks", "30"]
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = {}
    deadline = time.monotonic() + 60
    while "app" not in lines and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if ":" in line and line.split(":")[0] in ("AWS (moto)", "fake Spotify", "app"):
            name, value = line.split(":", 1)
            lines[name] = value.strip()
    yield lines
    process.terminate()
    process.wait(timeout=10)


def test_check_passes_against_the_local_stack(cli, local_stack):
    assert set(local_stack) == {"AWS (moto)", "fake Spotify", "app"}, local_stack
    result, report = cli.json("check", "--endpoint-url", local_stack["AWS (moto)"], "--env", "dev",
                              "--base-url", local_stack["app"])
    assert result.exit_code == 0, [r for r in report["results"] if r["status"] != "pass"]
    assert report["summary"]["fail"] == 0 and report["summary"]["total"] >= 15
