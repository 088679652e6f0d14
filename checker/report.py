"""Formatters: one function per (result, format). Results go to stdout; progress never does."""
from __future__ import annotations

import json
from dataclasses import dataclass
from xml.etree import ElementTree

from .apply import CAPACITY_FLAG, ApplyResult
from .diff import Change
from .wait import WaitResult

SYMBOLS = {"create-table": "+", "create-index": "+"}


def to_json(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=False)


def validate_text(files: int, problems: list) -> str:
    if not problems:
        return f"OK: {files} file(s) valid"
    return "\n".join(str(p) for p in problems) + f"\n{len(problems)} problem(s) found"


def validate_json(files: int, problems: list) -> str:
    return to_json({"valid": not problems, "files": files, "problems": [p.to_dict() for p in problems]})


def _change_line(change: Change, width: int) -> str:
    if not change.pending:
        symbol, note = "?", "  [not compared]"
    elif not change.automatic:
        symbol, note = "!", "  [manual step]"
    elif change.gate:
        symbol, note = "~", f"  [needs {CAPACITY_FLAG}]"
    else:
        symbol, note = SYMBOLS.get(change.action, "~"), ""
    return f"  {symbol} {change.table:<{width}}  {change.action:<24} {change.detail}{note}"


def plan_text(changes: list, tables: int) -> str:
    pending = [c for c in changes if c.pending]
    lines = []
    if not pending:
        lines.append(f"In sync: {tables} table(s) match their specs.")
    else:
        width = max(len(c.table) for c in changes)
        gated = sum(c.automatic and bool(c.gate) for c in pending)
        automatic = sum(c.automatic for c in pending) - gated
        lines.append(f"Plan: {len(pending)} change(s) for {tables} table(s):")
        lines += [_change_line(c, width) for c in pending]
        lines.append(f"{automatic} automatic (run `checker apply`), {gated} unlocked by `checker apply "
                     f"{CAPACITY_FLAG}`, {len(pending) - automatic - gated} need a manual step.")
    unchecked = [c for c in changes if not c.pending]
    if unchecked:
        width = max(len(c.table) for c in unchecked)
        lines.append(f"Not compared ({len(unchecked)}): stated in a spec, but checker cannot compare them:")
        lines += [_change_line(c, width) for c in unchecked]
    return "\n".join(lines)


def plan_json(changes: list, tables: int) -> str:
    pending = [c for c in changes if c.pending]
    return to_json({"changes": [c.to_dict() for c in pending], "in_sync": not pending, "tables": tables,
                    "not_compared": [c.to_dict() for c in changes if not c.pending]})


def apply_text(result: ApplyResult, wait: WaitResult | None) -> str:
    if not result.outcomes:
        return "Nothing to do: every table matches its spec."
    width = max(len(o.change.table) for o in result.outcomes)
    lines = []
    for outcome in result.outcomes:
        note = f": {outcome.message}" if outcome.message and outcome.status != "manual" else ""
        lines.append(f"  {outcome.status:<19} {outcome.change.table:<{width}}  {outcome.change.action:<24} "
                     f"{outcome.change.detail}{note}")
    done = sum(o.status in ("applied", "already-in-progress") for o in result.outcomes)
    held = f", {len(result.held)} held back" if result.held else ""
    lines.append(f"{done} applied, {len(result.failed)} failed, not run or not in effect{held}, "
                 f"{len(result.manual)} need a manual step.")
    if wait is not None and wait.ready:
        lines.append(f"All {len(wait.states)} table(s) and their indexes are ACTIVE.")
    return "\n".join(lines)


def apply_json(result: ApplyResult, wait: WaitResult | None) -> str:
    return to_json({
        "changes": [o.to_dict() for o in result.outcomes],
        "applied": sum(o.status in ("applied", "already-in-progress") for o in result.outcomes),
        "failed": len(result.failed),
        "held": len(result.held),
        "manual": len(result.manual),
        "active": bool(wait and wait.ready),
        "ok": result.ok,
    })


def wait_text(result: WaitResult) -> str:
    lines = [f"  {s.name}: {s.summary()}" for s in result.states]
    if result.ready:
        lines.append(f"All {len(result.states)} table(s) and their indexes are ACTIVE ({result.seconds:.1f}s).")
    return "\n".join(lines)


def wait_json(result: WaitResult) -> str:
    return to_json({"ready": result.ready, "seconds": round(result.seconds, 3),
                    "tables": [s.to_dict() for s in result.states]})


# -- checks: `checker check`, `smoke`, `bootstrap` ---------------------------------------------

STATUSES = ("pass", "warn", "fail", "error", "skip")
FAILING = ("fail", "error")


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. `expected`/`found` are for a person at 2 a.m.; `remediation` is the
    command that fixes it. Nothing secret may be put in any field (callers mask first)."""

    id: str
    kind: str
    status: str
    summary: str
    expected: str = ""
    found: str = ""
    remediation: str = ""
    details: tuple = ()

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status, "summary": self.summary,
                "expected": self.expected, "found": self.found, "remediation": self.remediation,
                "details": list(self.details)}


def summarize(results: list) -> dict:
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    return {"total": len(results), **counts, "ok": not any(r.status in FAILING for r in results)}


def checks_text(results: list) -> str:
    lines = []
    for r in results:
        lines.append(f"{r.status.upper():<5} {r.id}: {r.summary}")
        if r.status != "pass":
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


def checks_json(results: list) -> str:
    return to_json({"results": [r.to_dict() for r in results], "summary": summarize(results)})


def checks_junit(results: list, suite: str = "checker") -> str:
    """JUnit XML: one testcase per check, grouped by kind as classname, for CI test reports."""
    root = ElementTree.Element("testsuites", name=suite)
    s = summarize(results)
    suite_element = ElementTree.SubElement(root, "testsuite", name=suite, tests=str(s["total"]),
                                           failures=str(s["fail"]), errors=str(s["error"]), skipped=str(s["skip"]))
    for r in results:
        case = ElementTree.SubElement(suite_element, "testcase", name=r.id, classname=f"checker.{r.kind}")
        text = "\n".join(filter(None, [f"expected: {r.expected}" if r.expected else "",
                                       f"found: {r.found}" if r.found else "", *r.details,
                                       f"fix: {r.remediation}" if r.remediation else ""]))
        if r.status == "fail":
            ElementTree.SubElement(case, "failure", message=r.summary).text = text
        elif r.status == "error":
            ElementTree.SubElement(case, "error", message=r.summary).text = text
        elif r.status == "skip":
            ElementTree.SubElement(case, "skipped", message=r.summary)
        elif r.status == "warn":
            ElementTree.SubElement(case, "system-out").text = f"WARNING: {r.summary}\n{text}"
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


CHECK_FORMATTERS = {"text": checks_text, "json": checks_json, "junit": checks_junit}
