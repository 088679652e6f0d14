"""Formatters: one class per output format, one method per kind of result, one registry that every
command picks from (as cfn-lint's formatters and goss's outputers do). Results go to stdout;
progress never does."""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Optional
from xml.etree import ElementTree

from .model import MIGRATIONS, NOT_READY, Action
from .policy import CREATE_FLAG, Decision, counts
from .results import CAPACITY_FLAG, ApplyResult, Status, summarize
from .review import GithubFormatter, HtmlFormatter, MarkdownFormatter, SarifFormatter

if TYPE_CHECKING:
    from .model import Change
    from .wait import WaitResult

SYMBOLS = {Action.CREATE_TABLE: "+", Action.CREATE_INDEX: "+"}
# XML 1.0 cannot hold these characters at all, escaped or not: a junit report must stay parseable
# whatever an endpoint answered.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def to_json(document) -> str:
    return json.dumps(document, indent=2, sort_keys=False)


class TextFormatter:
    name = "text"

    def validate(self, files: int, problems: list) -> str:
        if not problems:
            return f"OK: {files} file(s) valid"
        return "\n".join(str(p) for p in problems) + f"\n{len(problems)} problem(s) found"

    def plan(self, changes: list, tables: int, apply_command: str = "checker apply") -> str:
        pending = [c for c in changes if c.pending]
        lines = []
        if not pending:
            lines.append(f"In sync: {tables} table(s) match their specs.")
        else:
            width = max(len(c.table) for c in changes)
            count = counts(changes)
            lines.append(f"Plan: {len(pending)} change(s) for {tables} table(s):")
            lines += [self._change_line(c, width) for c in pending]
            held = f", {count[Decision.HELD]} held until a manual step is done" if count[Decision.HELD] else ""
            migrate_command = apply_command.replace("checker apply", "checker migrate", 1)   # the same options
            migrations = f", {count[Decision.MIGRATE]} made by `{migrate_command}`" if count[Decision.MIGRATE] else ""
            migrations += (f", {count[Decision.OWNED]} made by deploying the template (or `{apply_command} "
                           f"{CREATE_FLAG}`)" if count[Decision.OWNED] else "")
            lines.append(f"{count[Decision.AUTOMATIC]} automatic (run `{apply_command}`), {count[Decision.GATED]} "
                         f"unlocked by `{apply_command} {CAPACITY_FLAG}`{held}, {count[Decision.MANUAL]} need a "
                         f"manual step{migrations}.")
        not_ready = [c for c in changes if c.action == NOT_READY]
        if not_ready:
            lines.append(f"Not ready ({len(not_ready)}): still building, not usable by the app yet:")
            lines += [f"  . {c.table}  {c.detail}" for c in not_ready]
        retiring = [c for c in changes if c.action == Action.RETIRING_INDEX]
        if retiring:
            lines.append(f"Retiring ({len(retiring)}): indexes in the table that its spec no longer has:")
            lines += [f"  - {c.table}  {c.detail}" for c in retiring]
        unchecked = [c for c in changes if not c.pending and c.action not in (NOT_READY, Action.RETIRING_INDEX)]
        if unchecked:
            width = max(len(c.table) for c in unchecked)
            lines.append(f"Not compared ({len(unchecked)}): stated in a spec or the checklist, but not compared:")
            lines += [self._change_line(c, width) for c in unchecked]
        return "\n".join(lines)

    @staticmethod
    def _change_line(change: Change, width: int) -> str:
        if not change.pending:
            symbol, note = "?", "  [not compared]"
        elif change.action in MIGRATIONS:
            symbol, note = ">", "  [checker migrate]"
        elif not change.automatic:
            symbol, note = "!", "  [manual step]"
        elif change.owner:
            symbol, note = SYMBOLS.get(change.action, "~"), f"  [owned by {change.owner}: deploy it]"
        elif change.gate:
            symbol, note = "~", f"  [needs {CAPACITY_FLAG}]"
        else:
            symbol, note = SYMBOLS.get(change.action, "~"), ""
        return f"  {symbol} {change.table:<{width}}  {change.action:<24} {change.detail}{note}"

    def apply(self, result: ApplyResult, wait: Optional[WaitResult]) -> str:
        if not result.outcomes:
            return "Nothing to do: every table matches its spec."
        width = max(len(o.change.table) for o in result.outcomes)
        lines = []
        for outcome in result.outcomes:
            note = f": {outcome.message}" if outcome.message and outcome.status != "manual" else ""
            lines.append(f"  {outcome.status:<19} {outcome.change.table:<{width}}  {outcome.change.action:<24} "
                         f"{outcome.change.detail}{note}")
        held = f", {len(result.held)} held back" if result.held else ""
        lines.append(f"{len(result.made)} applied, {len(result.failed)} failed, not run or not in effect{held}, "
                     f"{len(result.manual)} need a manual step.")
        if wait is not None and wait.ready:
            lines.append(f"All {len(wait.states)} table(s) and their indexes are ACTIVE.")
        return "\n".join(lines)

    def wait(self, result: WaitResult) -> str:
        lines = [f"  {s.name}: {s.summary()}" for s in result.states]
        if result.ready:
            lines.append(f"All {len(result.states)} table(s) and their indexes are ACTIVE ({result.seconds:.1f}s).")
        return "\n".join(lines)

    def checks(self, results: list) -> str:
        lines = []
        for r in results:
            lines.append(f"{r.status.upper():<5} {r.id}: {r.summary}")
            if r.status is not Status.PASS:
                if r.expected:
                    lines.append(f"      expected: {r.expected}")
                if r.found:
                    lines.append(f"      found:    {r.found}")
                lines += [f"      | {d}" for d in r.details]
                if r.remediation:
                    lines.append(f"      fix:      {r.remediation}")
        s = summarize(results)
        lines.append(f"{s['total']} checks: {s['pass']} passed, {s['warn']} warnings, {s['fail']} failed, "
                     f"{s['error']} errors, {s['skip']} skipped")
        return "\n".join(lines)

    def plans(self, outcomes: dict) -> str:
        """Per environment, one plan after the other ({env: (changes, tables) or an error})."""
        return "\n\n".join(f"== {name} ==\n" + (f"error: {outcome}" if isinstance(outcome, Exception)
                                                else self.plan(*outcome)) for name, outcome in outcomes.items())

    def waits(self, outcomes: dict) -> str:
        """Per environment, one wait after the other ({env: WaitResult or an error})."""
        return "\n\n".join(f"== {name} ==\n" + (f"error: {outcome}" if isinstance(outcome, Exception)
                                                else self.wait(outcome)) for name, outcome in outcomes.items())

    def checks_by_environment(self, by_environment: dict) -> str:
        """One table, a row per check and a column per environment; then what did not pass."""
        names = list(by_environment)
        ids = list(dict.fromkeys(r.id for results in by_environment.values() for r in results))
        status = {(name, r.id): r.status for name, results in by_environment.items() for r in results}
        width = max([len("check")] + [len(i) for i in ids])
        columns = [max(len(n), 5) for n in names]
        lines = ["  ".join([f"{'check':<{width}}", *(f"{n:<{w}}" for n, w in zip(names, columns, strict=True))])]
        for check_id in ids:
            cells = [f"{(status.get((n, check_id)) or '-').upper():<{w}}" for n, w in zip(names, columns, strict=True)]
            lines.append("  ".join([f"{check_id:<{width}}", *cells]))
        for name, results in by_environment.items():
            bad = [r for r in results if r.status is not Status.PASS]
            if bad:
                lines.append(f"\n== {name} ==")
                lines += self.checks(bad).splitlines()[:-1]
        totals = {name: summarize(results) for name, results in by_environment.items()}
        lines.append("\n" + "; ".join(f"{name}: {s['pass']}/{s['total']} passed, {s['fail']} failed, {s['error']} errors"
                                      for name, s in totals.items()))
        return "\n".join(lines)

    def migrations(self, results: list) -> str:
        """A line per migration (MigrationResult), then the keys and warnings it names."""
        lines = [f"  {r.id:<32} {r.status:<16} {r.detail}" for r in results] or ["No migrations declared."]
        for r in results:
            lines += [f"      key {json.dumps(k) if not isinstance(k, str) else k}" for k in r.keys]
            lines += [f"      warning: {w}" for w in r.warnings]
        return "\n".join(lines)

    def nothing_to_migrate(self) -> str:
        return "Nothing to migrate: every migration is done."

    def policy(self, document: dict) -> str:
        lines = [f"Allow {', '.join(s['Action'])}\n  on {s['Resource']}" for s in document["Statement"]]
        lines.append(f"\n{len(document['Statement'])} statement(s). As a policy document: "
                     "checker iam-policy --format json (same options)")
        return "\n".join(lines)


