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
    own = {m for path in modules("checker/cli") for m in imports_of(path) if m.startswith("checker.")}
    allowed = ("checker.api", "checker.report", "checker.errors", "checker.local", "checker.cli")
    assert {m for m in own if not m.startswith(allowed)} == set()
    assert sum(len(path.read_text().splitlines()) for path in modules("checker/cli")) < 1000


def test_only_the_cli_imports_click():
    users = [p.relative_to(ROOT).as_posix() for p in modules("checker") + modules("spotify_playlist")
             if any(m == "click" or m.startswith("click.") for m in imports_of(p))]
    assert users and all(user.startswith("checker/cli/") for user in users), users


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


def checker_imports() -> dict:
    """{module: the checker modules it imports}, every import counted: module-level, inside a
    function, and under TYPE_CHECKING alike (a cycle a type annotation hides is still a cycle
    of who knows whom)."""
    graph = {}
    for path in modules("checker"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = path
    found = {}
    for name, path in graph.items():
        found[name] = {m for m in imports_of(path) if m in graph and m != name}
    return found


def cycles(graph: dict) -> list:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    groups: list = []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))
    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle_among_checkers_modules():
    graph = checker_imports()
    # function-level imports are seen, and a package's own relative imports resolve into it
    assert "checker.migrate.copy" in graph["checker.migrate.table"] and "checker.migrate" in graph["checker.plan"]
    assert "checker.migrate.declared" in graph["checker.migrate"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_cli_and_the_local_stack_import_the_facade():
    users = sorted(name for name, imported in checker_imports().items() if "checker.api" in imported)
    assert users and [u for u in users if not u.startswith(("checker.cli", "checker.local"))] == []


def test_the_ground_floor_imports_nothing_of_checker_above_it():
    ground = {"checker.model", "checker.items", "checker.text", "checker.poll"}
    allowed = ground | {"checker.errors", "checker.deadline", "checker.answers"}
    graph = checker_imports()
    for module in ground:
        assert graph[module] <= allowed, (module, graph[module] - allowed)


def test_every_relative_import_names_a_module_that_exists():
    """A function-level `from .local import x` in the wrong package fails only when it runs (mypy,
    with ignore_missing_imports, says nothing): here it fails at once."""
    for path in modules("checker"):
        package = path.relative_to(ROOT).with_suffix("").parts[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ROOT.joinpath(*package[: len(package) - node.level + 1], *(node.module or "").split("."))
                assert base.with_suffix(".py").is_file() or (base / "__init__.py").is_file(), (path, node.module)
