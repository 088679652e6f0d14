"""The `checker` command line: parse options, call the library, format, exit.

Exit codes: 0 all good; 1 a check failed or an error; 2 `plan --detailed-exitcode` found changes.
Results go to stdout, progress and errors to stderr.
"""
from __future__ import annotations

import functools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import click

from . import report
from .apply import apply_changes, verify_applied
from .aws import AwsOptions
from .checklist import (
    ALL_SECTIONS,
    TABLE_SECTIONS,
    Checklist,
    Environment,
    checklist_problems,
    load_checklist,
)
from .checks import KINDS, SMOKE_KINDS, run_checks
from .context import CheckContext
from .diff import ExpectedTable, diff_tables
from .errors import CheckerError, call
from .iam_check import least_privilege_policy
from .live import read_tables
from .logs import parse_since
from .specs import load_specs, spec_files, validate_spec_files
from .wait import TableState, timeout_message, wait_until_active

DEFAULT_CHECKLIST = "checklist.yaml"


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def stderr(message: str) -> None:
    click.echo(message, err=True)


def exit_on_errors(stdout_for: Callable[[CheckerError, str], Optional[str]]):
    """Every CheckerError becomes `error: ...` lines on stderr, whatever `stdout_for(error, format)`
    gives on stdout, and exit 1; Ctrl-C exits 130. No traceback reaches the user."""
    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except KeyboardInterrupt:
                stderr("error: interrupted; anything already sent to AWS carries on there")
                sys.exit(130)
            except CheckerError as exc:
                for line in str(exc).splitlines():
                    stderr(f"error: {line}")
                text = stdout_for(exc, kwargs.get("output_format", "text"))
                if text is not None:
                    click.echo(text)
                sys.exit(1)
        return wrapper
    return decorate


# Plain commands: JSON consumers get {"error": ...}; text readers have stderr.
handle_errors = exit_on_errors(lambda exc, fmt: json.dumps({"error": str(exc)}) if fmt == "json" else None)


def _error_as_check_result(exc: CheckerError, output_format: str) -> str:
    lines = str(exc).splitlines()
    result = report.CheckResult("checker", "checker", "error", lines[0], details=tuple(lines[1:]))
    return report.CHECK_FORMATTERS[output_format]([result])


# Checks commands: an error before any check runs (bad checklist, bad option) is still a result
# in the chosen format, so a CI parser always finds one.
checks_command = exit_on_errors(_error_as_check_result)


