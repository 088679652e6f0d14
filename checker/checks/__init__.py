"""The kinds of check, in one registry, and the loop that runs them: each failure a result, never a crash.

A kind is named once, here, with the AWS service it talks to (for error messages), the checklist
section it reads (so a command asks only for that section's ${VAR}s) and its runner. An AWS
endpoint that cannot be reached is found once; the remaining AWS checks are then reported as
errors with the same reason instead of each waiting out botocore's retries again.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..context import CheckContext
from ..errors import AwsError, CheckerError
from ..results import CheckResult, Status
from .endpoints import check_endpoints
from .entry_point import check_entry_point
from .function import check_bindings, check_function
from .iam import check_iam
from .logs import check_logs
from .tables import check_tables

Log = Callable[[str], None]


@dataclass(frozen=True)
class CheckKind:
    name: str
    service: str              # the AWS service its calls go to
    section: str              # the checklist section it reads
    run: Callable             # (CheckContext, log) -> list of CheckResult
    needs_aws: bool = True    # False: still runs when AWS cannot be reached
    help: str = ""


def _settle_then_check_logs(ctx: CheckContext, log: Log) -> list:
    if ctx.logs_settle:
        log(f"logs: waiting {ctx.logs_settle:g}s for CloudWatch Logs to ingest recent events")
        time.sleep(ctx.logs_settle)
    return check_logs(ctx)


KINDS = (
    CheckKind("tables", "dynamodb", "tables", lambda c, log: check_tables(c),
              help="exist, ACTIVE, every GSI ACTIVE, match their spec"),
    CheckKind("lambda", "lambda", "lambda", lambda c, log: check_function(c),
              help="the function exists; required environment variables are set (values never shown)"),
    CheckKind("bindings", "lambda", "lambda", lambda c, log: check_bindings(c),
              help="the variables naming tables (lambda.bindings) hold this environment's table names"),
    CheckKind("entry_point", "apigateway", "entry_point", lambda c, log: check_entry_point(c),
              help="a Function URL or an API Gateway API integrates the function"),
    CheckKind("iam", "iam", "iam", lambda c, log: check_iam(c),
              help="the function's role allows the DynamoDB actions the app uses, on each table/index ARN"),
    CheckKind("endpoints", "lambda", "endpoints", check_endpoints, needs_aws=False,
              help="the app's endpoints answer as the checklist says (secrets masked)"),
    CheckKind("logs", "logs", "logs", _settle_then_check_logs,
              help="ERROR lines in the function's log group since --since, against a threshold"),
)
KIND_NAMES = tuple(k.name for k in KINDS)
SMOKE_KINDS = ("endpoints", "logs")


def sections_of(kinds) -> tuple:
    """The checklist sections these kinds read, beside the environments and tables every command uses."""
    return ("environments", "tables") + tuple(dict.fromkeys(k.section for k in KINDS if k.name in kinds))


def run_checks(ctx: CheckContext, kinds, log: Log = lambda m: None) -> list:
    results: list = []
    unreachable = None
    for kind in KINDS:
        if kind.name not in kinds:
            continue
        if unreachable and kind.needs_aws:
            results.append(CheckResult(kind.name, kind.name, Status.ERROR, f"not checked: {unreachable}"))
            continue
        started = time.monotonic()
        try:
            results += kind.run(ctx, log)
        except CheckerError as exc:
            results.append(CheckResult(kind.name, kind.name, Status.ERROR, str(exc)))
            if isinstance(exc, AwsError) and exc.unreachable:
                unreachable = str(exc)
        log(f"{kind.name}: checked in {time.monotonic() - started:.1f}s")
    return results
