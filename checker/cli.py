"""The `checker` command line: parse options, call the library, format, exit.

Exit codes: 0 all good; 1 a check failed or an error; 2 `plan --detailed-exitcode` found changes.
Results go to stdout, progress and errors to stderr.
"""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import click

from . import report
from .apply import apply_changes
from .aws import AwsOptions
from .checklist import Checklist, checklist_problems, load_checklist
from .diff import ExpectedTable, diff_tables
from .errors import CheckerError
from .live import read_tables
from .specs import load_specs, spec_files, validate_spec_files
from .wait import TableState, timeout_message, wait_until_active

DEFAULT_CHECKLIST = "checklist.yaml"
FORMATS = click.Choice(["text", "json"])


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def stderr(message: str) -> None:
    click.echo(message, err=True)


def handle_errors(command):
    """Every CheckerError becomes `error: ...` on stderr (and JSON on stdout) and exit 1."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            stderr("error: interrupted; changes already sent to AWS carry on there (run `checker plan` to see)")
            sys.exit(130)
        except CheckerError as exc:
            for line in str(exc).splitlines():
                stderr(f"error: {line}")
            if kwargs.get("output_format") == "json":
                click.echo(json.dumps({"error": str(exc)}))
            sys.exit(1)
    return wrapper


def spec_options(command):
    options = [
        click.option("--specs", "specs_dir", default="table_specs", show_default=True,
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Directory of table specs (CreateTable JSON, one table a file)."),
        click.option("--checklist", "checklist_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
                     help=f"Deployment checklist [default: {DEFAULT_CHECKLIST} when it exists]."),
        click.option("--format", "output_format", type=FORMATS, default="text", show_default=True,
                     help="Output format for the result on stdout."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def aws_options(command):
    options = [
        click.option("--env", "env_name", default=None, metavar="NAME",
                     help="Environment from the checklist: its region and table prefix/suffix."),
        click.option("--region", default=None, help="AWS region [default: --env's, else AWS_REGION / profile]."),
        click.option("--profile", default=None, help="AWS named profile."),
        click.option("--endpoint-url", default=None, metavar="URL",
                     help="DynamoDB endpoint, e.g. http://127.0.0.1:5000 [default: AWS_ENDPOINT_URL_DYNAMODB, "
                          "AWS_ENDPOINT_URL, else AWS]."),
        click.option("--table-prefix", default=None, help="Prepended to every spec's TableName [default: --env's]."),
        click.option("--table-suffix", default=None, help="Appended to every spec's TableName [default: --env's]."),
        click.option("--retry-mode", type=click.Choice(["standard", "adaptive", "legacy"]), default="standard",
                     show_default=True, help="botocore retry mode for throttling and transient errors."),
        click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True,
                     help="botocore attempts per API call, first included."),
    ]
    for option in reversed(options):
        command = option(command)
    return spec_options(command)


@dataclass(frozen=True)
class Target:
    """What an AWS command works on: where, and which tables (named for the environment)."""

    aws: AwsOptions
    tables: list

    @property
    def names(self) -> list:
        return [t.name for t in self.tables]


def read_checklist(path: Optional[Path], table_names: set) -> Optional[Checklist]:
    if path is None:
        default = Path(DEFAULT_CHECKLIST)
        return load_checklist(default, table_names) if default.exists() else None
    if not path.exists():
        raise CheckerError(f"{path}: checklist not found")
    return load_checklist(path, table_names)


def build_target(specs_dir, checklist_path, env_name, region, profile, endpoint_url,
                 table_prefix, table_suffix, retry_mode, max_attempts, **_ignored) -> Target:
    specs = load_specs(specs_dir)
    checklist = read_checklist(checklist_path, {s.name for s in specs})
    environment = None
    if env_name:
        if checklist is None:
            raise CheckerError(f"--env {env_name} needs a checklist ({DEFAULT_CHECKLIST} or --checklist FILE)")
        environment = checklist.environment(env_name)
    prefix = table_prefix if table_prefix is not None else (environment.table_prefix if environment else "")
    suffix = table_suffix if table_suffix is not None else (environment.table_suffix if environment else "")
    tables = []
    for spec in specs:
        wishes = checklist.wishes(spec.name) if checklist else None
        tables.append(ExpectedTable(spec.for_environment(prefix, suffix),
                                    ttl_attribute=wishes.ttl_attribute if wishes else None,
                                    point_in_time_recovery=wishes.point_in_time_recovery if wishes else False))
    aws = AwsOptions(region=region or (environment.region if environment else None), profile=profile,
                     endpoint_url=endpoint_url, retry_mode=retry_mode, max_attempts=max_attempts)
    return Target(aws, tables)


def print_state_change(state: TableState, previous: Optional[TableState], elapsed: float) -> None:
    before = f"{previous.summary()} -> " if previous else ""
    stderr(f"[{elapsed:6.1f}s] {state.name}: {before}{state.summary()}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="checker")
def main():
    """Keep a DynamoDB-backed serverless app deployable.

    \b
    Table specs (table_specs/*.json) are CreateTable requests, exactly what
    `aws dynamodb create-table --cli-input-json` takes. checker compares them
    with a live account and creates what is missing, never deleting anything.

    \b
    Typical use:
      checker validate                      # offline: specs and checklist
      checker plan --detailed-exitcode      # what differs (exit 2 if anything)
      checker apply --yes                   # create what is missing, wait for ACTIVE
      checker wait --timeout 600            # block until tables and GSIs are ACTIVE

    Exit codes: 0 all good, 1 a failure or an error, 2 changes pending (plan --detailed-exitcode).
    """


@main.command()
@spec_options
@handle_errors
def validate(specs_dir, checklist_path, output_format):
    """Check table specs and the checklist offline; report every problem.

    Structure is checked against JSON Schemas shipped with checker, then DynamoDB's own rules
    (key attributes defined, no unused definitions, unique index names, index limits, billing
    mode vs ProvisionedThroughput, projections). Each problem is printed as
    `FILE: $.json.path: message`. Exit 1 if there is any.
    """
    files = spec_files(specs_dir)
    specs, problems = validate_spec_files(files)
    checklist = checklist_path or (Path(DEFAULT_CHECKLIST) if Path(DEFAULT_CHECKLIST).exists() else None)
    if checklist is not None:
        if not checklist.exists():
            raise CheckerError(f"{checklist}: checklist not found")
        files.append(checklist)
        problems += checklist_problems(checklist, {s.name for s in specs} if not problems else None)[1]
    formatter = report.validate_json if output_format == "json" else report.validate_text
    click.echo(formatter(len(files), problems))
    sys.exit(1 if problems else 0)


def compute_plan(target: Target) -> list:
    client = target.aws.client("dynamodb")
    return diff_tables(target.tables, read_tables(client, target.tables))


@main.command()
@aws_options
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when in sync, 2 when changes are pending, 1 on error.")
@handle_errors
def plan(output_format, detailed_exitcode, **options):
    """Show what differs between the specs and live DynamoDB. Never writes.

    Automatic changes (missing tables and GSIs, billing and throughput drift, TTL and PITR the
    checklist asks for) are what `checker apply` will do. Changes DynamoDB cannot make in place
    (key schemas, LSIs, an index's keys or projection, indexes not in the spec) are shown as
    manual steps and are never made by checker.
    """
    target = build_target(**options)
    changes = compute_plan(target)
    formatter = report.plan_json if output_format == "json" else report.plan_text
    click.echo(formatter(changes, len(target.tables)))
    sys.exit(2 if detailed_exitcode and changes else 0)


@main.command()
@aws_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for CI).")
@click.option("--timeout", type=click.FloatRange(min=0), default=1800, show_default=True,
              help="Seconds to wait for every table and GSI to become ACTIVE.")
@click.option("--concurrency", type=click.IntRange(1, 50), default=4, show_default=True,
              help="Tables worked on at once.")
@handle_errors
def apply(output_format, yes, timeout, concurrency, **options):
    """Make the plan's automatic changes, then wait until everything is ACTIVE.

    Missing tables are created concurrently; missing GSIs are added one UpdateTable call at a
    time, each waited on before the next. A table someone else is already creating is waited on.
    Never deletes a table or an index and never touches a key schema. Running it twice changes
    nothing the second time. Exit 1 if a change failed or a manual step remains.
    """
    target = build_target(**options)
    client = target.aws.client("dynamodb")
    changes = diff_tables(target.tables, read_tables(client, target.tables))
    automatic = [c for c in changes if c.automatic]
    if automatic and not yes:
        if not stdin_is_terminal():
            raise CheckerError("not asking for confirmation: stdin is not a terminal; pass --yes to apply")
        stderr(report.plan_text(changes, len(target.tables)))
        if not click.confirm(f"Apply {len(automatic)} change(s)?", err=True):
            raise CheckerError("cancelled; nothing was changed")
    result = apply_changes(client, changes, timeout=timeout, concurrency=concurrency,
                           on_change=print_state_change, log=stderr)
    wait = None
    if not result.failed:
        wait = wait_until_active(client, target.names, timeout, print_state_change)
    formatter = report.apply_json if output_format == "json" else report.apply_text
    click.echo(formatter(result, wait))
    if wait is not None and not wait.ready:
        raise CheckerError(timeout_message(wait, timeout))
    sys.exit(0 if result.ok else 1)


@main.command()
@aws_options
@click.option("--timeout", type=click.FloatRange(min=0), default=600, show_default=True,
              help="Give up after this many seconds, naming what is still not ACTIVE.")
@handle_errors
def wait(output_format, timeout, **options):
    """Wait until every table and every one of its GSIs is ACTIVE.

    Unlike botocore's table_exists waiter this also waits for GSIs, and it polls fast at first
    and backs off (delay about a tenth of the time waited, at most 10 s). Progress goes to
    stderr. Exit 1 on timeout.
    """
    target = build_target(**options)
    client = target.aws.client("dynamodb")
    result = wait_until_active(client, target.names, timeout, print_state_change)
    formatter = report.wait_json if output_format == "json" else report.wait_text
    click.echo(formatter(result))
    if not result.ready:
        raise CheckerError(timeout_message(result, timeout))
