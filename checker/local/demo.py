"""`make demo`: the incident this project was born from, told on the local stack in one command.

A new environment is validated, planned, applied and checked; then the cache tables disappear
(the incident: `liked_songs` was never created in production), the smoke test catches it and
names the fix, apply repairs it, and the smoke test passes again. Every step runs the real
`checker` command against moto, the fake Spotify and the real app on 127.0.0.1 — no AWS account,
no second shell. One line a step; exit 0 when the story went as expected.

    python -m checker.local.demo [--specs DIR] [--checklist FILE] [--env NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import boto3

from ..checks import KIND_NAMES
from ..environment import resolve
from ..errors import CheckerError
from ..kinds import sections_of
from ..target import Target
from .stack import LocalStack, port_is_free


def checker_executable() -> list:
    found = shutil.which("checker", path=os.path.dirname(sys.executable)) or shutil.which("checker")
    return [found] if found else [sys.executable, "-m", "checker"]


DEMO_PORT = 5000  # checker local's default
WIDTH = 100       # results are wrapped here, under their step
INDENT = " " * 7  # "ok 10. " is seven characters: every line of a step keeps its column


class Story:
    def __init__(self, environ: dict):
        self.environ = environ
        self.step = 0
        self.ok = True

    def run(self, title: str, args: list, expect: int, summary: Callable[[str, str], str]) -> tuple:
        """One `checker` command: its title, the exact command to replay it, and what came of it."""
        self.step += 1
        process = subprocess.run(checker_executable() + args, capture_output=True, text=True, env=self.environ,
                                 timeout=300)
        as_expected = process.returncode == expect
        self.title("ok" if as_expected else "!!", title)
        print(f"{INDENT}$ {shlex.join(['checker', *args])}")
        self.result(f"exit {process.returncode}: {summary(process.stdout, process.stderr)}")
        if not as_expected:
            self.ok = False
            print(f"{INDENT}expected exit {expect}; what it printed:\n{process.stdout}{process.stderr}", flush=True)
        return process.stdout, process.stderr

    def say(self, title: str, text: str) -> None:
        self.step += 1
        self.title("ok", title)
        self.result(text)

    def title(self, mark: str, title: str) -> None:
        print(f"{mark} {self.step:>2}. {title}", flush=True)

    def result(self, text: str) -> None:
        print(textwrap.fill(text, WIDTH, initial_indent=INDENT, subsequent_indent=INDENT,
                            break_long_words=False, break_on_hyphens=False), flush=True)


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
    return "; ".join(f"{r['id']} FAILS: {textwrap.shorten(r['found'], 170, placeholder=' ...')}" for r in bad)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checker.local.demo", description=__doc__.splitlines()[0])
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
        # `checker local`'s own ports when free, so that each printed command replays against it
        port = DEMO_PORT if all(port_is_free(DEMO_PORT + n) for n in range(3)) else 0
        with LocalStack(port=port, tracks=120, app="spotify") as stack:
            at = [*where, "--endpoint-url", stack.endpoint, "--env", options.env]
            story.say("a new, empty environment", f"AWS (moto) at {stack.endpoint}; no table, no function yet")
            story.run("the specs and checklist are valid", ["validate", *where], 0, last_line)
            story.run("plan: everything is missing", ["plan", *at, "--detailed-exitcode"], 2,
                      lambda out, err: out.strip().splitlines()[0] if out.strip() else last_line(out, err))
            story.run("apply creates it and waits for ACTIVE", ["apply", *at, "--yes"], 0, last_line)
            environment = resolve(Target(specs_dir=options.specs, checklist_path=options.checklist, env=options.env,
                                         endpoint_url=stack.endpoint), sections_of(KIND_NAMES))
            stack.deploy(environment)
            story.say("the app is deployed", f"function {environment.function_name}, its role and Function URL; the app "
                                             f"answers at {stack.app_base}, which check finds through the Function URL")
            story.run("check: the whole checklist passes", ["check", *at, "--format", "json"], 0, failing)
            dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoint, region_name=stack.region)
            for table in ("liked_songs", "liked_songs_metadata"):
                dynamodb.delete_table(TableName=table)
            story.say("THE INCIDENT: the cache tables are gone", "liked_songs and liked_songs_metadata deleted")
            story.run("smoke catches it, naming the table", ["smoke", *at, "--format", "json"], 1, failing)
            story.run("plan shows the fix", ["plan", *at, "--detailed-exitcode"], 2,
                      lambda out, err: out.strip().splitlines()[0])
            story.run("apply repairs it", ["apply", *at, "--yes"], 0, last_line)
            story.run("smoke passes again", ["smoke", *at, "--format", "json"], 0, failing)
            print(f"\nTo replay a step: `checker local --port {port or 5000} --no-deploy` in another shell\n"
                  f"(the empty environment of step 1), then\n  export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo "
                  f"AWS_DEFAULT_REGION={stack.region}\nand the step's command"
                  + ("" if port else f", with that endpoint instead of {stack.endpoint}") + ".")
    except CheckerError as exc:
        print(f"error: {exc}")
        return 1
    print("\nThe story went as expected." if story.ok else "\nThe story did NOT go as expected (see above).")
    return 0 if story.ok else 1


if __name__ == "__main__":
    sys.exit(main())
