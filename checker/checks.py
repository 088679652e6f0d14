"""`checker check`: run the checklist's checks by kind, each failure a result, never a crash.

An AWS endpoint that cannot be reached is found once; the remaining AWS checks are then reported
as errors with the same reason instead of each waiting out botocore's retries again.
"""
from __future__ import annotations

import time
from typing import Callable

import botocore.exceptions

from .apply import CAPACITY_FLAG
from .context import CheckContext
from .diff import diff_table
from .errors import CheckerError, describe_aws_error
from .iam_check import check_iam
from .lambda_checks import (
    check_bindings,
    check_entry_point,
    check_function,
    discovered_base_url,
)
from .live import read_table
from .logs import check_logs
from .report import CheckResult
from .smoke import check_endpoint
from .wait import table_state

KINDS = ("tables", "lambda", "bindings", "entry_point", "iam", "endpoints", "logs")
SMOKE_KINDS = ("endpoints", "logs")
SERVICE_OF_KIND = {"tables": "dynamodb", "lambda": "lambda", "bindings": "lambda", "entry_point": "apigateway", "iam": "iam",
                   "endpoints": "lambda", "logs": "logs"}
UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)


def check_tables(ctx: CheckContext) -> list:
    client = ctx.client("dynamodb")
    results = []
    for table in ctx.tables:
        live = read_table(client, table)
        check_id = f"table:{table.name}"
        expected = f"ACTIVE, every GSI ACTIVE, matching {table.spec.file}"
        if not live.exists:
            results.append(CheckResult(check_id, "tables", "fail", f"table {table.name} does not exist",
                                       expected=expected, found="ResourceNotFoundException",
                                       remediation=f"checker apply {ctx.command_options}".strip()))
            continue
        state = table_state(table.name, live.description)
        everything = diff_table(table, live)
        changes = [c for c in everything if c.pending]
        unchecked = [c.target for c in everything if not c.pending]
        if not state.ready:
            results.append(CheckResult(check_id, "tables", "fail", f"table {table.name} is not ready",
                                       expected=expected, found=state.summary(),
                                       remediation=f"checker wait {ctx.command_options}".strip()))
        elif changes:
            if any(c.automatic and not c.gate for c in changes):
                fix = f"checker apply {ctx.command_options}".strip()
            elif any(c.automatic for c in changes):
                fix = f"checker apply {CAPACITY_FLAG} {ctx.command_options}".strip()
            else:
                fix = "a manual step: see `checker plan`"
            results.append(CheckResult(
                check_id, "tables", "fail", f"table {table.name} differs from its spec",
                expected=expected, found="; ".join(f"{c.action}: {c.detail}" for c in changes), remediation=fix))
        elif unchecked:
            results.append(CheckResult(check_id, "tables", "warn",
                                       f"table {table.name} is ACTIVE and matches its spec where compared",
                                       expected=expected, found=f"not compared: {', '.join(unchecked)}",
                                       remediation="check these fields by hand"))
        else:
            results.append(CheckResult(check_id, "tables", "pass", f"table {table.name} is ACTIVE and matches its spec",
                                       expected=expected, found=state.summary()))
    return results


def check_endpoints(ctx: CheckContext, log: Callable[[str], None] = lambda m: None) -> list:
    if not ctx.checklist.endpoints:
        return [CheckResult("endpoints", "endpoints", "skip", "no endpoints in the checklist")]
    base_url = ctx.base_url
    if base_url is None and any(not e.url for e in ctx.checklist.endpoints):
        base_url = discovered_base_url(ctx)
    results = [check_endpoint(endpoint, base_url, log=log) for endpoint in ctx.checklist.endpoints]
    ctx.endpoints_called = any(r.status != "error" for r in results)
    return results


def run_checks(ctx: CheckContext, kinds, log: Callable[[str], None] = lambda m: None) -> list:
    def settle_then_check_logs(c: CheckContext) -> list:
        if c.logs_settle:
            log(f"logs: waiting {c.logs_settle:g}s for CloudWatch Logs to ingest recent events")
            time.sleep(c.logs_settle)
        return check_logs(c)

    runners = {"tables": check_tables, "lambda": check_function, "bindings": check_bindings, "entry_point": check_entry_point,
               "iam": check_iam, "endpoints": lambda c: check_endpoints(c, log), "logs": settle_then_check_logs}
    results: list = []
    unreachable = None
    for kind in KINDS:
        if kind not in kinds:
            continue
        if unreachable and kind != "endpoints":
            results.append(CheckResult(kind, kind, "error", f"not checked: {unreachable}"))
            continue
        started = time.monotonic()
        try:
            try:
                results += runners[kind](ctx)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                operation = getattr(exc, "operation_name", None)
                raise CheckerError(describe_aws_error(exc, operation, SERVICE_OF_KIND[kind])) from exc
        except CheckerError as exc:
            results.append(CheckResult(kind, kind, "error", str(exc)))
            if isinstance(exc.__cause__, UNREACHABLE):
                unreachable = str(exc)
        log(f"{kind}: checked in {time.monotonic() - started:.1f}s")
    return results
