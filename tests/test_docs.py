"""The docs cannot rot: every checklist key is documented, and the README's "your own app" blocks
run as written against moto."""
from __future__ import annotations

import json
import re
import shlex
import shutil

import yaml

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def schema_paths(node, path=""):
    """Each key of the checklist schema as docs/checklist.md writes it (environments.NAME.region)."""
    placeholder = {"environments": "NAME", "tables": "NAME", "env": "VAR"}
    for key, child in (node.get("properties") or {}).items():
        here = f"{path}.{key}" if path else key
        yield here
        yield from schema_paths(child, here)
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_paths(node["additionalProperties"], f"{path}.{placeholder.get(path.rsplit('.', 1)[-1], 'NAME')}")
    if isinstance(node.get("items"), dict):
        yield from schema_paths(node["items"], f"{path}[]")


def test_every_checklist_key_is_documented():
    schema = json.loads((ROOT / "checker" / "schemas" / "checklist.schema.json").read_text())
    documented = (ROOT / "docs" / "checklist.md").read_text()
    missing = [p for p in schema_paths(schema) if f"`{p}`" not in documented]
    assert not missing


def blocks(language: str) -> list:
    section = README.split("## Use it for your own app", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_readmes_own_app_blocks_run_against_moto(cli, tmp_path, endpoint):
    minimal, sections = (yaml.safe_load(b) for b in blocks("yaml")[:2])
    app = tmp_path / "app"
    shutil.copytree(ROOT / "tests" / "apps" / "orders" / "specs", app / "table_specs")
    (app / "checklist.yaml").write_text(yaml.safe_dump(minimal))
    shell = blocks("sh")[1]
    commands = [line.split("#")[0].strip() for line in shell.splitlines() if line.strip().startswith("checker ")]
    assert [c.split()[1] for c in commands] == ["validate", "plan", "apply", "check"]
    cli.cwd = app
    for command in commands:
        words = shlex.split(command)[1:]
        if words[0] != "validate":
            words += ["--endpoint-url", endpoint]
        result = cli(*words)
        assert result.exit_code == (2 if "--detailed-exitcode" in words else 0), (command, result.output)
    assert "PASS  table:orders" in result.stdout and "SKIP  lambda" in result.stdout
    (app / "checklist.yaml").write_text(yaml.safe_dump({**minimal, **sections}))
    result = cli("validate")
    assert result.exit_code == 0, result.stdout


def test_the_performance_table_is_the_benchs_own_output():
    """The README's table is bench/results.json rendered: no figure typed by hand."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_results", ROOT / "bench" / "results.py")
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    document = json.loads((ROOT / "bench" / "results.json").read_text())
    assert document["rows"], "bench/results.json holds no row: run make bench"
    table = results.table_in((ROOT / "README.md").read_text())
    assert table == results.render(document)
