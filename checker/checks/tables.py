"""The `tables` check: each table exists, is ACTIVE with every GSI, and the plan's diff finds nothing."""
from __future__ import annotations

from ..context import CheckContext
from ..diff import diff_table
from ..live import read_table
from ..results import CAPACITY_FLAG, CheckResult, Status
from ..wait import table_state


def check_tables(ctx: CheckContext, log=None) -> list:
    client = ctx.client("dynamodb")
    results = []
    for table in ctx.tables:
        live = read_table(client, table)
        check_id = f"table:{table.name}"
        expected = f"ACTIVE, every GSI ACTIVE, matching {table.spec.file}"
        if not live.exists:
            results.append(CheckResult(check_id, "tables", Status.FAIL, f"table {table.name} does not exist",
                                       expected=expected, found="ResourceNotFoundException",
                                       checker_command="apply"))
            continue
        state = table_state(table.name, live.description)
        everything = diff_table(table, live)
        changes = [c for c in everything if c.pending]
        unchecked = [c.target for c in everything if not c.pending]
        if not state.ready:
            results.append(CheckResult(check_id, "tables", Status.FAIL, f"table {table.name} is not ready",
                                       expected=expected, found=state.summary(), checker_command="wait"))
        elif changes:
            if any(c.automatic and not c.gate for c in changes):
                note, command = "", "apply"
            elif any(c.automatic for c in changes):
                note, command = "", f"apply {CAPACITY_FLAG}"
            else:
                note, command = "a manual step, shown by", "plan"
            results.append(CheckResult(
                check_id, "tables", Status.FAIL, f"table {table.name} differs from its spec",
                expected=expected, found="; ".join(f"{c.action}: {c.detail}" for c in changes), remediation=note,
                checker_command=command))
        elif unchecked:
            results.append(CheckResult(check_id, "tables", Status.WARN,
                                       f"table {table.name} is ACTIVE and matches its spec where compared",
                                       expected=expected, found=f"not compared: {', '.join(unchecked)}",
                                       remediation="check these fields by hand"))
        else:
            results.append(CheckResult(check_id, "tables", Status.PASS, f"table {table.name} is ACTIVE and matches its spec",
                                       expected=expected, found=state.summary()))
    return results
