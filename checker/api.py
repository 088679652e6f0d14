"""checker from Python: load a project once, then plan, apply, wait and check.

    from checker.api import Project, Target
    project = Project.load(Target(checklist_path=Path("checklist.yaml"), env="prod"))
    changes = project.plan()                      # list of Change; never writes
    applied, waited = project.apply(changes)      # ApplyResult, WaitResult (or None)
    results = project.check()                     # list of CheckResult, each with a Status

The CLI is a thin layer over this module: it parses options, calls these methods and picks a
formatter. Everything here raises CheckerError (one line, no traceback) for what a user can fix.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

# Light at import time (`checker --help` must start fast): boto3, botocore, jsonschema and yaml
# are imported by the methods that use them.
from .errors import CheckerError, Interrupted, call
from .kinds import KIND_NAMES, KINDS, SMOKE_KINDS, sections_of
from .migrate.options import MigrateOptions
from .results import DEFAULT_CONCURRENCY, ApplyResult, CheckResult, Status, gate_passes, summarize
from .secrets import Redactor, masked_url
from .target import DEFAULT_CHECKLIST, Target
from .text import clip, escape_controls

if TYPE_CHECKING:
    from .checklist import Checklist
    from .environment import Environment
    from .wait import ProgressCallback, WaitResult


__all__ = ["Project", "Validation", "validate", "choose_kinds", "CheckerError", "CheckResult", "Status",
           "summarize", "Interrupted", "KIND_NAMES", "SMOKE_KINDS", "KINDS", "DEFAULT_CHECKLIST", "timeout_message",
           "ApplyResult", "sections_of", "Redactor", "clip", "masked_url", "environment_names", "export",
           "Target", "for_each_environment", "init", "changes_to_apply", "escape_controls", "command_scope",
           "MigrateOptions", "describe_pending", "gate_passes"]


def describe_pending(pending: list) -> list:
    from .migrate import describe_pending as describe
    return describe(pending)


def changes_to_apply(changes: list, allow_capacity_changes: bool = False) -> list:
    """What apply will send of a plan (checker/policy.py decides, for the prompt as for apply)."""
    from .policy import to_apply
    return to_apply(changes, allow_capacity_changes)


def made_anyway(changes: list) -> list:
    """apply --create: a plan whose changes to tables a template owns apply makes too."""
    from .policy import made_anyway as anyway
    return anyway(changes)


def timeout_message(result, timeout: float) -> str:
    from .wait import timeout_message as message
    return message(result, timeout)

TABLE_SECTIONS = sections_of(())
Log = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class Validation:
    files: int
    problems: list

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(specs_dir=None, checklist_path=None) -> Validation:
    """Specs and checklist, offline: every problem, each naming its file and JSON path."""
    from .checklist import checklist_problems
    from .iac import is_template
    from .specs import SpecError, spec_files, validate_spec_files
    from .target import checklist_header, specs_directory
    from .target import checklist_path as find_checklist
    checklist = find_checklist(checklist_path)
    try:
        header = checklist_header(checklist) if checklist is not None else {}
    except SpecError as exc:
        return Validation(1, list(exc.problems))
    location = specs_directory(Target(specs_dir=specs_dir), checklist, header)
    if is_template(location):
        files, specs, problems = [location], *template_problems(location, header)
    else:
        files = spec_files(location)
        specs, problems = validate_spec_files(files)
    if checklist is not None:
        files.append(checklist)
        # offline: a ${VAR} never needs its value here (sections=() asks for none)
        problems += checklist_problems(checklist, {s.name: s for s in specs} if not problems else None,
                                       sections=())[1]
    return Validation(len(files), problems)


OFFLINE_ACCOUNT = "000000000000"   # validate's AWS::AccountId: only the shape of a name is checked offline


def template_problems(location: Path, header: dict) -> tuple:
    """(specs, problems) of a template resolved for each of the checklist's environments (its
    parameters there; none: the template's defaults), each problem said once."""
    from .iac import template_specs, unique_names
    from .target import template_context
    problems: list = []
    specs: list = []
    for env in header.get("environments") or [None]:
        # offline the account is not known: a stand-in one checks the shape of what it goes into
        found, more = template_specs(location, template_context(Target(), header, env, lambda: OFFLINE_ACCOUNT))
        more += unique_names(found)
        specs = specs or found
        problems += [p for p in more if p not in problems]
    return specs, problems


