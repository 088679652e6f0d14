"""The kinds of check, named once: each with the AWS service it talks to, the checklist section it
reads (so a command asks only for that section's ${VAR}s), its help line and where its runner
lives. Imports nothing heavy, so `checker --help` stays fast; the runner is imported when run."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckKind:
    name: str
    service: str              # the AWS service its calls go to
    section: str              # the checklist section it reads
    runner: str               # "module:function", called with (CheckContext, log)
    help: str
    needs_aws: bool = True    # False: still runs when AWS cannot be reached

    def run_function(self) -> Callable:
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(module), function)


KINDS = (
    CheckKind("tables", "dynamodb", "tables", "checker.checks.tables:check_tables",
              "exist, ACTIVE, every GSI ACTIVE, match their spec"),
    CheckKind("lambda", "lambda", "lambda", "checker.checks.function:check_function",
              "the function exists; required environment variables are set (values never shown)"),
    CheckKind("bindings", "lambda", "lambda", "checker.checks.function:check_bindings",
              "the variables naming tables (lambda.bindings) hold this environment's table names"),
    CheckKind("entry_point", "apigateway", "entry_point", "checker.checks.entry_point:check_entry_point",
              "a Function URL or an API Gateway API integrates the function"),
    CheckKind("iam", "iam", "iam", "checker.checks.iam:check_iam",
              "the function's role allows the DynamoDB actions the app uses, on each table/index ARN"),
    CheckKind("items", "dynamodb", "items", "checker.checks.items:check_items",
              "items the app needs exist with the attributes named (values never shown)"),
    CheckKind("endpoints", "lambda", "endpoints", "checker.checks.endpoints:check_endpoints",
              "the app's endpoints answer as the checklist says (secrets masked)", needs_aws=False),
    CheckKind("logs", "logs", "logs", "checker.checks.logs:settle_then_check_logs",
              "ERROR lines in the function's log group since --since, against a threshold"),
    CheckKind("migrations", "dynamodb", "tables", "checker.checks.migrations:check_migrations",
              "no migration is pending (tables.*.migrate_from, migrations/NNNN_name.py)"),
)
KIND_NAMES = tuple(k.name for k in KINDS)
SMOKE_KINDS = ("tables", "endpoints", "logs")   # smoke's tables: readiness only


def sections_of(kinds) -> tuple:
    """The checklist sections these kinds read, beside the environments and tables every command uses."""
    return ("environments", "tables") + tuple(dict.fromkeys(k.section for k in KINDS if k.name in kinds))
