"""Formatters for where reviewers look: `markdown` (a pull request's comment, or
$GITHUB_STEP_SUMMARY), `github` (workflow commands: an annotation per problem, on the file and
line it names) and `sarif` (SARIF 2.1.0 for code scanning, `validate` only). Registered beside
the others in report.FORMATTERS; like every format, their text passes the CLI's redactor.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from .policy import CREATE_FLAG, Decision, counts, decide
from .results import Status, summarize

ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "error": "💥", "skip": "⏭️"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def cell(text: str) -> str:
    """A Markdown table cell: pipes escaped, line breaks as <br>, HTML's < and & as entities."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")
            .replace("\r", "").replace("\n", "<br>"))


def status_of(result) -> str:
    return f"{ICONS.get(result.status.value, '')} {result.status.value}"


def matrix(by_environment: dict) -> tuple:
    """(environment names, check ids in order, {(environment, id): result}, every result)."""
    ids = list(dict.fromkeys(r.id for results in by_environment.values() for r in results))
    found = {(name, r.id): r for name, results in by_environment.items() for r in results}
    return list(by_environment), ids, found, [r for results in by_environment.values() for r in results]


def counted(results: list) -> str:
    s = summarize(results)
    return (f"{s['pass']}/{s['total']} passed, {s['warn']} warnings, {s['fail']} failed, {s['error']} errors, "
            f"{s['skip']} skipped")


class MarkdownFormatter:
    name = "markdown"

    def validate(self, files: int, problems: list) -> str:
        if not problems:
            return f"✅ **checker validate**: {files} file(s) valid"
        rows = [f"| {cell(p.file)} | `{cell(p.path)}` | {cell(p.message)} |" for p in problems]
        return "\n".join([f"❌ **checker validate**: {len(problems)} problem(s)", "", "| file | where | problem |",
                          "|---|---|---|", *rows])

    def plan(self, changes: list, tables: int, apply_command: str = "checker apply") -> str:
        pending = [c for c in changes if c.pending]
        if not pending:
            return f"✅ **In sync**: {tables} table(s) match their specs."
        count = counts(changes)
        rows = [f"| `{cell(c.table)}` | {cell(c.action)} | {cell(c.detail)} | {cell(made_by(c, changes, apply_command))} |"
                for c in pending]
        return "\n".join([f"**Plan**: {len(pending)} change(s) for {tables} table(s): "
                          f"{count[Decision.AUTOMATIC]} automatic, {count[Decision.GATED]} gated, "
                          f"{count[Decision.OWNED]} for the template's deploy, {count[Decision.MANUAL]} manual, "
                          f"{count[Decision.MIGRATE]} by checker migrate", "",
                          "| table | change | detail | made by |", "|---|---|---|---|", *rows])

    def plans(self, outcomes: dict) -> str:
        return "\n\n".join(f"### {cell(name)}\n\n" + (f"💥 error: {cell(str(outcome))}" if isinstance(outcome, Exception)
                                                      else self.plan(*outcome)) for name, outcome in outcomes.items())

    def checks(self, results: list) -> str:
        return self.checks_by_environment({"": results})

    def checks_by_environment(self, by_environment: dict) -> str:
        """The environment x check matrix, then each result that did not pass, folded."""
        names, ids, found, every = matrix(by_environment)
        lines = [f"**checker**: {counted(every)}", "",
                 "| check | " + " | ".join(cell(n) or "result" for n in names) + " |",
                 "|---|" + "---|" * len(names)]
        for check_id in ids:
            cells = [status_of(found[(n, check_id)]) if (n, check_id) in found else "–" for n in names]
            lines.append(f"| `{cell(check_id)}` | " + " | ".join(cells) + " |")
        for name, results in by_environment.items():
            for r in results:
                if r.status in (Status.PASS, Status.SKIP):
                    continue
                body = [f"- **expected**: {cell(r.expected)}" if r.expected else "",
                        f"- **found**: {cell(r.found)}" if r.found else "",
                        *(f"- {cell(d)}" for d in r.details),
                        f"- **fix**: {cell(r.remediation)}" if r.remediation else ""]
                where = f"{cell(name)}: " if name else ""
                lines += ["", f"<details><summary>{status_of(r)} {where}<code>{cell(r.id)}</code>: {cell(r.summary)}"
                          "</summary>", "", *[b for b in body if b], "", "</details>"]
        return "\n".join(lines)


def made_by(change, changes: list, apply_command: str) -> str:
    decision, why = decide(change, changes)
    if decision is Decision.AUTOMATIC:
        return f"`{apply_command}`"
    if decision is Decision.OWNED:
        return f"deploying {change.owner} (or `{apply_command} {CREATE_FLAG}`)"
    return why or str(decision.value)


