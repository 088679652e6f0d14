"""The one decision: what `apply` will do with each change of a plan. plan's counts, apply's
prompt and apply itself all ask here, so the three can never disagree.

- AUTOMATIC: apply makes it;
- GATED: a capacity change (billing switch, capacity decrease): made only with --allow-capacity-changes;
- HELD: an automatic change on a table that needs a manual step first (its key schema): nothing
  else is changed on that table;
- MANUAL: checker never makes it;
- MIGRATE: `checker migrate` makes it (a table migration, a data migration), apply never does;
- OWNED: a change to a table a template owns (checker/iac): the template's deploy makes it; apply
  only with --create (creating what a stack should own makes its next deploy fail);
- NOTE: not a change (a field not compared, a table still building).
"""
from __future__ import annotations

from enum import Enum
from typing import Optional

from .model import MIGRATIONS, Action
from .results import CAPACITY_FLAG


class Decision(str, Enum):
    AUTOMATIC = "automatic"
    GATED = "gated"
    HELD = "held"
    MANUAL = "manual"
    MIGRATE = "migrate"
    OWNED = "owned"
    NOTE = "note"


CREATE_FLAG = "--create"    # apply makes the changes a template's deploy should (OWNED) anyway


def decide(change, changes: list, allow_capacity_changes: bool = False) -> tuple:
    """(Decision, why) for one change of `changes`."""
    if not change.pending:
        return Decision.NOTE, ""
    if change.action in MIGRATIONS:
        return Decision.MIGRATE, "made by checker migrate"
    if not change.automatic:
        return Decision.MANUAL, "needs a manual step"
    if change.owner:
        return Decision.OWNED, (f"held back: {change.owner} owns this table: deploy the template (its deploy makes the "
                                f"change; a table apply created would make that deploy fail), or apply {CREATE_FLAG}")
    if any(c.table == change.table and c.action == Action.REPLACE_TABLE for c in changes):
        return Decision.HELD, "held back: the table needs a manual step first (replace-table); nothing else is changed on it"
    if change.gate and not allow_capacity_changes:
        return Decision.GATED, f"held back: a capacity change; make it with {CAPACITY_FLAG}"
    return Decision.AUTOMATIC, ""


def to_apply(changes: list, allow_capacity_changes: bool = False) -> list:
    """The changes apply will send, in plan order."""
    return [c for c in changes if decide(c, changes, allow_capacity_changes)[0] is Decision.AUTOMATIC]


def counts(changes: list) -> dict:
    """{Decision: how many} of a plan, capacity changes not allowed (what plan shows)."""
    found = {d: 0 for d in Decision}
    for change in changes:
        found[decide(change, changes)[0]] += 1
    return found


def hold_reason(change, changes: list, allow_capacity_changes: bool) -> Optional[str]:
    """Why an automatic change is not made now, or None to make it."""
    decision, why = decide(change, changes, allow_capacity_changes)
    return why if decision in (Decision.GATED, Decision.HELD, Decision.OWNED) else None


def made_anyway(changes: list) -> list:
    """apply --create: the changes a template's deploy should make, made by apply."""
    import dataclasses
    return [dataclasses.replace(c, owner="") if c.owner else c for c in changes]
