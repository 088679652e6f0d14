"""The `tables` check: each table exists, is ACTIVE with every GSI, and the plan's diff finds nothing.

Every table is read at once through the same concurrent read `plan` uses. In a smoke test the
check is readiness only (exists, ACTIVE, every GSI of the spec present and ACTIVE): tag drift must not fail a
post-deploy gate, but a missing table must be named before the endpoints fail on it.
Check ids carry the spec's TableName, so that dev's and prod's rows line up side by side.
"""
from __future__ import annotations

from ..context import CheckContext
from ..diff import diff_table
from ..fixes import migrate_command
from ..live import read_tables
from ..model import Action, ExpectedTable, table_state
from ..results import CAPACITY_FLAG, CheckResult, Status


def check_tables(ctx: CheckContext, log=None) -> list:
    live_tables = read_tables(ctx.client("dynamodb"), ctx.tables)
    return [table_result(ctx, table, live_tables[table.name]) for table in ctx.tables]


def fix(table: ExpectedTable, command: str) -> dict:
    """The fix of what `apply` would make: for a table a template owns, its deploy (a table apply
    created would make that deploy fail), apply only as the named exception."""
    if not table.owner:
        return {"checker_command": command}
    return {"remediation": f"deploy {table.owner}, which owns the table (its deploy makes it as the template says; "
                           f"`checker {command} --create` makes it without the template)"}


def table_id(table: ExpectedTable) -> str:
    return f"table:{table.spec_name or table.name}"


def table_result(ctx: CheckContext, table: ExpectedTable, live) -> CheckResult:
    check_id = table_id(table)
    expected = "ACTIVE, every GSI of the spec present and ACTIVE" + ("" if ctx.smoke else f", matching {table.spec.file}")
    if not live.exists:
        if table.migrate_from:   # apply never creates a migration's target: the migration does
            return CheckResult(check_id, "tables", Status.FAIL, f"table {table.name} does not exist",
                               expected=expected, found="ResourceNotFoundException",
                               remediation=f"it is the target of a migration from {table.migrate_from}: run",
                               checker_command=migrate_command(table))
        return CheckResult(check_id, "tables", Status.FAIL, f"table {table.name} does not exist",
                           expected=expected, found="ResourceNotFoundException", **fix(table, "apply"))
    state = table_state(table.name, live.description, table.spec.global_index_names if ctx.smoke else ())
    if state.missing_indexes:       # smoke: the app's Query on it fails; check's diff says create-index
        return CheckResult(check_id, "tables", Status.FAIL,
                           f"table {table.name} lacks index(es) {', '.join(state.missing_indexes)} of its spec",
                           expected=expected, found=state.summary(), **fix(table, "apply"))
    if not state.ready:
        return CheckResult(check_id, "tables", Status.FAIL, f"table {table.name} is not ready",
                           expected=expected, found=state.summary(), checker_command="wait")
    if ctx.smoke:
        return CheckResult(check_id, "tables", Status.PASS, f"table {table.name} and its indexes are ACTIVE",
                           expected=expected, found=state.summary())
    everything = diff_table(table, live)
    changes = [c for c in everything if c.pending]
    retiring = [c for c in everything if c.action == Action.RETIRING_INDEX]
    unchecked = [c.target for c in everything if not c.pending and c not in retiring]
    if changes:
        if any(c.automatic and not c.gate for c in changes):
            note, command = "", "apply"
        elif any(c.automatic for c in changes):
            note, command = "", f"apply {CAPACITY_FLAG}"
        else:
            note, command = "a manual step, shown by", "plan"
        return CheckResult(check_id, "tables", Status.FAIL, f"table {table.name} differs from its spec",
                           expected=expected, found="; ".join(f"{c.action}: {c.detail}" for c in changes),
                           **(fix(table, command) if note == "" else {"remediation": note, "checker_command": command}))
    if retiring:
        return CheckResult(check_id, "tables", Status.WARN,
                           f"table {table.name} matches its spec; {len(retiring)} index(es) retiring",
                           expected=expected, found="; ".join(c.detail for c in retiring)
                           + (f"; not compared: {', '.join(unchecked)}" if unchecked else ""),
                           remediation="drop each retiring index by hand once nothing reads it")
    if unchecked:
        return CheckResult(check_id, "tables", Status.WARN,
                           f"table {table.name} is ACTIVE and matches its spec where compared",
                           expected=expected, found=f"not compared: {', '.join(unchecked)}",
                           remediation="check these fields by hand")
    return CheckResult(check_id, "tables", Status.PASS, f"table {table.name} is ACTIVE and matches its spec",
                       expected=expected, found=state.summary())