def environment_names(target: Target) -> list:
    """Every environment of the target's checklist, in its order (for --all-envs)."""
    from .target import environment_names as names
    return names(target)


def command_scope():
    """A context in which a command's --timeout bounds every connection of the process (see
    deadline.Watchdog); the CLI runs each command in one, so one run does not bound the next."""
    from .deadline import WATCHDOG
    return WATCHDOG.command()


def choose_kinds(only=(), skip=(), allowed=KIND_NAMES) -> tuple:
    """The kinds of check to run from --only/--skip style lists ("a,b" items allowed)."""
    def split(values):
        names = [n.strip() for value in values for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in KIND_NAMES]
        if unknown:
            raise CheckerError(f"unknown check kind(s) {', '.join(unknown)}; kinds are {', '.join(KIND_NAMES)}")
        return names
    chosen = split(only) or list(allowed)
    outside = [k for k in chosen if k not in allowed]
    if outside:
        raise CheckerError(f"--only {', '.join(outside)}: this command runs only {', '.join(allowed)}")
    skipped = set(split(skip))
    return tuple(k for k in allowed if k in chosen and k not in skipped)


@dataclass(frozen=True)
class Project:
    """What a command works on: one resolved Environment (the tables named for it, where they
    live, the checklist), and the operations on it. Everything below receives the Environment."""

    environment: Environment

    @classmethod
    def load(cls, target: Optional[Target] = None, sections=TABLE_SECTIONS, use_checklist: bool = True) -> Project:
        """Read the specs and the checklist the Target names, once (`use_checklist=False`: none,
        even when checklist.yaml exists). `sections` are the checklist sections whose ${VAR}s
        must be set (a plan does not need the endpoints' API token)."""
        from .environment import resolve
        return cls(resolve(target or Target(), sections, use_checklist))

    def before_migrations(self) -> Project:
        """This project as it stands before its table migrations: their targets left out (apply
        makes a new environment in its final shape at once; `checker local` rehearses instead)."""
        return Project(dataclasses.replace(self.environment,
                                           tables=[t for t in self.environment.tables if not t.migrate_from]))

    # -- what it is -----------------------------------------------------------------------
    @property
    def tables(self) -> list:
        return self.environment.tables

    @property
    def checklist(self) -> Optional[Checklist]:
        return self.environment.checklist

    @property
    def env_name(self) -> Optional[str]:
        return self.environment.name

    @property
    def region(self) -> Optional[str]:
        return self.environment.region

    @property
    def function_name(self) -> Optional[str]:
        return self.environment.function_name

    def dynamodb(self):
        return self.environment.dynamodb()

    def account_id(self) -> Optional[str]:
        return self.environment.account_id()

    def command(self, subcommand: str) -> str:
        """A whole `checker` command line acting on this project, as a fix line shows it."""
        return self.environment.command(subcommand)

    def require_sections(self, kinds) -> None:
        """--only naming a kind the checklist has no section for is a mistake, not a skip."""
        absent = [k for k in KINDS if k.name in kinds and k.section != "tables"
                  and not (self.checklist and self.checklist.has(k.section))]
        if absent:
            where = self.checklist.file if self.checklist else "there is no checklist"
            sections = ", ".join(sorted({k.section for k in absent}))
            raise CheckerError(f"--only {', '.join(k.name for k in absent)}: not in the checklist ({where}: no "
                               f"{sections} section)")

    def secrets(self) -> Redactor:
        """A redactor that knows every secret this project's checklist and options hold."""
        redactor = Redactor()
        redactor.add_url(self.environment.aws.endpoint_url or "")
        redactor.add_variables(self.checklist.variable_values if self.checklist else ())
        for endpoint in self.checklist.endpoints if self.checklist else ():
            redactor.add_headers(endpoint.headers)
            redactor.add_url(endpoint.url or "")
        for environment in self.checklist.environments.values() if self.checklist else ():
            redactor.add_url(environment.base_url or "")
        return redactor

    # -- tables ---------------------------------------------------------------------------
    def plan(self, for_apply: bool = False) -> list:
        """Every difference between the specs and live DynamoDB (Change objects). Never writes.
        `for_apply`: the plan apply sends at once, which may list tables rather than describe
        each missing one (live.py)."""
        from .plan import read_plan
        return read_plan(self.environment, for_apply)

    def apply(self, changes: Optional[list] = None, timeout: float = 1800, concurrency: Optional[int] = DEFAULT_CONCURRENCY,
              allow_capacity_changes: bool = False, on_change: Optional[ProgressCallback] = None,
              log: Log = _quiet) -> tuple:
        """Make the plan's automatic changes (`changes`, else a fresh plan), wait for every table
        and GSI, then re-read what changed: (ApplyResult, WaitResult)."""
        from .apply import apply_plan
        return apply_plan(self.environment, self.plan(for_apply=True) if changes is None else changes, timeout=timeout,
                          concurrency=concurrency, allow_capacity_changes=allow_capacity_changes,
                          on_change=on_change, log=log)

    def wait(self, timeout: float = 600, on_change: Optional[ProgressCallback] = None, grace: float = 30.0,
             heartbeat: Optional[Callable] = None) -> WaitResult:
        """Until every table and GSI is ACTIVE; a table nobody creates fails after `grace`."""
        from .wait import wait_until_active
        return wait_until_active(self.dynamodb(), self.environment.names, timeout, on_change, grace=grace,
                                 heartbeat=heartbeat, apply_command=self.command("apply"),
                                 indexes={t.name: t.spec.global_index_names for t in self.environment.tables})

    # -- migrations (checker/migrate/, docs/migrations.md) ----------------------------------
    def pending_migrations(self) -> list:
        """[(migration, ledger entry or None)] not finished in this environment."""
        from .migrate import pending
        return pending(self.environment)

    def migrate(self, pending: list, options=None, log: Log = _quiet, clock=None) -> list:
        """Run `pending` (from pending_migrations()): a list of MigrationResult. `clock` (a
        poll.Clock) is what the migration's waits, backoffs and --timeout run on."""
        from .migrate import run_pending
        from .poll import REAL
        return run_pending(self.environment, pending, options or MigrateOptions(), echo=log, clock=clock or REAL)

    def migration_status(self) -> list:
        from .migrate import status
        return status(self.environment)

    def rollback_migration(self, migration_id: str, log: Log = _quiet, options=None, clock=None):
        from .migrate import rollback_table
        from .poll import REAL
        return rollback_table(self.environment, migration_id, echo=log, options=options, clock=clock or REAL)

    # -- checks ---------------------------------------------------------------------------
    def check(self, kinds=KIND_NAMES, function_name: Optional[str] = None, base_url: Optional[str] = None,
              since: Optional[str] = None, started_ms: Optional[int] = None, settle: float = 0,
              smoke: bool = False, log: Log = _quiet) -> list:
        """Run the kinds of check; every failure is a result. `since` (15m, 2h, an ISO time, epoch
        ms) bounds the log count, by default the start of the run. `smoke`: the endpoint calls of
        this run must have left logs behind."""
        from .checks import run_checks
        from .checks.logs import parse_since, since_note
        from .context import CheckContext
        started_ms = started_ms if started_ms is not None else int(time.time() * 1000)
        try:
            since_ms = parse_since(since, started_ms) if since else started_ms
        except ValueError as exc:
            raise CheckerError(f"--since: {exc}") from None
        context = CheckContext.of(self.environment, function_name=function_name, base_url=base_url,
                                  since_ms=since_ms, since_note=since_note(since), logs_settle=settle, smoke=smoke)
        return run_checks(context, kinds, log=log)

    def render_fixes(self, results: list) -> list:
        """A result's `checker_command` becomes a whole command line in its remediation, with the
        options that point it where this project does."""
        def render(result: CheckResult) -> CheckResult:
            if not result.checker_command:
                return result
            command = self.command(result.checker_command)
            text = f"{result.remediation}: {command}" if result.remediation else command
            return dataclasses.replace(result, remediation=text)
        return [render(r) for r in results]

    def smoke_after_switch(self, base_url: Optional[str] = None, log: Log = _quiet) -> list:
        """The smoke checks the checklist has, right after a migration switched the app: it must
        work on the new table (the tables' readiness always; bindings, endpoints and logs when
        the checklist has them)."""
        by_name = {k.name: k for k in KINDS}
        kinds = [k for k in ("tables", "bindings", "endpoints", "logs")
                 if k == "tables" or (self.checklist and self.checklist.has(by_name[k].section))]
        return self.render_fixes(self.check(kinds, base_url=base_url, smoke=True, log=log))

    # -- IAM ------------------------------------------------------------------------------
    def iam_policy(self, account_id: Optional[str] = None) -> dict:
        """The least-privilege policy of the checklist's permissions on this environment's tables."""
        from .iam_policy import least_privilege_policy
        if self.checklist is None or not self.checklist.permissions:
            raise CheckerError("no iam.permissions in the checklist: nothing to grant")
        aws = self.environment.aws
        region = aws.region or aws.session().region_name
        if not region:
            raise CheckerError("no AWS region: pass --region or --env with a region, or set AWS_REGION")
        if account_id is None:
            account_id = call(self.environment.client("sts"), "GetCallerIdentity", "sts")["Account"]
        return least_privilege_policy(self.checklist.permissions, self.tables, region, account_id)