class JsonFormatter:
    name = "json"

    def validate(self, files: int, problems: list) -> str:
        return to_json({"valid": not problems, "files": files, "problems": [p.to_dict() for p in problems]})

    def plan(self, changes: list, tables: int, apply_command: str = "") -> str:
        pending = [c for c in changes if c.pending]
        return to_json({"changes": [c.to_dict() for c in pending], "in_sync": not pending, "tables": tables,
                        "not_compared": [c.to_dict() for c in changes if not c.pending
                                         and c.action not in (NOT_READY, Action.RETIRING_INDEX)],
                        "not_ready": [c.to_dict() for c in changes if c.action == NOT_READY],
                        "retiring": [c.to_dict() for c in changes if c.action == Action.RETIRING_INDEX]})

    def apply(self, result: ApplyResult, wait: Optional[WaitResult]) -> str:
        return to_json({
            "changes": [o.to_dict() for o in result.outcomes],
            "applied": len(result.made),
            "failed": len(result.failed),
            "held": len(result.held),
            "manual": len(result.manual),
            "active": bool(wait and wait.ready),
            "ok": result.ok,
        })

    def wait(self, result: WaitResult) -> str:
        return to_json({"ready": result.ready, "seconds": round(result.seconds, 3),
                        "tables": [s.to_dict() for s in result.states]})

    def checks(self, results: list) -> str:
        return to_json({"results": [r.to_dict() for r in results], "summary": summarize(results)})

    def migrations(self, results: list) -> str:
        return to_json({"migrations": [r.to_dict() for r in results]})

    def nothing_to_migrate(self) -> str:
        return self.migrations([])

    def policy(self, document: dict) -> str:
        return to_json(document)  # the bare document: `> policy.json` is ready for put-role-policy

    def plans(self, outcomes: dict) -> str:
        documents = {name: ({"error": str(outcome)} if isinstance(outcome, Exception) else json.loads(self.plan(*outcome)))
                     for name, outcome in outcomes.items()}
        return to_json({"environments": documents})

    def waits(self, outcomes: dict) -> str:
        documents = {name: ({"error": str(outcome)} if isinstance(outcome, Exception) else json.loads(self.wait(outcome)))
                     for name, outcome in outcomes.items()}
        return to_json({"environments": documents})

    def checks_by_environment(self, by_environment: dict) -> str:
        every = [r for results in by_environment.values() for r in results]
        return to_json({"environments": {name: {"results": [r.to_dict() for r in results],
                                                "summary": summarize(results)}
                                         for name, results in by_environment.items()},
                        "summary": summarize(every)})


