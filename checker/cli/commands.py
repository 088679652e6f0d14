"""The `checker` command line: parse options, call the API (checker/api.py), format, exit.

Exit codes: 0 all good; 1 a check failed or an error; 2 `plan --detailed-exitcode` found changes.
Results go to stdout, progress and errors to stderr.
"""
from __future__ import annotations

import dataclasses
import functools
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import click

from .. import report
from ..api import (
    DEFAULT_CHECKLIST,
    KIND_NAMES,
    KINDS,
    SMOKE_KINDS,
    CheckerError,
    CheckResult,
    MigrateOptions,
    Project,
    Status,
    Target,
    changes_to_apply,
    choose_kinds,
    clip,
    describe_pending,
    for_each_environment,
    gate_passes,
    made_anyway,
    sections_of,
    summarize,
    timeout_message,
)
from ..api import (
    export as export_tables,
)
from ..api import (
    init as init_project,
)
from ..api import validate as validate_project
from .options import (
    FENCE_QUIET,
    FENCE_SETTLE,
    Seconds,
    apply_options,
    aws_options,
    check_options,
    migrate_options,
    spec_options,
)
from .output import OUTPUT, CheckerGroup, checks_command, confirm, echo, fail, handle_errors, stderr


def load_project(target: Target, sections) -> Project:
    project = Project.load(target, sections)
    OUTPUT.secrets.update(project.secrets().secrets)
    return project


def across(target: Target, envs: tuple, work: Callable) -> dict:
    """{environment: outcome}: every --env/--all-envs environment at once, an error being that
    environment's outcome; without them, the one target under the key None (its error raises as
    any command's does). One path for one environment and for many."""
    return for_each_environment(target, envs, work) if envs else {None: work(target)}


def rendered(outcomes: dict, one: Callable, many: Callable) -> str:
    """The one target's outcome rendered by `one`, or every environment's by `many`."""
    return one(outcomes[None]) if None in outcomes else many(outcomes)


def print_state_change(state, previous, elapsed: float) -> None:
    """Progress on stderr: a table's or index's state as it changes (TableState objects)."""
    before = f"{previous.summary()} -> " if previous else ""
    stderr(f"[{elapsed:6.1f}s] {state.name}: {before}{state.summary()}")


def print_heartbeat(elapsed: float, not_ready: list) -> None:
    """Every 30 s of a long wait: still alive, and what it waits for."""
    shown = "; ".join(f"{s.name} ({s.summary()})" for s in not_ready[:5]) + (" ..." if len(not_ready) > 5 else "")
    stderr(f"[{elapsed:6.1f}s] still waiting for {len(not_ready)} table(s): {shown}")