def for_each_environment(target: Target, names, work: Callable) -> dict:
    """{environment: work(the target of that environment) or the CheckerError it ended with},
    every environment at once: one that cannot be reached is its own error, the others still run.
    The CLI's --env/--all-envs fan out through here, and so can a deploy script."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(name):
        try:
            return work(target.with_env(name))
        except CheckerError as exc:
            return exc
    names = list(names)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
        return dict(zip(names, pool.map(attempt, names), strict=True))


def init(directory, target: Optional[Target] = None, function_name: Optional[str] = None, env: str = "dev",
         force: bool = False, template: Optional[Path] = None):
    """checklist.yaml and table_specs/ in `directory`: from a live function (where `target`
    points: its region, endpoint, prefix/suffix), from a `template` (its tables stay there;
    `function_name` is then the function's logical id), else a starter (checker/init.py).
    Returns what was written and what to fix by hand."""
    from .checklist import ENVIRONMENT_NAME
    from .environment import where
    from .init import init_from_function, init_from_template, write_starter
    if not ENVIRONMENT_NAME.fullmatch(env):
        raise CheckerError(f"--env {clip(env, 60)!r}: an environment name is letters, digits, _ and -")
    directory = Path(directory)
    if template is not None:
        return init_from_template(directory, Path(template), env, (target or Target()).region, function_name, force)
    if function_name is None:
        return write_starter(directory, force)
    return init_from_function(directory, function_name, env, where(target or Target()), force)


def export(out_dir, target: Optional[Target] = None, tables=(), force: bool = False, every: bool = False):
    """Write a spec file per live table of one environment (those named, else every table with
    its prefix/suffix, less another environment's unless `every`), the prefix/suffix removed;
    never overwrite a file without `force`. `target` names the environment as for every AWS
    command (--env, else the checklist's default_env; only its environments are read, no spec)."""
    from .environment import resolve
    from .export import export_tables
    return export_tables(resolve(target or Target(), tables=False), out_dir, tables, force, every)