class JunitFormatter:
    """JUnit XML, for CI test reports: one testcase per check, grouped by kind as classname.
    Only the commands that report checks offer it."""

    name = "junit"

    def checks(self, results: list, suite: str = "checker") -> str:
        return self.checks_by_environment({suite: results}, root_name=suite)

    def checks_by_environment(self, by_environment: dict, root_name: str = "checker") -> str:
        """One testsuite per environment."""
        root = ElementTree.Element("testsuites", name=root_name)
        several = len(by_environment) > 1 or root_name not in by_environment
        for name, results in by_environment.items():
            self._suite(root, xml_text(name), results, f"checker.{xml_text(name)}" if several else "checker")
        ElementTree.indent(root)
        return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)

    def _suite(self, root, suite: str, results: list, classname: str) -> None:
        """Test cases named by check id, classed by environment and kind: unique across environments."""
        s = summarize(results)
        suite_element = ElementTree.SubElement(root, "testsuite", name=suite, tests=str(s["total"]),
                                               failures=str(s["fail"]), errors=str(s["error"]),
                                               skipped=str(s["skip"]),
                                               time=f"{sum(r.seconds for r in results):.3f}")
        for r in results:
            case = ElementTree.SubElement(suite_element, "testcase", name=xml_text(r.id), classname=f"{classname}.{r.kind}",
                                          time=f"{r.seconds:.3f}")
            text = xml_text("\n".join(filter(None, [f"expected: {r.expected}" if r.expected else "",
                                                    f"found: {r.found}" if r.found else "", *r.details,
                                                    f"fix: {r.remediation}" if r.remediation else ""])))
            summary = xml_text(r.summary)
            if r.status is Status.FAIL:
                ElementTree.SubElement(case, "failure", message=summary).text = text
            elif r.status is Status.ERROR:
                ElementTree.SubElement(case, "error", message=summary).text = text
            elif r.status is Status.SKIP:
                ElementTree.SubElement(case, "skipped", message=summary)
            elif r.status is Status.WARN:
                ElementTree.SubElement(case, "system-out").text = f"WARNING: {summary}\n{text}"