@click.group(cls=CheckerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ddb-deploy-checker", prog_name="checker")
def main():
    """Keep a DynamoDB-backed serverless app deployable.

    \b
    Table specs (table_specs/*.json) are CreateTable requests, exactly what
    `aws dynamodb create-table --cli-input-json` takes. checker compares them
    with a live account and creates what is missing, never deleting anything.

    \b
    Typical use:
      checker init --function NAME          # start: a checklist and specs from a live function
      checker validate                      # offline: specs and checklist
      checker plan --detailed-exitcode      # what differs (exit 2 if anything)
      checker apply --yes                   # create what is missing, wait for ACTIVE
      checker wait --timeout 600            # block until tables and GSIs are ACTIVE
      checker check --env dev               # the whole deployment checklist
      checker smoke --env dev               # after a deploy: endpoints and logs

    Exit codes: 0 all good, 1 a failure or an error, 2 changes pending (plan --detailed-exitcode).
    """


@main.command()
@functools.partial(spec_options, formats=report.formats_for("validate"))
@handle_errors
def validate(specs_dir, checklist_path, output_format):
    """Check table specs and the checklist offline; report every problem.

    Structure is checked against JSON Schemas shipped with checker, then DynamoDB's own rules
    (key attributes defined, no unused definitions, unique index names, index limits, billing
    mode vs ProvisionedThroughput, projections). Each problem is printed as
    `FILE: $.json.path: message`. Exit 1 if there is any.
    """
    result = validate_project(specs_dir, checklist_path)
    echo(report.formatter(output_format).validate(result.files, result.problems))
    sys.exit(0 if result.ok else 1)


@main.command()
@aws_options(many_envs=True, formats=report.formats_for("plans"))
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when in sync, 2 when changes are pending, 1 on error.")
@handle_errors
def plan(output_format, detailed_exitcode, target, envs):
    """Show what differs between the specs and live DynamoDB. Never writes.

    Every field a spec states is compared; a field it leaves out is not. Automatic changes
    (missing tables and GSIs, capacity increases, stream/SSE/table class/deletion protection on,
    the spec's tags, TTL and PITR the checklist asks for) are what `checker apply` will do;
    billing switches and capacity decreases need `apply --allow-capacity-changes`. Changes
    DynamoDB cannot make in place (key schemas, LSIs, an index's keys or projection, indexes not in
    the spec) and turning anything off are manual steps, never made by checker. A stated field
    checker cannot compare is listed as "not compared". With several --env (or --all-envs), each
    environment is planned at once, one plan after the other; exit 2 when any has changes.
    """
    def plan_one(each: Target):
        project = load_project(each, sections_of(()))
        return project.plan(), len(project.tables), project.command("apply")
    outcomes = across(target, envs, plan_one)
    formatter = report.formatter(output_format)
    echo(rendered(outcomes, lambda outcome: formatter.plan(*outcome), formatter.plans))
    if any(isinstance(o, CheckerError) for o in outcomes.values()):
        sys.exit(1)
    pending = any(c.pending for o in outcomes.values() for c in o[0])
    sys.exit(2 if detailed_exitcode and pending else 0)


@main.command()
@aws_options(own_timeout=True)
@apply_options
@handle_errors
def apply(output_format, yes, timeout, concurrency, allow_capacity_changes, create_owned, target):
    """Make the plan's automatic changes, then wait until everything is ACTIVE.

    Missing tables are created concurrently; missing GSIs are added one UpdateTable call at a
    time, each waited on before the next. A table someone else is already creating is waited on.
    Never deletes a table or an index, never touches a key schema, never turns anything off.
    Billing-mode switches and capacity decreases wait for --allow-capacity-changes; changes to
    tables a template owns (specs: template.yaml) for the template's deploy, or --create. Afterwards every
    changed table is read again: a change that is not in effect fails. Running it twice changes
    nothing the second time. Exit 1 if a change failed, was held back or a manual step remains.
    """
    project = load_project(target, sections_of(()))
    result, waited = confirm_and_apply(project, yes, timeout, concurrency, allow_capacity_changes, create_owned)
    echo(report.formatter(output_format).apply(result, waited))
    if waited is not None and not waited.ready:
        fail(timeout_message(waited, timeout))  # the result is on stdout already: one document, not two
    sys.exit(0 if result.ok else 1)


def where_it_acts(project: Project) -> str:
    """Account, region and environment, for a question before a write."""
    return f"account {project.account_id() or 'unknown'}, region {project.region or 'unknown'}" + (
        f", environment {project.env_name}" if project.env_name else "")


def confirm_and_apply(project: Project, yes: bool, timeout: float, concurrency: Optional[int],
                      allow_capacity_changes: bool = False, create_owned: bool = False):
    """Plan once, ask on a terminal (unless --yes), then apply that plan: (ApplyResult, WaitResult)."""
    changes = project.plan(for_apply=True)
    if create_owned:
        changes = made_anyway(changes)
    automatic = changes_to_apply(changes, allow_capacity_changes)
    if automatic:
        tables = ", ".join(sorted({c.table for c in automatic}))
        confirm(yes, f"Apply {len(automatic)} change(s) to {clip(tables, 300)} in {where_it_acts(project)}?", "apply",
                lambda: stderr(report.formatter("text").plan(changes, len(project.tables), project.command("apply"))))
    return project.apply(changes, timeout=timeout, concurrency=concurrency,
                         allow_capacity_changes=allow_capacity_changes, on_change=print_state_change, log=stderr)


@main.command()
@aws_options(many_envs=True, own_timeout=True)
@click.option("--timeout", type=Seconds(), default=600, show_default=True,
              help="Give up after this many seconds, naming what is still not ACTIVE.")
@click.option("--grace", type=Seconds(), default=30, show_default=True,
              help="A table (or a GSI of its spec) that does not exist and is not being created fails after this many seconds.")
@handle_errors
def wait(output_format, timeout, grace, target, envs):
    """Wait until every table and every GSI its spec declares exist and are ACTIVE.

    Unlike botocore's table_exists waiter this also waits for GSIs, and it polls fast at first
    and backs off (delay about a tenth of the time waited, at most 10 s). Progress goes to
    stderr. Exit 1 on timeout.
    """
    outcomes = across(target, envs, lambda each: load_project(each, sections_of(())).wait(
        timeout, print_state_change, grace=grace, heartbeat=print_heartbeat))
    formatter = report.formatter(output_format)
    echo(rendered(outcomes, formatter.wait, formatter.waits))
    failed = {name: o for name, o in outcomes.items() if isinstance(o, CheckerError) or not o.ready}
    if failed:
        fail(rendered(failed, lambda result: timeout_message(result, timeout), lambda many: f"not ready in: {', '.join(many)}"))


def run_and_report(target: Target, envs: tuple, request: dict, output_format: str, allowed=KIND_NAMES,
                   project: Optional[Project] = None) -> bool:
    request = dict(request)
    only = request.pop("only")
    kinds = choose_kinds(only, request.pop("skip"), allowed)
    smoke = allowed == SMOKE_KINDS
    strict = request.pop("strict")

    def check_one(each: Target) -> list:
        loaded = project if project and not envs else load_project(each, sections_of(kinds))
        if only:
            loaded.require_sections(kinds)
        log = (lambda message: stderr(f"[{each.env}] {message}")) if envs else stderr
        return loaded.render_fixes(loaded.check(kinds, smoke=smoke, log=log, **request))
    by_environment = {name: ([CheckResult("checker", "checker", Status.ERROR, str(o))] if isinstance(o, CheckerError) else o)
                      for name, o in across(target, envs, check_one).items()}
    formatter = report.formatter(output_format)
    echo(rendered(by_environment, formatter.checks, formatter.checks_by_environment))
    failing = {name: results for name, results in by_environment.items() if not gate_passes(results, strict)}
    said = rendered(failing, failed_by_strict, lambda many: f"failing: {', '.join(many)}") if failing else ""
    if said:
        stderr(said)
    return not failing


def failed_by_strict(results: list) -> str:
    """Why a run whose checks all passed still fails (its warnings, under --strict); else nothing to add."""
    return f"--strict: {summarize(results)['warn']} warning(s) fail this run" if summarize(results)["ok"] else ""


CHECK_HELP = "\n".join([
    "Run the whole checklist: tables, Lambda, bindings, entry point, IAM, items, endpoints, logs.",
    "A kind whose checklist section is absent is reported as skip (not in the checklist).",
    "", "\b", "Kinds (use --only / --skip, comma-separated or repeated):",
    *(f"  {kind.name:<12} {kind.help}" for kind in KINDS),
    "", 'Formats: text, json ({"results": [...], "summary": {...}}), junit (one testcase per check).',
    "Exit 0 when every check passes (warnings allowed; not with --strict), 1 otherwise.",
])


@main.command(help=CHECK_HELP)
@check_options
@checks_command
def check(output_format, request, target, envs):
    sys.exit(0 if run_and_report(target, envs, request, output_format) else 1)


@main.command()
@check_options
@checks_command
def smoke(output_format, request, target, envs):
    """Post-deploy smoke test: the tables are ready, the endpoints answer, and no new ERROR lines.

    The tables are checked for readiness only (each exists, ACTIVE, every GSI of its spec present and ACTIVE; drift is
    `checker check`'s), first, so that an endpoint failing on a missing table names it and its
    fix. Then the endpoints and the logs, as `checker check --only endpoints,logs`, except that a
    function whose log group does not exist after the endpoint calls fails (it could not be
    vouched for). Run it right after a
    deploy; by default it counts log events since it started, so pass --since with the deploy time
    to cover the deploy, and --settle to give CloudWatch Logs time to ingest what the endpoint
    calls logged.
    """
    sys.exit(0 if run_and_report(target, envs, request, output_format, allowed=SMOKE_KINDS) else 1)


@main.command()
@check_options(many_envs=False, own_timeout=True)
@apply_options
@checks_command
def bootstrap(output_format, request, yes, timeout, concurrency, allow_capacity_changes, create_owned, target):
    """A new environment in one command: apply, wait for ACTIVE, then check everything.

    The apply step's progress and outcome go to stderr; stdout holds the check results in the
    chosen format. Exit 0 only when apply left nothing to do by hand and every check passes.
    """
    project = load_project(target, sections_of(KIND_NAMES))
    result, waited = confirm_and_apply(project, yes, timeout, concurrency, allow_capacity_changes, create_owned)
    stderr(report.formatter("text").apply(result, waited))
    ok = run_and_report(target, (), request, output_format, project=project)
    sys.exit(0 if ok and result.ok and waited is not None and waited.ready else 1)


@main.command("iam-policy")
@aws_options
@click.option("--account-id", default=None, metavar="ID",
              help="AWS account of the tables [default: the caller's, from sts:GetCallerIdentity].")
@handle_errors
def iam_policy(output_format, account_id, target):
    """Print the least-privilege policy the function's role needs.

    One Allow statement per table or index ARN, with exactly the DynamoDB actions the checklist's
    iam.permissions list, on this environment's table names (--env's prefix/suffix). With
    --format json stdout is the bare policy document, ready for

    \b
      checker iam-policy --env prod --format json > policy.json
      aws iam put-role-policy --role-name ROLE --policy-name dynamodb \\
          --policy-document file://policy.json
    """
    project = load_project(target, sections_of(("iam",)))
    echo(report.formatter(output_format).policy(project.iam_policy(account_id)))


@main.command("export")
@click.option("--specs", "specs_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the specs to (created if missing).")
@click.option("--table", "tables", multiple=True, metavar="NAME",
              help="A live table to export (repeatable) [default: every table with the environment's prefix/suffix].")
@click.option("--force", is_flag=True, help="Overwrite spec files that exist.")
@click.option("--all", "every", is_flag=True,
              help="Also the tables another environment of the checklist names by its own prefix/suffix "
                   "[default: left out, and listed].")
@aws_options(formats=(), specs=False)
@handle_errors
def export_command(specs_dir, tables, force, every, target):
    """Adopt an existing environment: write a spec per live table (CreateTable JSON).

    One environment, as every AWS command: --env, else the checklist's default_env (no checklist:
    every table here, unless --table-prefix/--table-suffix). Tables another environment of the
    checklist names by its own prefix/suffix are left out and listed (--all takes them too).

    Only the fields CreateTable takes and the table states are written (keys, attribute
    definitions, indexes, billing, stream, encryption, table class, deletion protection, tags),
    with the environment's prefix/suffix removed. TTL and point-in-time recovery found are printed
    as a checklist `tables:` snippet. Afterwards `checker validate` passes and `checker plan`
    against the same account says "In sync". Existing files are kept unless --force.
    """
    result = export_tables(specs_dir, target, tables, force, every)
    for path in result.files:
        stderr(f"wrote {path}")
    for owner, names in result.left_out.items():
        stderr(f"left out {len(names)} table(s) of environment {owner} ({clip(', '.join(names), 200)}): "
               f"export them with --env {owner}, or these too with --all")
    echo(result.snippet)


@main.command("init")
@click.option("--function", "function_name", default=None, metavar="NAME",
              help="A live Lambda function to start from (with --from: the template's function, by logical id) "
                   "[default: none: write a commented starter].")
@click.option("--from", "template", default=None, type=click.Path(dir_okay=False, path_type=Path), metavar="TEMPLATE",
              help="A SAM or CloudFormation template to start from: specs: names it, and the function, its bindings, "
                   "permissions, entry point and GET routes come from it.")
@click.option("--env", "env_name", default="dev", show_default=True, metavar="NAME",
              help="The name of the environment the checklist gets (its region is the function's).")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where checklist.yaml and table_specs/ are written.")
@click.option("--force", is_flag=True, help="Overwrite checklist.yaml and spec files that exist.")
@aws_options(formats=(), specs=False, env=False)
@handle_errors
def init_command(function_name, template, env_name, directory, force, target):
    """Start checking your own app: write checklist.yaml and table_specs/.

    \b
    With --function, from what is live:
      specs of the tables its variables name and its role grants (`checker export`),
      required_env from its variable names (values are never read into the file),
      bindings for variables whose value is one of those tables' names,
      the entry point found, iam.permissions from the role's DynamoDB grants
      (wildcard grants become comments to fix by hand), and logs defaults.
    With --from TEMPLATE (SAM/CloudFormation), the checklist from the template: specs: names it,
    and the function, bindings (variables that !Ref a table), iam.permissions (its role's
    policies, SAM's policy templates expanded), entry point and GET routes come from it.
    Without either, a commented starter. Existing files are kept unless --force.
    Then: `checker check --env dev` (add --endpoint-url when you gave one here).
    """
    written = init_project(directory, target, function_name, env_name, force, template)
    for path in written.files:
        stderr(f"wrote {path}")
    for note in written.notes:
        stderr(f"to fix by hand: {note}")
    checklist = directory / "checklist.yaml" if directory != Path(".") else None
    validate_line = "checker validate" + (f" --checklist {shlex.quote(str(checklist))}" if checklist else "")
    check_line = Target(checklist_path=checklist, env=env_name, endpoint_url=target.endpoint_url).command("check")
    echo(f"Next: {validate_line} && {check_line}")


@main.command()
@click.option("--port", type=click.IntRange(0, 65533), default=5000, show_default=True,
              help="Port of the AWS endpoint (moto); the fake Spotify and the app take the next two (0: any free ones).")
@click.option("--app", "app_name", default=None, metavar="APP",
              help="What to serve: spotify (the bundled runtime and a fake Spotify), none (only the AWS side), or "
                   "your Python Lambda handler as MODULE:FUNCTION or MODULE.FUNCTION [default: the checklist's "
                   "local.app, else none].")
@click.option("--app-dir", default=None, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder your handler's module is imported from [default: the checklist's local.app_dir, else "
                   "the current directory].")
@click.option("--entry-point", "entry_point", default=None, type=click.Choice(["function_url", "http_api", "rest_api"]),
              help="The entry point created in moto, and the event shape the app is sent [default: the checklist's "
                   "local.entry_point, else from entry_point.require, else function_url].")
@click.option("--tracks", type=click.IntRange(0), default=120, show_default=True,
              help="Saved tracks of the demo user in the fake Spotify (--app spotify).")
@click.option("--deploy/--no-deploy", default=True, show_default=True,
              help="Also create the tables, the Lambda function, its role and its entry point.")
@click.option("--env", "env_name", default="dev", show_default=True, help="Checklist environment to deploy.")
@functools.partial(spec_options, formats=())
@handle_errors
def local(port, app_name, app_dir, entry_point, tracks, deploy, env_name, specs_dir, checklist_path):
    """Run your app and a local AWS on 127.0.0.1 to try checker without an account (the local extra).

    Starts a moto server (AWS) and, with --app, your Lambda handler (or the bundled spotify-playlist
    runtime) behind an HTTP server sent the events its entry point would send; applies the specs,
    deploys the checklist's function with its role and entry point, prints the commands to point
    checker at it, and runs until Ctrl-C. `check` and `smoke` then find the app's URL as on AWS.

    \b
      checker local --app app:handler            # your handler, in app.py here
      checker local --app none                   # only the tables, function and role
      checker local --app handlers.orders.main --entry-point rest_api
    """
    given = Target(specs_dir=specs_dir, checklist_path=checklist_path, env=env_name)
    if deploy and given.checklist_file() is None:
        raise CheckerError(f"no {DEFAULT_CHECKLIST} here; `checker local` deploys a project's tables and checklist: "
                           "run it in the project's folder, or pass --specs DIR and --checklist FILE")
    from ..local.stack import local_settings
    settings = local_settings(given, app_name, app_dir, entry_point)
    # a bad project fails before anything starts; the stack serves the environment's own region
    project = Project.load(given, sections_of(KIND_NAMES)) if deploy else None
    region = (project.region if project else None) or "us-east-1"
    try:
        from ..local.stack import LocalStack
        stack = LocalStack(port=port, tracks=tracks, region=region, **settings)  # imports moto's server
    except ImportError:
        raise CheckerError("`checker local` needs moto's server: pip install 'ddb-deploy-checker[local]' "
                           "(or run `make install`)") from None
    with stack:
        target = dataclasses.replace(given, endpoint_url=stack.endpoint)
        if deploy:
            project = Project.load(target, sections_of(KIND_NAMES))
            rehearsal = project.before_migrations()        # a declared migration is rehearsed, not skipped
            # the stack stands for the template's deploy too: the tables a template owns are created
            rehearsal.apply(made_anyway(rehearsal.plan(for_apply=True)), timeout=60)
            stack.deploy(project.environment)
        else:
            stack.serve(stack.app_settings())
        echo(stack.summary(target, bool(deploy and stack.function_name)))
        sys.stdout.flush()
        try:
            while True:
                # short sleeps: a Ctrl-C or SIGTERM the kernel hands to one of the servers' threads
                # wakes no sleeping main thread; Python runs its handler at the next tick
                time.sleep(1)
        except KeyboardInterrupt:
            stderr("stopped")


# -- migrations -------------------------------------------------------------------------------
MIGRATE_SECTIONS = ("lambda", "iam", "endpoints", "logs", "entry_point")


@main.group(invoke_without_command=True, cls=click.Group)
@aws_options(own_timeout=True)
@migrate_options
@click.option("--base-url", default=None, metavar="URL",
              help="The app's base URL for the smoke checks after a switch [default: as `checker smoke` finds it].")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for CI).")
