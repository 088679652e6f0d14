"""What checker's operations return: small result types with enum statuses, and no formatting.

Statuses are `str` enums so a result serialises to the same words the JSON and text outputs have
always used (`"pass"`, `"applied"`), while code compares members, not spelled-out strings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .model import Change, Words
from .text import escape_controls

CAPACITY_FLAG = "--allow-capacity-changes"   # what unlocks held capacity changes, named in results
DEFAULT_CONCURRENCY = None   # apply's in-flight operations: DynamoDB's own limit (apply.control_plane_limit)


class Status(Words):
    """A check's outcome. Only PASS means "looked at, and right"; WARN passes the run but says
    what could not be vouched for; FAIL and ERROR fail it; SKIP is a section the checklist leaves out."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"

    @property
    def failing(self) -> bool:
        return self in (Status.FAIL, Status.ERROR)



@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. `expected`/`found` are for a person at 2 a.m.; `remediation` is the
    command that fixes it (an `aws` command, or words); `checker_command` is the checker command
    that fixes it, as a subcommand and its own options ("apply"), which the caller completes with
    the options that pick the environment. Nothing secret may be put in any field (callers mask
    first)."""

    id: str
    kind: str
    status: Status
    summary: str
    expected: str = ""
    found: str = ""
    remediation: str = ""
    details: tuple = ()
    checker_command: str = ""
    seconds: float = field(default=0.0, compare=False)   # how long it took (JUnit's time=)
    answered: Optional[int] = field(default=None, compare=False)   # an endpoint's HTTP status (None: no answer)

    def __post_init__(self):
        # Text from elsewhere (an endpoint's answer, an AWS message) may hold line breaks and
        # terminal escapes: escaped here, before any formatter, a forged `PASS ...` line or a
        # cleared screen cannot reach any output, and text, JSON and JUnit show the same text.
        for name in ("summary", "expected", "found", "remediation"):
            object.__setattr__(self, name, escape_controls(getattr(self, name)))
        object.__setattr__(self, "details", tuple(escape_controls(d) for d in self.details))

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status.value, "summary": self.summary,
                "expected": self.expected, "found": self.found, "remediation": self.remediation,
                "details": list(self.details)}


def gate_passes(results: list, strict: bool = False) -> bool:
    """The gate's rule: no failure nor error; with `strict`, no warning either (a check that could
    look only in part does not pass)."""
    return summarize(results)["ok"] and not (strict and any(r.status is Status.WARN for r in results))


def summarize(results: list) -> dict:
    counts = {status.value: sum(r.status is status for r in results) for status in Status}
    return {"total": len(results), **counts, "ok": not any(r.status.failing for r in results)}


class Outcome(Words):
    """What apply did with one change of the plan."""

    APPLIED = "applied"
    ALREADY_IN_PROGRESS = "already-in-progress"   # someone else was making it; it was waited on
    FAILED = "failed"
    NOT_RUN = "not-run"                           # an earlier change to the same table failed
    NOT_IN_EFFECT = "not-in-effect"               # acknowledged, but not there when read again
    HELD = "held"                                 # needs --allow-capacity-changes, or a person first
    MANUAL = "manual"                             # checker never makes this change
    MIGRATE = "migrate"                           # `checker migrate` makes it, not apply

    @property
    def made(self) -> bool:
        return self in (Outcome.APPLIED, Outcome.ALREADY_IN_PROGRESS)

    @property
    def failing(self) -> bool:
        return self in (Outcome.FAILED, Outcome.NOT_RUN, Outcome.NOT_IN_EFFECT)


@dataclass(frozen=True)
class ChangeOutcome:
    change: Change
    status: Outcome
    message: str = ""
    seconds: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "message", escape_controls(self.message))  # AWS's words: see CheckResult

    def to_dict(self) -> dict:
        return {**self.change.to_dict(), "status": self.status.value, "message": self.message,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class ApplyResult:
    outcomes: list
    # {table: its DescribeTable as apply's loop last saw it, ready, after its last change}: a read
    # made after the change, which the wait and the verification need not make again
    seen: dict = field(default_factory=dict, compare=False)

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if o.status.failing]

    @property
    def manual(self) -> list:
        return [o for o in self.outcomes if o.status is Outcome.MANUAL]

    @property
    def held(self) -> list:
        return [o for o in self.outcomes if o.status is Outcome.HELD]

    @property
    def made(self) -> list:
        return [o for o in self.outcomes if o.status.made]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.manual and not self.held