# Colour on a terminal only (the CLI decides: a TTY, and NO_COLOR unset): the words and symbols a
# reader scans for. Applied to the text format's lines after everything else, so it never changes
# what a pipe, a file or a CI log receives.
ANSI = {"green": "32", "yellow": "33", "red": "31", "dim": "2", "bold_red": "1;31"}
CHECK_COLOURS = {"PASS": "green", "WARN": "yellow", "FAIL": "bold_red", "ERROR": "red", "SKIP": "dim"}
PLAN_COLOURS = {"+": "green", "~": "yellow", "!": "red", "?": "dim", ".": "yellow"}
CHECK_LINE = re.compile(r"^(PASS|WARN|FAIL|ERROR|SKIP)(?= )", re.MULTILINE)
PLAN_LINE = re.compile(r"^  ([+~!?.])(?= )", re.MULTILINE)


def painted(text: str, colour: str) -> str:
    return f"\x1b[{ANSI[colour]}m{text}\x1b[0m"


def colour(text: str) -> str:
    """The text format with its status words (PASS/FAIL/WARN/...) and plan symbols (+ ~ !) in colour."""
    text = CHECK_LINE.sub(lambda m: painted(m.group(1), CHECK_COLOURS[m.group(1)]), text)
    return PLAN_LINE.sub(lambda m: "  " + painted(m.group(1), PLAN_COLOURS[m.group(1)]), text)


def xml_text(text: str) -> str:
    """Characters XML cannot carry, shown as \\xNN instead."""
    return NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


FORMATTERS = {f.name: f for f in (TextFormatter(), JsonFormatter(), JunitFormatter(), MarkdownFormatter(),
                                   GithubFormatter(), SarifFormatter(), HtmlFormatter())}


def formats_for(method: str) -> tuple:
    """The formats that can show a kind of result (`checks`, `plan`, ...), for a command's --format."""
    return tuple(name for name, formatter in FORMATTERS.items() if hasattr(formatter, method))


def formatter(name: str):
    return FORMATTERS[name]