@click.pass_context
@handle_errors
def migrate(ctx, output_format, options, base_url, yes, target):
    """Run every pending migration of one environment: table migrations, then data migrations.

    A table migration (`tables: {NEW: {migrate_from: OLD}}` in the checklist) creates NEW from
    its spec, copies every item of OLD (parallel Scan, checkpointed in the ledger table
    checker_migrations), verifies both sides item by item, then switches the function's
    lambda.bindings variable to NEW and runs the smoke checks. OLD is never deleted. Data
    migrations are migrations/NNNN_name.py beside the checklist, applied once each, in order.
    Everything is resumable: run it again after Ctrl-C, a crash or --timeout.

    \b
      checker migrate status --env dev          # what is pending, read-only
      checker migrate --env dev --dry-run       # what the data migrations would change
      checker migrate --env dev --offline --yes # run them
      checker migrate rollback table:NEW --env dev
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = target   # the subcommand acts where these options point (Target.under)
        return
    project = load_project(target, sections_of(MIGRATE_SECTIONS))
    pending = project.pending_migrations()
    formatter = report.formatter(output_format)
    if not pending:
        echo(formatter.nothing_to_migrate())
        return
    if not options.dry_run:
        confirm(yes, f"Migrate {clip(', '.join(describe_pending(pending)), 300)} in "
                     f"{project.env_name or 'this account'}?", "migrate")
    results = project.migrate(pending, options, log=stderr)
    echo(formatter.migrations(results))
    if any(r.switched for r in results):
        smoked = project.smoke_after_switch(base_url, log=stderr)
        stderr(report.formatter("text").checks(smoked))
        if not gate_passes(smoked):
            back = "; ".join(f"`{project.command(f'migrate rollback {shlex.quote(r.id)}')} --yes`"
                             for r in results if r.switched)
            fail(f"the app does not pass its smoke checks on the new table; {back} switches back")


@migrate.command("status")
@aws_options
@handle_errors
def migrate_status(output_format, target):
    """Every migration of the environment and where it stands (read-only; before the ledger
    exists, everything is pending). Exit 0 when none is pending, 2 when some are."""
    results = load_project(target, sections_of(())).migration_status()
    echo(report.formatter(output_format).migrations(results))
    sys.exit(0 if all(r.status.done for r in results) else 2)


@migrate.command("rollback")
@click.argument("migration_id")
@aws_options
@click.option("--offline", is_flag=True,
              help="Fence the new table for the whole copy back (the app's writes refused meanwhile) [default: "
                   "online when the migration has `catch_up: stream`].")
@click.option("--fence-quiet", type=Seconds(), default=FENCE_QUIET, show_default=True,
              help="The cut-over: seconds the fenced new table's stream must stay quiet before the switch back.")
@click.option("--fence-settle", type=Seconds(), default=FENCE_SETTLE, show_default=True,
              help="The cut-over: writes still arriving this long after the fence mean it does not hold (refused).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for CI).")
@handle_errors
def migrate_rollback(output_format, migration_id, offline, fence_quiet, fence_settle, yes, target):
    """Switch a table migration's binding back to its source, every write the app made to the
    new table since the switch carried back (through the checklist's `reverse:` after a transform
    or a key change; without one, refused, listing the keys written since the switch).

    Online (`catch_up: stream`): the new table's stream is read (turned on when off), every item
    copied back while the app writes, the writes made meanwhile replayed, both sides verified;
    then the new table is fenced, its stream drained, the keys written since checked, and the
    binding switched back: the app's writes wait a few seconds. --offline (and a migration
    without `catch_up: stream`): the new table fenced for the whole copy back. Tables are never
    deleted; the new one stays, fenced."""
    project = load_project(target, sections_of(MIGRATE_SECTIONS))
    confirm(yes, f"Switch the binding of {migration_id} back to its source?", "roll back")
    options = MigrateOptions(offline=offline, fence_quiet=fence_quiet, fence_settle=fence_settle, stop_hard=True)
    echo(report.formatter(output_format).migrations([project.rollback_migration(migration_id, log=stderr,
                                                                                options=options)]))
