"""One Target: what a command was pointed at, printed back as options that point another there."""
from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

from checker.cli import main
from checker.target import Target

TARGETS = [
    Target(),
    Target(env="dev"),
    Target(specs_dir=Path("infra/my specs"), checklist_path=Path("infra/checklist.yaml"), env="prod",
           region="eu-west-1", profile="ops", endpoint_url="http://127.0.0.1:5000", table_prefix="shop-",
           table_suffix="-x", retry_mode="adaptive", max_attempts=3),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("command", ["plan", "apply", "wait", "check", "iam-policy"])
def test_a_printed_command_parses_back_to_the_same_target(target, command, monkeypatch):
    seen = []
    monkeypatch.setattr("checker.cli.commands.load_project", lambda given, sections: seen.append(given) or (_ for _ in ()).throw(
        click.exceptions.Exit(0)))
    line = target.command(command)
    args = shlex.split(line)
    assert args[:2] == ["checker", command]
    with pytest.raises(SystemExit):
        main.main(args[1:], prog_name="checker")
    assert seen == [target]
