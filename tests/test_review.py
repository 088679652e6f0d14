"""The formats for where reviewers look (checker/review.py): markdown for a pull request's
comment, github's workflow annotations on the file and line a problem names, SARIF 2.1.0 for
code scanning (validated by sarif-pydantic's model of the standard)."""
from __future__ import annotations

import json

import yaml
from sarif_pydantic import Sarif

from checker.report import formatter
from checker.results import CheckResult, Status


def broken_project(project):
    """A spec with a bad KeyType and a checklist with a bad prefix: two files, known lines."""
    spec = project / "table_specs" / "track.json"
    document = json.loads(spec.read_text())
    document["KeySchema"][0]["KeyType"] = "SORT"
    spec.write_text(json.dumps(document, indent=2))
    (project / "checklist.yaml").write_text("version: 1\nenvironments:\n  dev: {region: us-east-1, table_prefix: 'a b'}\n")
    key_line = next(n for n, line in enumerate(spec.read_text().splitlines(), 1) if '"SORT"' in line)
    return key_line


def test_sarif_names_each_problems_file_line_and_rule(cli, project):
    key_line = broken_project(project)
    result = cli("validate", "--format", "sarif")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    Sarif.model_validate(document)                       # the SARIF 2.1.0 object model
    assert document["version"] == "2.1.0"
    [run] = document["runs"]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    located = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in run["results"]}
    assert ("checker/table-spec", "table_specs/track.json", key_line) in located
    assert ("checker/checklist", "checklist.yaml", 3) in located
    assert {rule for rule, _, _ in located} <= rules


def test_github_annotations_point_at_the_file_and_line(cli, project):
    key_line = broken_project(project)
    result = cli("validate", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"::error file=table_specs/track.json,line={key_line},title=checker validate::"
                               "$.KeySchema[0].KeyType") for line in lines), lines
    assert any(line.startswith("::error file=checklist.yaml,line=3,") for line in lines), lines


def test_an_annotation_carries_line_breaks_and_percent_signs_escaped():
    failed = CheckResult("endpoint:health", "endpoints", Status.FAIL, "GET /health: 100% broken",
                         found="HTTP 500", details=("line one\nline two",))
    text = formatter("github").checks([failed])
    [annotation, summary] = text.splitlines()
    assert annotation.startswith("::error title=endpoint%3Ahealth::GET /health: 100%25 broken%0Afound: HTTP 500%0A")
    assert summary.startswith("::notice title=checker::0/1 passed")


def test_markdown_matrix_and_folded_failures_escape_what_they_show():
    ok = CheckResult("table:user", "tables", Status.PASS, "table user is ACTIVE")
    bad = CheckResult("endpoint:health", "endpoints", Status.FAIL, "GET /health | <script>alert(1)</script>",
                      expected="HTTP 200", found="HTTP 502\nInternal", remediation="checker apply --env prod")
    text = formatter("markdown").checks_by_environment({"dev": [ok, bad], "prod": [ok]})
    lines = text.splitlines()
    assert "| check | dev | prod |" in lines
    assert "| `table:user` | ✅ pass | ✅ pass |" in lines
    assert "| `endpoint:health` | ❌ fail | – |" in lines
    assert "<script>" not in text and "&lt;script>" in text and "\\| " in text      # no HTML, no broken table
    assert "- **found**: HTTP 502\\nInternal" in lines and "- **fix**: checker apply --env prod" in lines


def test_check_as_markdown_through_the_cli_masks_secrets(cli, project, endpoint, monkeypatch):
    """A value a ${VAR} put in never reaches the comment (the CLI's redactor covers every format)."""
    monkeypatch.setenv("API_TOKEN", "s3cr3t-t0ken-value")
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "environments": {"dev": {"region": "us-east-1", "base_url": "http://127.0.0.1:9/${API_TOKEN}"}},
        "endpoints": [{"name": "health", "path": "/health", "retries": 0, "timeout": 1}]}))
    result = cli("check", "--env", "dev", "--endpoint-url", endpoint, "--format", "markdown")
    assert result.exit_code == 1
    assert "| `table:user` | ❌ fail |" in result.stdout and "| `endpoint:health` | ❌ fail |" in result.stdout
    assert "s3cr3t" not in result.output and "***" in result.stdout


def test_plan_as_markdown_names_what_makes_each_change(cli, endpoint):
    result = cli("plan", "--endpoint-url", endpoint, "--format", "markdown")
    assert result.exit_code == 0
    assert "| `liked_songs` | create-table |" in result.stdout and f"`checker apply --endpoint-url {endpoint}`" in result.stdout
