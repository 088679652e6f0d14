"""The options commands share, declared once: where a command acts (built into one `Target`),
apply's, the checks', and the number types they take."""
from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import click

from .. import report
from ..api import (
    DEFAULT_CHECKLIST,
    KIND_NAMES,
    CheckerError,
    MigrateOptions,
    Target,
    clip,
    environment_names,
)
from .output import OUTPUT


def add_options(command, options):
    for option in reversed(options):
        command = option(command)
    return command


def spec_options(command, formats=("text", "json"), specs: bool = True, checklist: bool = True):
    """--specs, --checklist and --format (each unless the command has its own, or none)."""
    options = []
    if specs:
        options.append(click.option("--specs", "specs_dir", default=None, type=click.Path(path_type=Path),
                                    help="Directory of table specs (CreateTable JSON, one table a file), or the template "
                                         "the tables are deployed with (CloudFormation/SAM, CDK's cdk.out/*.template.json, "
                                         "`terraform show -json`) [default: the checklist's specs:, else table_specs "
                                         "beside the checklist]."))
    if checklist:
        options.append(click.option("--checklist", "checklist_path", default=None,
                                    type=click.Path(dir_okay=False, path_type=Path),
                                    help=f"Deployment checklist [default: {DEFAULT_CHECKLIST} when it exists]."))
    if formats:
        options.append(click.option("--format", "output_format", type=click.Choice(formats), default="text",
                                    show_default=True, help="Output format for the result on stdout."))
    return add_options(command, options)


RETRY_OPTIONS = [
    click.option("--retry-mode", type=click.Choice(["standard", "adaptive", "legacy"]), default=None,
                 help="botocore retry mode for throttling and transient errors [default: standard]."),
    click.option("--max-attempts", type=click.IntRange(1, 20), default=None,
                 help="botocore attempts per API call, first included [default: 5]."),
]


DEFAULT_TIMEOUT = 300   # seconds a read-only AWS command may take, whatever AWS does
FINAL_READS = 10        # apply and wait: after their --timeout, the re-read that says what is not ready


def aws_options(command=None, formats=("text", "json"), many_envs=False, own_timeout=False, specs=True, env=True):
    """The options that say where and which tables; the command receives them as `target`
    (a Target: what was given, built once) besides its own. With `many_envs` (the read-only
    commands), `--env` may be repeated and `--all-envs` given: the command also receives
    `envs`, the environments named (empty: the one the checklist defaults to). Without `specs`
    (export writes them) the command has its own --specs; without `env` (init names a new one)
    neither --env nor --checklist."""
    if command is None:
        return functools.partial(aws_options, formats=formats, many_envs=many_envs, own_timeout=own_timeout,
                                 specs=specs, env=env)
    names = (("specs_dir",) if specs else ()) + (("checklist_path",) if env else ()) + (
        "region", "profile", "endpoint_url", "table_prefix", "table_suffix", "retry_mode", "max_attempts")

    @functools.wraps(command)
    def with_target(*args, **kwargs):
        given = {name: kwargs.pop(name) for name in names}
        env_names = tuple(dict.fromkeys(kwargs.pop("env_names"))) if env else ()  # --env dev --env dev is dev
        all_envs = kwargs.pop("all_envs", False)
        OUTPUT.add_url(given["endpoint_url"] or "")
        # Mistakes in choosing environments are usage errors: one line, exit 1, a result in the format
        if all_envs:
            if env_names:
                raise click.UsageError("--all-envs and --env: give one or the other")
            try:
                env_names = tuple(environment_names(Target(checklist_path=given.get("checklist_path"))))
            except CheckerError as exc:
                raise click.UsageError(str(exc)) from None
        if len(env_names) > 1 and not many_envs:
            raise click.UsageError(f"--env is given {len(env_names)} times: this command works on exactly one "
                                   "environment")
        # apply's and wait's own --timeout is their deadline too (their loops stop at it; the last
        # reads they make then get FINAL_READS seconds more); the others get --timeout here
        if own_timeout:
            timeout = kwargs["timeout"] + FINAL_READS if kwargs["timeout"] is not None else None
        else:
            timeout = kwargs.pop("timeout")
        target = Target(env=env_names[0] if len(env_names) == 1 else None, timeout=timeout, **given)
        group = click.get_current_context().find_object(Target)
        if group is not None:   # a subcommand of a group given options (`checker migrate --env prod status`)
            try:
                target = target.under(group)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
        if many_envs:
            kwargs["envs"] = env_names if len(env_names) > 1 else ()
        return command(*args, target=target, **kwargs)

    options = [
        *([click.option("--env", "env_names", multiple=True, metavar="NAME",
                        help="Environment from the checklist: its region, account (profile, role_arn) and table "
                             "prefix/suffix; needed when the checklist has environments, unless it sets default_env."
                             + (" Repeat it for several, checked side by side." if many_envs else ""))] if env else []),
        click.option("--region", default=None, help="AWS region [default: --env's, else AWS_REGION / profile]."),
        click.option("--profile", default=None, help="AWS named profile."),
        click.option("--endpoint-url", default=None, metavar="URL",
                     help="AWS endpoint for every service used, e.g. a moto server http://127.0.0.1:5000 "
                          "[default: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else AWS]."),
        click.option("--table-prefix", default=None, help="Prepended to every spec's TableName [default: --env's]."),
        click.option("--table-suffix", default=None, help="Appended to every spec's TableName [default: --env's]."),
        *RETRY_OPTIONS,
    ]
    if many_envs:
        options.insert(1, click.option("--all-envs", is_flag=True,
                                       help="Every environment of the checklist, side by side."))
    if not own_timeout:
        options.append(timeout_option())
    with_target = add_options(with_target, options)
    return spec_options(with_target, formats, specs=specs, checklist=env)


