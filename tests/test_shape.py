"""The shape of the code, as rules a change cannot quietly break: who may import what, and a
README that documents every command."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import click

from checker.cli import main

from .conftest import ROOT


def imports_of(path: Path) -> set:
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules(folder: str) -> list:
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_cli_imports_the_api_the_formatters_errors_and_local_only():
    own = {m for m in imports_of(ROOT / "checker" / "cli.py") if m.startswith("checker.")}
    allowed = ("checker.api", "checker.report", "checker.errors", "checker.local")
    assert {m for m in own if not m.startswith(allowed)} == set()


def test_only_the_cli_imports_click():
    users = [p.relative_to(ROOT).as_posix() for p in modules("checker") + modules("spotify_playlist")
             if any(m == "click" or m.startswith("click.") for m in imports_of(p))]
    assert users == ["checker/cli.py"]


def test_no_check_module_imports_the_formatters():
    for path in modules("checker/checks"):
        assert not any(m.startswith("checker.report") for m in imports_of(path)), path


def test_the_runtime_holds_only_what_the_lambda_runs():
    for path in modules("spotify_playlist"):
        assert not any(m == "checker" or m.startswith("checker.") for m in imports_of(path)), path
        assert "fake" not in path.name and "testing" not in path.name, path


def test_every_command_and_option_is_documented():
    """The README's table names every command; docs/reference.md every option."""
    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "reference.md").read_text()
    for name, command in main.commands.items():
        assert f"`checker {name}" in readme, f"README does not document `checker {name}`"
        assert f"`checker {name}" in reference, f"docs/reference.md does not document `checker {name}`"
        for parameter in command.params:
            if isinstance(parameter, click.Option) and parameter.name != "help":
                assert parameter.help, f"checker {name} {parameter.opts[0]} has no help"
                assert any(re.search(re.escape(opt) + r"\b", reference) for opt in parameter.opts), \
                    f"docs/reference.md does not mention checker {name} {parameter.opts[0]}"


def test_the_cli_starts_without_the_heavy_libraries():
    """`checker --help` imports click and checker's light modules only: boto3, botocore, jsonschema
    and yaml come with the commands that use them (time lives in bench/, this checks the cause)."""
    import subprocess
    import sys
    code = ("import sys, checker.cli; heavy = [m for m in ('boto3', 'botocore', 'jsonschema', 'yaml', 'urllib3') "
            "if m in sys.modules]; print(','.join(heavy))")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert process.returncode == 0 and process.stdout.strip() == ""


def test_one_boto3_session_per_run(cli, endpoint, project, monkeypatch):
    import boto3
    created = []
    original = boto3.Session

    def counting(*args, **kwargs):
        created.append(kwargs)
        return original(*args, **kwargs)
    monkeypatch.setattr(boto3, "Session", counting)
    (project / "checklist.yaml").write_text((ROOT / "checklist.yaml").read_text())
    cli("check", "--endpoint-url", endpoint, "--env", "dev", "--skip", "endpoints")
    assert len(created) == 1
