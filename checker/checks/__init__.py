"""The loop that runs the kinds of check (named once, in checker/kinds.py): each failure a result,
never a crash. An AWS endpoint that cannot be reached is found once; the remaining AWS checks are
then reported as errors with the same reason instead of each waiting out botocore's retries again.
"""
from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable

from ..context import CheckContext
from ..errors import AwsError, CheckerError
from ..kinds import KIND_NAMES, KINDS, SMOKE_KINDS, CheckKind, sections_of
from ..results import CheckResult, Status
from ..text import clip

__all__ = ["KINDS", "KIND_NAMES", "SMOKE_KINDS", "CheckKind", "sections_of", "run_checks"]
Log = Callable[[str], None]


def run_checks(ctx: CheckContext, kinds, log: Log = lambda m: None) -> list:
    results: list = []
    unreachable = None
    for kind in KINDS:
        if kind.name not in kinds:
            continue
        if kind.section != "tables" and not ctx.checklist.has(kind.section):
            results.append(not_in_checklist(kind))
            continue
        if unreachable and kind.needs_aws:
            results.append(CheckResult(kind.name, kind.name, Status.ERROR, f"not checked: {unreachable}"))
            continue
        started = time.monotonic()
        try:
            found = kind.run_function()(ctx, log)
        except CheckerError as exc:
            found = [CheckResult(kind.name, kind.name, Status.ERROR, str(exc))]
            if isinstance(exc, AwsError) and exc.unreachable:
                unreachable = str(exc)
        except Exception as exc:  # noqa: BLE001 - one kind's surprise is its own error; the others still run
            found = [unexpected(kind.name, kind.name, exc)]
        elapsed = time.monotonic() - started
        results += timed(found, elapsed)
        log(f"{kind.name}: checked in {elapsed:.1f}s")
    return blame_tables(results, frozenset(ctx.checklist.bindings.values()))


def unexpected(check_id: str, kind: str, exc: Exception) -> CheckResult:
    """A check that raised what nobody expected: its error result, with the exception's type and
    (clipped) message, never a traceback; the CLI masks it as it masks everything."""
    return CheckResult(check_id, kind, Status.ERROR,
                       f"not checked: unexpected {type(exc).__name__}: {clip(str(exc), 200)} (a bug in checker)")


def timed(results: list, elapsed: float) -> list:
    """Each result with its time: its own where the check measured it (an endpoint's requests),
    else an equal share of its kind's time (the kind's checks are looked at together, e.g. the
    tables read concurrently)."""
    unmeasured = [r for r in results if not r.seconds]
    share = max(0.0, elapsed - sum(r.seconds for r in results)) / max(1, len(unmeasured))
    return [r if r.seconds else dataclasses.replace(r, seconds=share) for r in results]


DYNAMODB_ERRORS = ("ResourceNotFoundException", "Requested resource not found", "Cannot do operations on a non-existent table")


def blame_tables(results: list, bound: frozenset = frozenset()) -> list:
    """A failing endpoint names a missing or not-ready table, and its fix, only with evidence:
    its answer names the table or DynamoDB's error for it (the real app's 502 body says
    ResourceNotFoundException), or it is a 5xx from the function and the function's ERROR lines
    of the run (the logs check's samples) name the table, or else the table is one the function
    is bound to (`bound`: spec names; none declared: any broken one). A name that does
    not resolve, no answer, or a 4xx (a route that does not exist) name their own cause."""
    broken = {r.id.partition(":")[2]: r for r in results
              if r.kind == "tables" and r.status is Status.FAIL and r.checker_command}
    if not broken:
        return results
    # the function's own ERROR lines of this run (the logs check's samples): a 5xx they explain
    logged = " ".join(d for r in results if r.kind == "logs" and r.status.failing for d in r.details)

    def names(answer: str, table: CheckResult) -> bool:
        """The answer names the table's live name (its summary's "table NAME ..."), whole: track is
        not named by "tracks", liked_songs not by liked_songs_metadata."""
        live = table.summary.split(" ", 2)[1] if table.summary.startswith("table ") else ""
        return bool(live) and re.search(rf"(?<![\w.-]){re.escape(live)}(?![\w.-])", answer) is not None

    def suspects(result: CheckResult) -> list:
        answer = f"{result.summary} {result.found}"
        named = [r for r in broken.values() if names(answer, r)]
        if named:
            return named
        in_logs = [r for r in broken.values() if names(logged, r)]
        if in_logs and result.answered is not None and result.answered >= 500:
            return in_logs
        if any(error in answer for error in DYNAMODB_ERRORS):
            return list(broken.values())
        if result.answered is not None and result.answered >= 500:
            return [r for name, r in broken.items() if not bound or name in bound]
        return []

    def blamed(result: CheckResult) -> CheckResult:
        if result.kind != "endpoints" or not result.status.failing or not (tables := suspects(result)):
            return result
        why = "; ".join(r.summary for r in tables)
        return dataclasses.replace(result, details=result.details + (f"probably because {why}",),
                                   remediation=f"{why}: run", checker_command=tables[0].checker_command)
    return [blamed(r) for r in results]


def not_in_checklist(kind: CheckKind) -> CheckResult:
    """A kind the checklist does not ask for was not looked at: neither a pass nor a failure."""
    return CheckResult(kind.name, kind.name, Status.SKIP, f"not in the checklist (no `{kind.section}:` section)")
