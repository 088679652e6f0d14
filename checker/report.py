"""Formatters: one function per (result, format). Results go to stdout; progress never does."""
from __future__ import annotations

import json

from .apply import ApplyResult
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
    symbol = SYMBOLS.get(change.action, "~") if change.automatic else "!"
    manual = "" if change.automatic else "  [manual step]"
    return f"  {symbol} {change.table:<{width}}  {change.action:<24} {change.detail}{manual}"


def plan_text(changes: list, tables: int) -> str:
    if not changes:
        return f"In sync: {tables} table(s) match their specs."
    width = max(len(c.table) for c in changes)
    automatic = sum(c.automatic for c in changes)
    lines = [f"Plan: {len(changes)} change(s) for {tables} table(s):"]
    lines += [_change_line(c, width) for c in changes]
    lines.append(f"{automatic} automatic (run `checker apply`), {len(changes) - automatic} need a manual step.")
    return "\n".join(lines)


def plan_json(changes: list, tables: int) -> str:
    return to_json({"changes": [c.to_dict() for c in changes], "in_sync": not changes, "tables": tables})


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
    lines.append(f"{done} applied, {len(result.failed)} failed or not run, {len(result.manual)} need a manual step.")
    if wait is not None and wait.ready:
        lines.append(f"All {len(wait.states)} table(s) and their indexes are ACTIVE.")
    return "\n".join(lines)


def apply_json(result: ApplyResult, wait: WaitResult | None) -> str:
    return to_json({
        "changes": [o.to_dict() for o in result.outcomes],
        "applied": sum(o.status in ("applied", "already-in-progress") for o in result.outcomes),
        "failed": len(result.failed),
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
