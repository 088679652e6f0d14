"""The base install is lean: without moto, the local stack, the fakes and the bundled runtime,
`--help`, `validate` and `plan` work, and `checker local` says which extra it needs."""
from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REGION

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out

NOT_INSTALLED = ("moto", "flask", "werkzeug")                      # what the base install lacks
NOT_IMPORTED = (*NOT_INSTALLED, "checker.local", "spotify_playlist")  # what its code path never imports
RUN_BLOCKED = """
import sys
BLOCKED = tuple(sys.argv.pop(1).split(","))
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: not in the base install)", name=name)
sys.meta_path.insert(0, Blocker())
from checker.cli import main
sys.argv[0] = "checker"
main()
"""


def checker_without_extras(project, *args, blocked=NOT_IMPORTED):
    return subprocess.run([sys.executable, "-c", RUN_BLOCKED, ",".join(blocked), *args], cwd=project,
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "test",
                                           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION})


@pytest.mark.parametrize("args, expect", [
    (("--help",), "Usage: checker"),
    (("local", "--help"), "--app"),
    (("init", "--help"), "--function"),
    (("validate",), "OK"),
])
def test_the_base_install_needs_no_extra(project, args, expect):
    result = checker_without_extras(project, *args)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_plan_runs_without_moto_in_the_process(project, endpoint):
    result = checker_without_extras(project, "plan", "--endpoint-url", endpoint)
    assert result.returncode == 0, result.stderr
    assert "create-table" in result.stdout


def test_checker_local_names_the_extra_it_needs(project):
    (project / "checklist.yaml").write_text("version: 1\nenvironments: {dev: {}}\n")
    result = checker_without_extras(project, "local", "--app", "none", blocked=NOT_INSTALLED)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: `checker local` needs moto's server: pip install 'ddb-deploy-checker[local]' (or run `make install`)"]