def spec_options(command, formats=("text", "json")):
    options = [
        click.option("--specs", "specs_dir", default="table_specs", show_default=True,
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Directory of table specs (CreateTable JSON, one table a file)."),
        click.option("--checklist", "checklist_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
                     help=f"Deployment checklist [default: {DEFAULT_CHECKLIST} when it exists]."),
        click.option("--format", "output_format", type=click.Choice(formats), default="text", show_default=True,
                     help="Output format for the result on stdout."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def aws_options(command=None, formats=("text", "json")):
    if command is None:
        return functools.partial(aws_options, formats=formats)
    options = [
        click.option("--env", "env_name", default=None, metavar="NAME",
                     help="Environment from the checklist: its region and table prefix/suffix."),
        click.option("--region", default=None, help="AWS region [default: --env's, else AWS_REGION / profile]."),
        click.option("--profile", default=None, help="AWS named profile."),
        click.option("--endpoint-url", default=None, metavar="URL",
                     help="AWS endpoint for every service used, e.g. a moto server http://127.0.0.1:5000 "
                          "[default: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else AWS]."),
        click.option("--table-prefix", default=None, help="Prepended to every spec's TableName [default: --env's]."),
        click.option("--table-suffix", default=None, help="Appended to every spec's TableName [default: --env's]."),
        click.option("--retry-mode", type=click.Choice(["standard", "adaptive", "legacy"]), default="standard",
                     show_default=True, help="botocore retry mode for throttling and transient errors."),
        click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True,
                     help="botocore attempts per API call, first included."),
    ]
    for option in reversed(options):
        command = option(command)
    return spec_options(command, formats)


def apply_options(command):
    """What `apply` and `bootstrap` share: confirmation, the ACTIVE timeout, the concurrency."""
    options = [
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for CI)."),
        click.option("--timeout", type=click.FloatRange(min=0), default=1800, show_default=True,
                     help="Seconds to wait for every table and GSI to become ACTIVE."),
        click.option("--concurrency", type=click.IntRange(1, 50), default=4, show_default=True,
                     help="Tables worked on at once."),
        click.option("--allow-capacity-changes", is_flag=True,
                     help="Also switch billing modes and lower provisioned capacity or on-demand maximums "
                          "(held back by default: either can throttle the app)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass(frozen=True)
class Target:
    """What an AWS command works on: where, which tables (named for the environment), and the
    checklist with the chosen environment when there is one."""

    aws: AwsOptions
    tables: list
    checklist: Optional[Checklist] = None
    environment: Optional[Environment] = None
    env_option: str = ""

    @property
    def names(self) -> list:
        return [t.name for t in self.tables]

    @property
    def function_name(self) -> Optional[str]:
        """The environment's function, else the checklist's default."""
        return ((self.environment.function_name if self.environment else None)
                or (self.checklist.function_name if self.checklist else None))


def read_checklist(path: Optional[Path], table_names: set, sections=TABLE_SECTIONS) -> Optional[Checklist]:
    if path is None:
        default = Path(DEFAULT_CHECKLIST)
        return load_checklist(default, table_names, sections) if default.exists() else None
    if not path.exists():
        raise CheckerError(f"{path}: checklist not found")
    return load_checklist(path, table_names, sections)


def build_target(specs_dir, checklist_path, env_name, region, profile, endpoint_url,
                 table_prefix, table_suffix, retry_mode, max_attempts, sections=TABLE_SECTIONS,
                 **_ignored) -> Target:
    specs = load_specs(specs_dir)
    checklist = read_checklist(checklist_path, {s.name for s in specs}, sections)
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
                                    point_in_time_recovery=wishes.point_in_time_recovery if wishes else False,
                                    spec_name=spec.name))
    aws = AwsOptions(region=region or (environment.region if environment else None), profile=profile,
                     endpoint_url=endpoint_url, retry_mode=retry_mode, max_attempts=max_attempts)
    env_option = " ".join(filter(None, [f"--env {env_name}" if env_name else "",
                                        f"--endpoint-url {endpoint_url}" if endpoint_url else "",
                                        f"--table-prefix {table_prefix}" if table_prefix else "",
                                        f"--table-suffix {table_suffix}" if table_suffix else ""]))
    return Target(aws, tables, checklist, environment, env_option)


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

    Every field a spec states is compared; a field it leaves out is not. Automatic changes
    (missing tables and GSIs, capacity increases, stream/SSE/table class/deletion protection on,
    the spec's tags, TTL and PITR the checklist asks for) are what `checker apply` will do;
    billing switches and capacity decreases need `apply --allow-capacity-changes`. Changes
    DynamoDB cannot make in place (key schemas, LSIs, an index's keys or projection, indexes not in
    the spec) and turning anything off are manual steps, never made by checker. A stated field
    checker cannot compare is listed as "not compared".
    """
    target = build_target(**options)
    changes = compute_plan(target)
    formatter = report.plan_json if output_format == "json" else report.plan_text
    click.echo(formatter(changes, len(target.tables)))
    sys.exit(2 if detailed_exitcode and any(c.pending for c in changes) else 0)


@main.command()
@aws_options
@apply_options
@handle_errors
def apply(output_format, yes, timeout, concurrency, allow_capacity_changes, **options):
    """Make the plan's automatic changes, then wait until everything is ACTIVE.

    Missing tables are created concurrently; missing GSIs are added one UpdateTable call at a
    time, each waited on before the next. A table someone else is already creating is waited on.
    Never deletes a table or an index, never touches a key schema, never turns anything off.
    Billing-mode switches and capacity decreases wait for --allow-capacity-changes. Afterwards every
    changed table is read again: a change that is not in effect fails. Running it twice changes
    nothing the second time. Exit 1 if a change failed, was held back or a manual step remains.
    """
    target = build_target(**options)
    result, wait = confirm_and_apply(target, yes, timeout, concurrency, allow_capacity_changes)
    formatter = report.apply_json if output_format == "json" else report.apply_text
    click.echo(formatter(result, wait))
    if wait is not None and not wait.ready:
        raise CheckerError(timeout_message(wait, timeout))
    sys.exit(0 if result.ok else 1)


def confirm_and_apply(target: Target, yes: bool, timeout: float, concurrency: int,
                      allow_capacity_changes: bool = False):
    """Plan, ask on a terminal (unless --yes), apply, wait for every table, then re-read what
    changed: (ApplyResult, WaitResult)."""
    client = target.aws.client("dynamodb")
    changes = diff_tables(target.tables, read_tables(client, target.tables))
    automatic = [c for c in changes if c.automatic and (allow_capacity_changes or not c.gate)]
    if automatic and not yes:
        if not stdin_is_terminal():
            raise CheckerError("not asking for confirmation: stdin is not a terminal; pass --yes to apply")
        stderr(report.plan_text(changes, len(target.tables)))
        if not click.confirm(f"Apply {len(automatic)} change(s)?", err=True):
            raise CheckerError("cancelled; nothing was changed")
    result = apply_changes(client, changes, timeout=timeout, concurrency=concurrency,
                           on_change=print_state_change, log=stderr, allow_capacity_changes=allow_capacity_changes)
    wait = None
    if not result.failed:
        wait = wait_until_active(client, target.names, timeout, print_state_change)
        if wait.ready:
            result = verify_applied(client, target.tables, result)
    return result, wait


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


@dataclass(frozen=True)
class CheckRequest:
    """The options every checks command shares, taken at the start of the run."""

    only: tuple
    skip: tuple
    function_name: Optional[str]
    base_url: Optional[str]
    since: Optional[str]
    settle: float
    started_ms: int

    def kinds(self, allowed=KINDS) -> tuple:
        def split(values):
            names = [n.strip() for value in values for n in value.split(",") if n.strip()]
            unknown = [n for n in names if n not in KINDS]
            if unknown:
                raise CheckerError(f"unknown check kind(s) {', '.join(unknown)}; kinds are {', '.join(KINDS)}")
            return names
        chosen = split(self.only) or list(allowed)
        outside = [k for k in chosen if k not in allowed]
        if outside:
            raise CheckerError(f"--only {', '.join(outside)}: this command runs only {', '.join(allowed)}")
        skipped = set(split(self.skip))
        return tuple(k for k in allowed if k in chosen and k not in skipped)


def check_options(command):
    """Adds the check options and hands them to the command as one `request: CheckRequest`."""
    @functools.wraps(command)
    def with_request(*args, only, skip, function_name, base_url, since, settle, **kwargs):
        request = CheckRequest(only, skip, function_name, base_url, since, settle, int(time.time() * 1000))
        return command(*args, request=request, **kwargs)

    options = [
        click.option("--only", multiple=True, metavar="KIND[,KIND]",
                     help=f"Run only these kinds of checks: {', '.join(KINDS)}."),
        click.option("--skip", multiple=True, metavar="KIND[,KIND]", help="Leave these kinds out."),
        click.option("--function", "function_name", default=None,
                     help="Lambda function [default: the environment's function_name, else lambda.function_name]."),
        click.option("--base-url", default=None, metavar="URL",
                     help="The app's base URL [default: the environment's base_url, else its Function URL / API]."),
        click.option("--since", default=None, metavar="WHEN",
                     help="Count log events since: 15m, 2h, 1d, an ISO time or epoch ms [default: start of this run]."),
        click.option("--settle", type=click.FloatRange(min=0), default=0, show_default=True, metavar="SECONDS",
                     help="Wait before counting log events, so that lines logged by the endpoint checks "
                          "have reached CloudWatch Logs (it takes a few seconds)."),
    ]
    for option in reversed(options):
        with_request = option(with_request)
    return aws_options(with_request, formats=tuple(report.CHECK_FORMATTERS))


def check_context(target: Target, request: CheckRequest, smoke: bool = False) -> CheckContext:
    environment = target.environment
    try:
        since_ms = parse_since(request.since, request.started_ms) if request.since else request.started_ms
    except ValueError as exc:
        raise CheckerError(f"--since: {exc}") from None
    return CheckContext(
        aws=target.aws, tables=target.tables, checklist=target.checklist or Checklist("(no checklist)"),
        function_name=request.function_name or target.function_name,
        base_url=request.base_url or (environment.base_url if environment and environment.base_url else None),
        since_ms=since_ms, command_options=target.env_option, logs_settle=request.settle, smoke=smoke)


def run_and_report(target: Target, request: CheckRequest, output_format: str, allowed=KINDS) -> bool:
    smoke = allowed == SMOKE_KINDS
    results = run_checks(check_context(target, request, smoke), request.kinds(allowed), log=stderr)
    click.echo(report.CHECK_FORMATTERS[output_format](results))
    return report.summarize(results)["ok"]


@main.command()
@check_options
@checks_command
def check(output_format, request, **options):
    """Run the whole checklist: tables, Lambda, bindings, entry point, IAM, endpoints, logs.

    \b
    Kinds (use --only / --skip, comma-separated or repeated):
      tables       exist, ACTIVE, every GSI ACTIVE, match their spec
      lambda       the function exists; required environment variables are set (values never shown)
      bindings     the variables naming tables (lambda.bindings) hold this environment's table names
      entry_point  a Function URL or an API Gateway API integrates the function
      iam          the function's role allows the DynamoDB actions the app uses, on each table/index
                   ARN; grants broader than needed are warned about
      endpoints    the app's endpoints answer as the checklist says (secrets masked)
      logs         ERROR lines in /aws/lambda/<function> since --since, against a threshold

    Formats: text, json ({"results": [...], "summary": {...}}), junit (one testcase per check).
    Exit 0 when every check passes (warnings allowed), 1 otherwise.
    """
    target = build_target(sections=ALL_SECTIONS, **options)
    sys.exit(0 if run_and_report(target, request, output_format) else 1)


@main.command()
@check_options
@checks_command
def smoke(output_format, request, **options):
    """Post-deploy smoke test: the endpoints answer, and no new ERROR lines in the logs.

    Same as `checker check --only endpoints,logs`. Run it right after a deploy; by default it
    counts log events since it started, so pass --since with the deploy time to cover the deploy,
    and --settle to give CloudWatch Logs time to ingest what the endpoint calls logged.
    """
    target = build_target(sections=ALL_SECTIONS, **options)
    sys.exit(0 if run_and_report(target, request, output_format, allowed=SMOKE_KINDS) else 1)


@main.command()
@check_options
@apply_options
@checks_command
def bootstrap(output_format, request, yes, timeout, concurrency, allow_capacity_changes, **options):
    """A new environment in one command: apply, wait for ACTIVE, then check everything.

    The apply step's progress and outcome go to stderr; stdout holds the check results in the
    chosen format. Exit 0 only when apply left nothing to do by hand and every check passes.
    """
    target = build_target(sections=ALL_SECTIONS, **options)
    result, wait = confirm_and_apply(target, yes, timeout, concurrency, allow_capacity_changes)
    stderr(report.apply_text(result, wait))
    ok = run_and_report(target, request, output_format)
    sys.exit(0 if ok and result.ok and wait is not None and wait.ready else 1)


@main.command("iam-policy")
@aws_options
@click.option("--account-id", default=None, metavar="ID",
              help="AWS account of the tables [default: the caller's, from sts:GetCallerIdentity].")
@handle_errors
def iam_policy(output_format, account_id, **options):
    """Print the least-privilege policy the function's role needs.

    One Allow statement per table or index ARN, with exactly the DynamoDB actions the checklist's
    iam.permissions list, on this environment's table names (--env's prefix/suffix). With
    --format json stdout is the bare policy document, ready for

    \b
      checker iam-policy --env prod --format json > policy.json
      aws iam put-role-policy --role-name ROLE --policy-name dynamodb \\
          --policy-document file://policy.json
    """
    target = build_target(sections=("environments", "tables", "iam"), **options)
    if target.checklist is None or not target.checklist.permissions:
        raise CheckerError("no iam.permissions in the checklist: nothing to grant")
    region = target.aws.region or target.aws.session().region_name
    if not region:
        raise CheckerError("no AWS region: pass --region or --env with a region, or set AWS_REGION")
    if account_id is None:
        account_id = call(target.aws.client("sts"), "GetCallerIdentity", "sts")["Account"]
    document = least_privilege_policy(target.checklist.permissions, target.tables, region, account_id)
    if output_format == "json":
        click.echo(report.to_json(document))
        return
    for statement in document["Statement"]:
        click.echo(f"Allow {', '.join(statement['Action'])}\n  on {statement['Resource']}")
    click.echo(f"\n{len(document['Statement'])} statement(s). As a policy document: "
               "checker iam-policy --format json (same options)")


@main.command()
@click.option("--port", type=int, default=5000, show_default=True, help="Port of the moto server (0: any free one).")
@click.option("--tracks", type=click.IntRange(0), default=120, show_default=True,
              help="Saved tracks of the demo user in the fake Spotify.")
@click.option("--deploy/--no-deploy", default=True, show_default=True,
              help="Also create the tables, the Lambda function, its role and a Function URL.")
@click.option("--env", "env_name", default="dev", show_default=True, help="Checklist environment to deploy.")
@click.option("--specs", "specs_dir", default="table_specs", show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--checklist", "checklist_path", default=None, type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def local(port, tracks, deploy, env_name, specs_dir, checklist_path):
    """Run a local environment on 127.0.0.1 to try checker without AWS (needs the test extra).

    Starts a moto server (AWS), a fake Spotify Web API and the app (the real Lambda handler behind
    an HTTP server), prints the commands to point checker at them, and runs until Ctrl-C.
    """
    try:
        from .local import LocalStack
        stack = LocalStack(port=port, tracks=tracks)
    except ImportError:
        raise CheckerError("`checker local` needs moto: pip install 'checker[test]' (or run `make install`)")
    with stack:
        if deploy:
            target = build_target(specs_dir=specs_dir, checklist_path=checklist_path, env_name=env_name,
                                  region=None, profile=None, endpoint_url=stack.endpoint, table_prefix=None,
                                  table_suffix=None, retry_mode="standard", max_attempts=5, sections=ALL_SECTIONS)
            checklist = target.checklist or Checklist("(none)")
            confirm_and_apply(target, yes=True, timeout=60, concurrency=4)
            stack.deploy_function(target.function_name or "spotify-playlist-local", target.tables,
                                  list(checklist.permissions), checklist.required_env, checklist.bindings)
        options = f"--endpoint-url {stack.endpoint} --env {env_name} --base-url {stack.app.url}"
        click.echo(f"AWS (moto):   {stack.endpoint}\nfake Spotify: {stack.spotify.url}\napp:          {stack.app.url}")
        click.echo("\nIn another shell:\n  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
                   f"AWS_DEFAULT_REGION={stack.region}\n  checker check {options}\n"
                   f"  curl '{stack.app.url}?action=sync-liked-songs'\n\nCtrl-C to stop.", nl=True)
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            stderr("stopped")
