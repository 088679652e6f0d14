"""`make demo`: the incident this project was born from, told on the local stack in one command.

A new environment is validated, planned, applied and checked; then the cache tables disappear
(the incident: `liked_songs` was never created in production), the smoke test catches it and
names the fix, apply repairs it, and the smoke test passes again. Every step runs the real
`checker` command against moto, the fake Spotify and the real app on 127.0.0.1 — no AWS account,
no second shell. One line a step; exit 0 when the story went as expected.

    python -m checker.demo [--specs DIR] [--checklist FILE] [--env NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import boto3

from .api import Project, sections_of
from .checks import KIND_NAMES
from .errors import CheckerError
from .local import LocalStack


def checker_executable() -> list:
    found = shutil.which("checker", path=os.path.dirname(sys.executable)) or shutil.which("checker")
    return [found] if found else [sys.executable, "-m", "checker"]


class Story:
    def __init__(self, environ: dict):
        self.environ = environ
        self.step = 0
        self.ok = True

    def run(self, title: str, args: list, expect: int, summary: Callable[[str, str], str]) -> tuple:
        """One `checker` command: its line in the story, and (stdout, stderr)."""
        self.step += 1
        process = subprocess.run(checker_executable() + args, capture_output=True, text=True, env=self.environ,
                                 timeout=300)
        shown = " ".join(["checker", *args[:1]])
        as_expected = process.returncode == expect
        mark = "ok " if as_expected else "!! "
        print(f"{mark}{self.step}. {title:<44} {shown:<18} exit {process.returncode}: "
              f"{summary(process.stdout, process.stderr)}", flush=True)
        if not as_expected:
            self.ok = False
            print(f"   expected exit {expect}; what it printed:\n{process.stdout}{process.stderr}", flush=True)
        return process.stdout, process.stderr

    def say(self, title: str, text: str) -> None:
        self.step += 1
        print(f"ok {self.step}. {title:<44} {text}", flush=True)


def last_line(stdout: str, stderr: str) -> str:
    lines = [line for line in (stdout or stderr).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def failing(stdout: str, stderr: str) -> str:
    """The failing checks of a JSON report, each with the start of what was found."""
    try:
        results = json.loads(stdout)["results"]
    except (ValueError, KeyError):
        return last_line(stdout, stderr)
    bad = [r for r in results if r["status"] in ("fail", "error")]
    if not bad:
        return f"{len(results)} checks, all pass"
    return "; ".join(f"{r['id']} FAILS: {r['found'][:170]}" for r in bad)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checker.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default="table_specs")
    parser.add_argument("--checklist", default="checklist.yaml")
    parser.add_argument("--env", default="dev")
    options = parser.parse_args(argv)
    if not Path(options.specs).is_dir() or not Path(options.checklist).is_file():
        print(f"error: run the demo in the project's folder (it needs {options.specs}/ and {options.checklist})")
        return 1
    environ = {**os.environ, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
               "AWS_DEFAULT_REGION": "us-east-1"}
    environ.pop("AWS_PROFILE", None)
    os.environ.update({k: environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    story = Story(environ)
    where = ["--specs", options.specs, "--checklist", options.checklist]
    print("The incident: spotify-playlist-dev crashed with ResourceNotFoundException because liked_songs and\n"
          "liked_songs_metadata had never been created. Here is how checker keeps that from happening again.\n")
    try:
        with LocalStack(port=0, tracks=120) as stack:
            at = [*where, "--endpoint-url", stack.endpoint, "--env", options.env]
            app = ["--base-url", stack.app.url]
            story.say("a new, empty environment", f"moto {stack.endpoint}, app {stack.app.url} (log: {stack.log_file})")
            story.run("the specs and checklist are valid", ["validate", *where], 0, last_line)
            story.run("plan: everything is missing", ["plan", *at, "--detailed-exitcode"], 2,
                      lambda out, err: out.strip().splitlines()[0] if out.strip() else last_line(out, err))
            story.run("apply creates it and waits for ACTIVE", ["apply", *at, "--yes"], 0, last_line)
            project = Project.load(options.specs, options.checklist, env=options.env, endpoint_url=stack.endpoint,
                                   sections=sections_of(KIND_NAMES))
            stack.deploy(project)
            story.say("the app is deployed", f"function {project.function_name}, its role and Function URL")
            story.run("check: the whole checklist passes", ["check", *at, *app, "--format", "json"], 0, failing)
            dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoint, region_name=stack.region)
            for table in ("liked_songs", "liked_songs_metadata"):
                dynamodb.delete_table(TableName=table)
            story.say("THE INCIDENT: the cache tables are gone", "liked_songs and liked_songs_metadata deleted")
            story.run("smoke catches it, naming the table", ["smoke", *at, *app, "--format", "json"], 1, failing)
            story.run("plan shows the fix", ["plan", *at, "--detailed-exitcode"], 2,
                      lambda out, err: out.strip().splitlines()[0])
            story.run("apply repairs it", ["apply", *at, "--yes"], 0, last_line)
            story.run("smoke passes again", ["smoke", *at, *app, "--format", "json"], 0, failing)
    except CheckerError as exc:
        print(f"error: {exc}")
        return 1
    print("\nThe story went as expected." if story.ok else "\nThe story did NOT go as expected (see above).")
    return 0 if story.ok else 1


if __name__ == "__main__":
    sys.exit(main())