# -- GitHub workflow commands -------------------------------------------------------------------
def command_data(text: str) -> str:
    """A workflow command's message: % and line breaks escaped as GitHub's runner reads them."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def command_property(text: str) -> str:
    return command_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, title: str = "", file: str = "", line: Optional[int] = None) -> str:
    properties = [f"file={command_property(file)}" if file else "", f"line={line}" if file and line else "",
                  f"title={command_property(title)}" if title else ""]
    joined = ",".join(p for p in properties if p)
    return f"::{level}{' ' + joined if joined else ''}::{command_data(message)}"


class GithubFormatter:
    """Annotations a workflow shows on the pull request's files and in its summary."""

    name = "github"

    def validate(self, files: int, problems: list) -> str:
        if not problems:
            return annotation("notice", f"{files} file(s) valid", "checker validate")
        return "\n".join(annotation("error", f"{p.path}: {p.message}", "checker validate", p.file, line_of(p.file, p.path))
                         for p in problems)

    def plan(self, changes: list, tables: int, apply_command: str = "checker apply") -> str:
        pending = [c for c in changes if c.pending]
        if not pending:
            return annotation("notice", f"in sync: {tables} table(s) match their specs", "checker plan")
        return "\n".join(annotation("warning", f"{c.table}: {c.action}: {c.detail} (made by "
                                    f"{made_by(c, changes, apply_command)})", "checker plan") for c in pending)

    def plans(self, outcomes: dict) -> str:
        lines = []
        for name, outcome in outcomes.items():
            if isinstance(outcome, Exception):
                lines.append(annotation("error", str(outcome), f"checker plan ({name})"))
            else:
                lines += [line.replace("title=checker plan", f"title=checker plan ({command_property(name)})", 1)
                          for line in self.plan(*outcome).splitlines()]
        return "\n".join(lines)

    def checks(self, results: list) -> str:
        return self.checks_by_environment({"": results})

    def checks_by_environment(self, by_environment: dict) -> str:
        levels = {Status.FAIL: "error", Status.ERROR: "error", Status.WARN: "warning"}
        lines = []
        for name, results in by_environment.items():
            for r in results:
                if r.status not in levels:
                    continue
                message = "\n".join(filter(None, [r.summary, f"expected: {r.expected}" if r.expected else "",
                                                  f"found: {r.found}" if r.found else "", *r.details,
                                                  f"fix: {r.remediation}" if r.remediation else ""]))
                lines.append(annotation(levels[r.status], message, f"{name}: {r.id}" if name else r.id))
        lines.append(annotation("notice", counted([r for results in by_environment.values() for r in results]),
                                "checker"))
        return "\n".join(lines)


def line_of(file: str, path: str) -> int:
    """The line a problem's JSON path (`$.a.b[2].c`) points at in its YAML or JSON file, best
    effort (yaml's composer keeps each node's position; JSON is read as YAML); 1 when it cannot
    tell."""
    import re

    import yaml
    try:
        node = yaml.compose(Path(file).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, ValueError, yaml.YAMLError):
        return 1
    line = 1
    for part in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path.removeprefix("$")):
        key, index = part
        if isinstance(node, yaml.MappingNode) and key:
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and index and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        else:
            break
    return line


class SarifFormatter:
    """SARIF 2.1.0 (code scanning): validate's problems, each with its file, line and rule."""

    name = "sarif"

    def validate(self, files: int, problems: list) -> str:
        rules = {rule_of(p): None for p in problems}
        results = [{"ruleId": rule_of(p), "level": "error", "message": {"text": f"{p.path}: {p.message}"},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": Path(p.file).as_posix()},
                                                        "region": {"startLine": line_of(p.file, p.path)}}}]}
                   for p in problems]
        document = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
            "tool": {"driver": {"name": "checker", "informationUri": "https://github.com/tal/spotify-playlist",
                                "rules": [{"id": rule, "shortDescription": {"text": RULES[rule]}} for rule in rules]}},
            "results": results}]}
        return json.dumps(document, indent=2)


RULES = {"checker/checklist": "checklist.yaml is not what checker's schema and rules accept",
         "checker/template": "a template's table is not a table DynamoDB accepts, or cannot be resolved",
         "checker/table-spec": "a table spec is not a CreateTable request DynamoDB accepts"}


def rule_of(problem) -> str:
    if problem.path.startswith("$.Resources"):
        return "checker/template"
    if Path(problem.file).suffix in (".yaml", ".yml"):
        return "checker/checklist"
    return "checker/table-spec"


# -- HTML ------------------------------------------------------------------------------------------
class HtmlFormatter:
    """One self-contained page (no external assets; readable on a phone): the environment x check
    matrix with each result that did not pass, or the plan. Rendered from
    checker/templates/report.html.j2 by Jinja2 with autoescaping on: nothing a result holds
    becomes markup."""

    name = "html"

    def checks(self, results: list) -> str:
        return self.checks_by_environment({"": results})

    def checks_by_environment(self, by_environment: dict) -> str:
        names, ids, found, every = matrix(by_environment)
        failures = [{"environment": name, "id": r.id, "status": r.status.value, "summary": r.summary,
                     "expected": r.expected, "found": r.found, "details": list(r.details), "fix": r.remediation}
                    for name, results in by_environment.items() for r in results
                    if r.status not in (Status.PASS, Status.SKIP)]
        rows = [{"id": i, "statuses": [found[(n, i)].status.value if (n, i) in found else "" for n in names]} for i in ids]
        return render("checks", counted(every), matrix={"environments": names, "rows": rows, "failures": failures}, plans=[])

    def plan(self, changes: list, tables: int, apply_command: str = "checker apply") -> str:
        return self.plans({"": (changes, tables, apply_command)})

    def plans(self, outcomes: dict) -> str:
        plans = []
        for name, outcome in outcomes.items():
            if isinstance(outcome, Exception):
                plans.append({"environment": name, "error": str(outcome)})
                continue
            changes, tables, *rest = outcome
            command = rest[0] if rest else "checker apply"
            plans.append({"environment": name, "tables": tables, "changes": [
                {"table": c.table, "action": str(c.action), "detail": c.detail, "made_by": made_by(c, changes, command)}
                for c in changes if c.pending]})
        pending = sum(len(p.get("changes", [])) for p in plans)
        return render("plan", f"{pending} change(s) pending" if pending else "in sync", matrix=None, plans=plans)


def render(title: str, summary: str, **context) -> str:
    try:
        import jinja2
    except ImportError:
        from .errors import CheckerError
        raise CheckerError("--format html needs Jinja2: pip install jinja2") from None
    environment = jinja2.Environment(loader=jinja2.PackageLoader("checker", "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report.html.j2").render(title=title, summary=summary, **context)