def apply_options(command):
    """What `apply` and `bootstrap` share: confirmation, the ACTIVE timeout, the concurrency."""
    return add_options(command, [
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for CI)."),
        click.option("--timeout", type=Seconds(), default=1800, show_default=True,
                     help="Seconds to wait for every table and GSI to become ACTIVE."),
        click.option("--concurrency", type=click.IntRange(1, 500), default=None,
                     help="Control-plane operations (CreateTable, UpdateTable, ...) in flight at once "
                          "[default: DynamoDB's limit, 500; 250 while creating tables with secondary indexes]."),
        click.option("--allow-capacity-changes", is_flag=True,
                     help="Also switch billing modes and lower provisioned capacity or on-demand maximums "
                          "(held back by default: either can throttle the app)."),
        click.option("--create", "create_owned", is_flag=True,
                     help="Also make the changes to tables a template owns (specs: template.yaml; held back by "
                          "default: its deploy makes them, and a table apply created makes that deploy fail)."),
    ])


def timeout_option():
    """The read-only commands' --timeout (apply and wait have their own, which is their deadline too)."""
    return click.option("--timeout", type=Seconds(), default=DEFAULT_TIMEOUT, show_default=True,
                        help="A deadline for the whole command: no AWS request (botocore's retries included) "
                             "is sent after it.")


class Seconds(click.ParamType):
    """A finite number of seconds, 0 or more (`nan` and `inf` would make a wait never end)."""

    name = "seconds"

    def __init__(self, maximum: float = 7 * 24 * 3600):
        self.maximum = maximum

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{clip(value, 40)!s} is not a number of seconds", param, ctx)
        if not math.isfinite(number) or not 0 <= number <= self.maximum:
            self.fail(f"{clip(value, 40)!s} is not between 0 and {self.maximum:g} seconds", param, ctx)
        return number


