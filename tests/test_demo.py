"""`make demo` and the conventions a new user expects: `python -m checker`, the version, help."""
from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
import yaml

from .conftest import ROOT

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]   # `make test-fast` leaves it out


def test_the_demo_tells_the_incident_and_ends_well(project):
    checklist = yaml.safe_load((ROOT / "checklist.yaml").read_text())
    for endpoint in checklist["endpoints"]:
        endpoint.update(retry_delay=0)
    (project / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    process = subprocess.run([sys.executable, "-m", "checker.local.demo"], cwd=project, capture_output=True, text=True,
                             timeout=170)
    assert process.returncode == 0, process.stdout + process.stderr
    lines = process.stdout.splitlines()
    steps = [line for line in lines if line.startswith(("ok ", "!! "))]
    assert len(steps) == 11 and all(line.startswith("ok ") for line in steps)
    assert [line[3:6] for line in steps] == [f"{n:>2}." for n in range(1, 12)]   # the columns hold past 9
    assert all(len(line) <= 100 or line.startswith("       $ ") for line in lines)  # results wrapped, not cut
    smoke = step_text(lines, "smoke catches it")
    assert "exit 1" in smoke and "table liked_songs (LIKED_SONGS_TABLE) does not exist" in smoke
    assert "checker apply" in smoke
    # each step's exact command, to replay it: the endpoint included, no base URL needed (it is found)
    command = next(line for line in step_lines(lines, "smoke catches it") if line.startswith("       $ checker"))
    replayed = shlex.split(command.strip()[2:])
    assert replayed[:2] == ["checker", "smoke"] and "--endpoint-url" in replayed
    assert lines[-1] == "The story went as expected."
    assert "Traceback" not in process.stdout + process.stderr


def step_lines(lines: list, title: str) -> list:
    start = next(i for i, line in enumerate(lines) if title in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("ok ", "!! "))), len(lines))
    return lines[start:end]


def step_text(lines: list, title: str) -> str:
    return " ".join(line.strip() for line in step_lines(lines, title))


def test_the_demo_outside_a_project_says_what_it_needs(tmp_path):
    process = subprocess.run([sys.executable, "-m", "checker.local.demo"], cwd=tmp_path, capture_output=True, text=True)
    assert process.returncode == 1 and "run the demo in the project's folder" in process.stdout


def test_python_dash_m_checker_is_the_cli(project):
    process = subprocess.run([sys.executable, "-m", "checker", "--version"], capture_output=True, text=True)
    assert process.returncode == 0 and process.stdout.startswith("checker, version ")
    process = subprocess.run([sys.executable, "-m", "checker", "validate"], cwd=project, capture_output=True,
                             text=True)
    assert process.returncode == 0 and "valid" in process.stdout


def test_local_outside_a_project_needs_specs_and_checklist(tmp_path):
    process = subprocess.run([sys.executable, "-m", "checker", "local", "--port", "0"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 1
    assert "pass --specs DIR and --checklist FILE" in process.stderr and "Traceback" not in process.stderr


def test_help_lists_each_commands_whole_summary_never_cut(cli):
    from checker.cli import main
    result = cli("--help")
    commands = result.stdout.split("Commands:", 1)[1]
    assert result.exit_code == 0 and "..." not in commands
    listed = " ".join(commands.split())
    for name, command in main.commands.items():
        summary = " ".join(command.get_short_help_str(limit=1000).split())
        assert f"{name} {summary}" in listed
