"""The CI recipes cannot rot: every `checker` command of the GitHub Actions workflow runs here
against a moto server (secrets and URLs from this test's environment), and the pre-commit hook
runs `checker validate` as declared."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import yaml

from checker.local.app_server import AppServer
from checker.local.deploy import deploy_function, role_policy

from .conftest import REGION, ROOT


def workflow_commands() -> list:
    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    commands = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            run = step.get("run", "")
            if run.startswith("checker "):
                commands.append((step.get("name", run), run, step.get("env", {})))
    return commands


def run(command: str, cwd, environ: dict) -> subprocess.CompletedProcess:
    words = shlex.split(command.split(">")[0])
    executable = os.path.join(os.path.dirname(sys.executable), "checker")
    return subprocess.run([executable, *words[1:]], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=120)


def test_every_checker_command_of_the_workflow_works(project, endpoint, fake_spotify, monkeypatch):
    (project / "checklist.yaml").write_text((ROOT / "checklist.yaml").read_text())
    commands = workflow_commands()
    assert [c.split()[1] for _, c, _ in commands] == ["validate", "validate", "plan", "plan", "apply", "smoke"]
    environ = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "API_TOKEN": "ci-token"}
    annotations, sarif, comment = (c for _, c, _ in commands[:3])
    assert run(annotations, project, environ).returncode == 0
    assert json.loads(run(sarif.split(" || ")[0], project, environ).stdout)["runs"][0]["results"] == []
    commented = run(comment, project, environ)
    assert commented.returncode == 0 and "| table | change | detail | made by |" in commented.stdout, commented.stderr
    by_verb = {command.split()[1]: command for _, command, _ in commands[3:]}
    assert run(by_verb["plan"], project, environ).returncode == 2  # a new account: tables to create
    assert run(by_verb["apply"], project, environ).returncode == 0
    assert run(by_verb["plan"], project, environ).returncode == 0
    # "deploy the app": the function and the app, bound to dev's tables, logging to its group
    from checker.api import Project, Target
    loaded = Project.load(Target(specs_dir=project / "table_specs", checklist_path=project / "checklist.yaml",
                                 env="dev", endpoint_url=endpoint))
    fake_spotify.add_user("dana", 5)
    settings = {"DEFAULT_USER_ID": "dana", "SPOTIFY_API_BASE_URL": fake_spotify.api_base,
                "SPOTIFY_ACCOUNTS_BASE_URL": fake_spotify.url, "SPOTIFY_REFRESH_TOKEN": "refresh-dana",
                "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "s", "USER_TABLE": "user",
                "LIKED_SONGS_TABLE": "liked_songs", "LIKED_SONGS_METADATA_TABLE": "liked_songs_metadata"}
    deploy_function(endpoint, REGION, "spotify-playlist-dev",
                    role_policy(loaded.tables, list(loaded.checklist.permissions), REGION), settings)
    with AppServer(settings, dynamodb_endpoint=endpoint, log_group="/aws/lambda/spotify-playlist-dev") as app:
        smoke = by_verb["smoke"].split(">")[0].replace("--settle 10", "--settle 0") + f" --base-url {app.url}"
        result = run(smoke, project, environ)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("<?xml") and 'failures="0"' in result.stdout


def test_the_pre_commit_hook_runs_validate(project):
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["pass_filenames"] is False
    (project / "checklist.yaml").write_text((ROOT / "checklist.yaml").read_text())
    assert run(hook["entry"], project, dict(os.environ)).returncode == 0
    (project / "table_specs" / "user.json").write_text("{")
    assert run(hook["entry"], project, dict(os.environ)).returncode == 1