def check_options(command=None, many_envs=True, own_timeout=False):
    """Adds the check options; the command receives them as `request: dict` (Project.check's
    arguments, kinds aside)."""
    if command is None:
        return functools.partial(check_options, many_envs=many_envs, own_timeout=own_timeout)
    @functools.wraps(command)
    def with_request(*args, only, skip, function_name, base_url, since, settle, strict, **kwargs):
        request = {"only": only, "skip": skip, "function_name": function_name, "base_url": base_url,
                   "since": since, "settle": settle, "started_ms": int(time.time() * 1000), "strict": strict}
        return command(*args, request=request, **kwargs)

    with_request = add_options(with_request, [
        click.option("--only", multiple=True, metavar="KIND[,KIND]",
                     help=f"Run only these kinds of checks: {', '.join(KIND_NAMES)}."),
        click.option("--skip", multiple=True, metavar="KIND[,KIND]", help="Leave these kinds out."),
        click.option("--function", "function_name", default=None,
                     help="Lambda function [default: the environment's function_name, else lambda.function_name]."),
        click.option("--base-url", default=None, metavar="URL",
                     help="The app's base URL [default: the environment's base_url, else its Function URL / API]."),
        click.option("--since", default=None, metavar="WHEN",
                     help="Count log events since: 15m, 2h, 1d, an ISO time or epoch ms [default: start of this run]."),
        click.option("--settle", type=Seconds(3600), default=0, show_default=True, metavar="SECONDS",
                     help="Wait before counting log events, so that lines logged by the endpoint checks "
                          "have reached CloudWatch Logs (it takes a few seconds)."),
        click.option("--strict", is_flag=True,
                     help="Warnings fail too (exit 1): a check that could look only in part (a field not "
                          "compared, no log group yet, a conditional IAM grant) does not pass the gate."),
    ])
    return aws_options(with_request, formats=report.formats_for("checks"), many_envs=many_envs,
                       own_timeout=own_timeout)


MIGRATE_DEFAULTS = MigrateOptions()
FENCE_QUIET = MIGRATE_DEFAULTS.fence_quiet
FENCE_SETTLE = MIGRATE_DEFAULTS.fence_settle


def migrate_options(command):
    """`checker migrate`'s own options; the command receives them as `options` (one
    MigrateOptions, its defaults the options' defaults), --base-url and --yes aside."""
    @functools.wraps(command)
    def with_options(*args, no_switch, **kwargs):
        fields = {name: kwargs.pop(name) for name in MIGRATE_FIELDS}
        return command(*args, options=MigrateOptions(switch=not no_switch, stop_hard=True, **fields), **kwargs)

    default = MIGRATE_DEFAULTS
    return add_options(with_options, [
        click.option("--offline", is_flag=True,
                     help="Your word that the app is not writing to the tables being migrated (table migrations need it)."),
        click.option("--no-switch", is_flag=True, help="Stop a table migration at `verified`: the binding is switched later."),
        click.option("--dry-run", is_flag=True,
                     help="Count what data migrations would change (keys and attribute names, no values); write nothing."),
        click.option("--allow-deletes", is_flag=True, help="Let a data migration's transform return DELETE."),
        click.option("--allow-weaker-target", is_flag=True,
                     help="Migrate into a table that lacks the source's SSE, PITR, TTL or deletion protection."),
        click.option("--segments", type=click.IntRange(1, 64), default=default.segments, show_default=True,
                     help="Parallel Scan segments (workers) per table."),
        click.option("--capacity-share", type=click.FloatRange(0.05, 1.0), default=default.capacity_share,
                     show_default=True, help="Share of a provisioned table's capacity a migration may use."),
        click.option("--page-items", type=click.IntRange(1, 10000), default=default.page_items, show_default=True,
                     help="Items a Scan page (a checkpoint after each): memory stays a page a segment."),
        click.option("--via", type=click.Choice(["scan", "s3"]), default=default.via, show_default=True,
                     help="How a table migration copies: a parallel Scan, or DynamoDB's export to S3 and import (big tables)."),
        click.option("--bucket", default=None, metavar="NAME", help="With --via s3: the S3 bucket the export is written to."),
        click.option("--prefix", default=default.prefix, show_default=True,
                     help="With --via s3: the key prefix of the export in the bucket."),
        click.option("--timeout", type=Seconds(), default=None,
                     help="Stop after this many seconds, every segment checkpointed (exit 1; run again to resume) "
                          "[default: none]."),
        click.option("--fence-quiet", type=Seconds(), default=default.fence_quiet, show_default=True,
                     help="The cut-over: seconds the fenced source's stream must stay quiet before the switch."),
        click.option("--fence-settle", type=Seconds(), default=default.fence_settle, show_default=True,
                     help="The cut-over: writes still arriving this long after the fence mean it does not hold (refused)."),
    ])


MIGRATE_FIELDS = ("offline", "dry_run", "allow_deletes", "allow_weaker_target", "segments", "capacity_share",
                  "page_items", "via", "bucket", "prefix", "timeout", "fence_quiet", "fence_settle")
