"""checker from Python: load a project once, then plan, apply, wait and check.

    from checker.api import Project
    project = Project.load("table_specs", "checklist.yaml", env="prod")
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .deadline import Deadline

# Light at import time (`checker --help` must start fast): boto3, botocore, jsonschema and yaml
# are imported by the methods that use them.
from .errors import CheckerError, Interrupted, call
from .kinds import KIND_NAMES, KINDS, SMOKE_KINDS, sections_of
from .results import DEFAULT_CONCURRENCY, Action, ApplyResult, CheckResult, Status, escape_controls, summarize
from .secrets import Redactor, clip, masked_url
from .target import DEFAULT_CHECKLIST, DEFAULT_SPECS, Target

if TYPE_CHECKING:
    from .aws import AwsOptions
    from .checklist import Checklist, Environment
    from .wait import ProgressCallback, WaitResult


__all__ = ["Project", "Validation", "validate", "choose_kinds", "CheckerError", "CheckResult", "Status",
           "summarize", "Interrupted", "KIND_NAMES", "SMOKE_KINDS", "KINDS", "DEFAULT_CHECKLIST", "timeout_message",
           "ApplyResult", "sections_of", "Redactor", "clip", "masked_url", "environment_names", "export", "Export",
           "Target", "for_each_environment", "init", "changes_to_apply", "escape_controls", "command_scope",
           "MigrateOptions", "describe_pending"]


def MigrateOptions(**options):   # noqa: N802 - the dataclass, imported when used
    from .migrate import MigrateOptions as Options
    return Options(**options)


def describe_pending(pending: list) -> list:
    from .migrate import describe_pending as describe
    return describe(pending)


def changes_to_apply(changes: list, allow_capacity_changes: bool = False) -> list:
    """What apply will send of a plan (checker/policy.py decides, for the prompt as for apply)."""
    from .policy import to_apply
    return to_apply(changes, allow_capacity_changes)


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
    from .specs import SpecError, spec_files, validate_spec_files
    checklist = _checklist_path(checklist_path)
    try:
        header = checklist_header(checklist) if checklist is not None else {}
    except SpecError as exc:
        return Validation(1, list(exc.problems))
    files = spec_files(specs_directory(Target(specs_dir=specs_dir), checklist, header))
    specs, problems = validate_spec_files(files)
    if checklist is not None:
        files.append(checklist)
        # offline: a ${VAR} never needs its value here (sections=() asks for none)
        problems += checklist_problems(checklist, {s.name: s for s in specs} if not problems else None,
                                       sections=())[1]
    return Validation(len(files), problems)


def _checklist_path(path) -> Optional[Path]:
    """The checklist to use: the one named (which must exist), else checklist.yaml if present;
    False: none."""
    if path is False:
        return None
    if path is None:
        default = Path(DEFAULT_CHECKLIST)
        return default if default.exists() else None
    path = Path(path)
    if not path.exists():
        raise CheckerError(f"{path}: checklist not found")
    return path


def environment_names(checklist_path=None) -> list:
    """Every environment of the checklist, in its order (for --all-envs)."""
    from .checklist import load_checklist
    path = _checklist_path(checklist_path)
    if path is None:
        raise CheckerError(f"--all-envs needs a checklist ({DEFAULT_CHECKLIST} or --checklist FILE)")
    return list(load_checklist(path, sections=("environments",)).environments)


def checklist_header(path: Path) -> dict:
    """What must be known before the checklist can be loaded in full: the specs directory it
    names, its default_env and its environments' names (a malformed file fails here, whole)."""
    from .checklist import read_checklist_document
    from .specs import SpecError
    document, problems = read_checklist_document(path)
    if problems:
        raise SpecError(problems)
    if not isinstance(document, dict):
        return {}
    environments = document.get("environments")
    return {"specs": document.get("specs") if isinstance(document.get("specs"), str) else None,
            "default_env": document.get("default_env") if isinstance(document.get("default_env"), str) else None,
            "environments": list(environments) if isinstance(environments, dict) else [],
            "local": document.get("local") if isinstance(document.get("local"), dict) else {},
            "require": entry.get("require") if isinstance(entry := document.get("entry_point"), dict) else None}


def specs_directory(target: Target, checklist: Optional[Path], header: dict) -> Path:
    """--specs when given; else the checklist's `specs:` (relative to the checklist); else
    table_specs beside the checklist (or here, without one)."""
    if target.specs_dir is not None:
        return Path(target.specs_dir)
    base = checklist.parent if checklist is not None else Path(".")
    specs = header.get("specs")
    if specs is None:
        return base / DEFAULT_SPECS
    from .checklist import specs_path_problem
    problem = specs_path_problem(specs)
    if problem:
        raise CheckerError(f"{checklist}: $.specs: {problem}")
    return base / specs


def _where(environment: Optional[Environment], region, profile, endpoint_url, table_prefix, table_suffix,
           retry_mode: Optional[str], max_attempts: Optional[int], timeout: Optional[float] = None) -> tuple:
    """(AwsOptions, table prefix, table suffix): each option given wins over the environment's;
    `timeout` is the command's deadline."""
    from .aws import AwsOptions

    def chosen(option, field_name, default=None):
        return option if option is not None else (getattr(environment, field_name) if environment else default)
    aws = AwsOptions(region=chosen(region, "region"), profile=chosen(profile, "profile"),
                     endpoint_url=chosen(endpoint_url, "endpoint_url"), role_arn=chosen(None, "role_arn"),
                     retry_mode=retry_mode, max_attempts=max_attempts,
                     deadline=Deadline(timeout).arm() if timeout is not None else None)
    return aws, chosen(table_prefix, "table_prefix", ""), chosen(table_suffix, "table_suffix", "")


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
    """What a command works on: the tables (named for the environment), where they live, and the
    checklist with the chosen environment when there is one. `target` is what was asked for."""

    aws: AwsOptions
    tables: list
    checklist: Optional[Checklist] = None
    environment: Optional[Environment] = None
    target: Target = field(default_factory=Target)
    table_prefix: str = ""
    table_suffix: str = ""
    _clients: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, specs=None, checklist=None, env: Optional[str] = None, region: Optional[str] = None,
             profile: Optional[str] = None, endpoint_url: Optional[str] = None,
             table_prefix: Optional[str] = None, table_suffix: Optional[str] = None,
             retry_mode: Optional[str] = None, max_attempts: Optional[int] = None,
             sections=TABLE_SECTIONS) -> Project:
        """Read the specs and the checklist once (`checklist`: a path, None for checklist.yaml when it
        exists, False for none). `sections` are the checklist sections whose ${VAR}s must be set
        (a plan does not need the endpoints' API token)."""
        target = Target(specs_dir=Path(specs) if specs is not None else None,
                        checklist_path=Path(checklist) if checklist not in (None, False) else None,
                        env=env, region=region, profile=profile, endpoint_url=endpoint_url,
                        table_prefix=table_prefix, table_suffix=table_suffix, retry_mode=retry_mode,
                        max_attempts=max_attempts)
        return cls.for_target(target, sections, use_checklist=checklist is not False)

    @classmethod
    def for_target(cls, target: Target, sections=TABLE_SECTIONS, use_checklist: bool = True) -> Project:
        """The project a Target names: its checklist (which, when it defines environments, needs
        --env or its default_env), the specs it names, the environment's AWS options under the
        options given."""
        from .checklist import TABLE_NAME, load_checklist
        from .diff import ExpectedTable
        from .specs import load_specs
        path = _checklist_path(target.checklist_path) if use_checklist else None
        header = checklist_header(path) if path else {}
        env = target.env or header.get("default_env")
        if path and env is None and header.get("environments"):
            names = ", ".join(header["environments"])
            raise CheckerError(f"{path} defines environments ({clip(names, 200)}): pass --env NAME, or set "
                               "default_env in the checklist")
        if env and path is None:
            raise CheckerError(f"--env {env} needs a checklist ({DEFAULT_CHECKLIST} or --checklist FILE)")
        specs_dir = specs_directory(target, path, header)
        loaded_specs = load_specs(specs_dir)
        loaded = load_checklist(path, {s.name: s for s in loaded_specs}, sections, env) if path else None
        environment = loaded.environment(env) if loaded is not None and env else None
        aws, prefix, suffix = _where(environment, target.region, target.profile, target.endpoint_url,
                                     target.table_prefix, target.table_suffix, target.retry_mode, target.max_attempts,
                                     target.timeout)
        tables = []
        for spec in loaded_specs:
            name = f"{prefix}{spec.name}{suffix}"
            if not TABLE_NAME.fullmatch(name):
                given = "--table-prefix/--table-suffix" if target.table_prefix or target.table_suffix \
                    else f"environment {env}"
                raise CheckerError(f"{given}: makes table name {clip(name, 80)!r}, which DynamoDB rejects "
                                   "(3 to 255 characters of a-z A-Z 0-9 _ . -)")
            wishes = loaded.wishes(spec.name) if loaded else None
            source = wishes.migrate_from if wishes else None
            tables.append(ExpectedTable(spec.for_environment(prefix, suffix),
                                        ttl_attribute=wishes.ttl_attribute if wishes else None,
                                        point_in_time_recovery=wishes.point_in_time_recovery if wishes else False,
                                        spec_name=spec.name,
                                        migrate_from=f"{prefix}{source}{suffix}" if source else None,
                                        transform=wishes.transform if wishes else None,
                                        catch_up=wishes.catch_up if wishes else None))
        return cls(aws, tables, loaded, environment, target, table_prefix=prefix, table_suffix=suffix)

    @property
    def env_name(self) -> Optional[str]:
        return self.environment.name if self.environment else None

    @property
    def region(self) -> Optional[str]:
        try:
            return self.aws.region or self.aws.session().region_name
        except CheckerError:
            return None

    def account_id(self) -> Optional[str]:
        """The account the credentials act in (sts:GetCallerIdentity), or None when it cannot be
        told at once (an endpoint without STS, such as dynalite): for a prompt, never a failure."""
        try:
            sts = dataclasses.replace(self.aws, max_attempts=1, connect_timeout=2.0, read_timeout=5.0).client("sts")
            return str(sts.get_caller_identity()["Account"])
        except Exception:  # noqa: BLE001 - best effort by design
            return None

    def require_sections(self, kinds) -> None:
        """--only naming a kind the checklist has no section for is a mistake, not a skip."""
        absent = [k for k in KINDS if k.name in kinds and k.section != "tables"
                  and not (self.checklist and self.checklist.has(k.section))]
        if absent:
            where = self.checklist.file if self.checklist else "there is no checklist"
            sections = ", ".join(sorted({k.section for k in absent}))
            raise CheckerError(f"--only {', '.join(k.name for k in absent)}: not in the checklist ({where}: no "
                               f"{sections} section)")

    def command(self, subcommand: str) -> str:
        """A whole `checker` command line acting on this project, as a fix line shows it."""
        return self.target.command(subcommand, self.env_name)

    @property
    def names(self) -> list:
        return [t.name for t in self.tables]

    @property
    def function_name(self) -> Optional[str]:
        """The environment's function, else the checklist's default."""
        return ((self.environment.function_name if self.environment else None)
                or (self.checklist.function_name if self.checklist else None))

    def secrets(self) -> Redactor:
        """A redactor that knows every secret this project's checklist and options hold."""
        redactor = Redactor()
        redactor.add_url(self.aws.endpoint_url or "")
        redactor.add_variables(self.checklist.variable_values if self.checklist else ())
        for endpoint in self.checklist.endpoints if self.checklist else ():
            redactor.add_headers(endpoint.headers)
            redactor.add_url(endpoint.url or "")
        for environment in self.checklist.environments.values() if self.checklist else ():
            redactor.add_url(environment.base_url or "")
        return redactor

    def dynamodb(self):
        if "dynamodb" not in self._clients:
            self._clients["dynamodb"] = self.aws.client("dynamodb")
        return self._clients["dynamodb"]

    # -- tables ---------------------------------------------------------------------------
    def plan(self, for_apply: bool = False) -> list:
        """Every difference between the specs and live DynamoDB (Change objects). Never writes.
        `for_apply`: the plan apply sends at once, which may list tables rather than describe
        each missing one (live.py)."""
        from .diff import LiveTable, diff_tables
        from .live import describe_tables, read_tables
        client = self.dynamodb()
        live = read_tables(client, self.tables, list_first=for_apply)
        sources = sorted({t.migrate_from for t in self.tables if t.migrate_from and t.migrate_from not in live})
        live |= {name: LiveTable(name, found) for name, found in describe_tables(client, sources).items()}
        changes = diff_tables(self.tables, live)
        if any(t.migrate_from for t in self.tables) or self.has_data_migrations:
            from .migrate import pending_changes
            changes += pending_changes(self, live)
        return changes

    @property
    def has_data_migrations(self) -> bool:
        from .migrate import migrations_directory
        directory = migrations_directory(self)
        return directory is not None and directory.is_dir() and any(directory.glob("*.py"))

    def ledger(self):
        """The migration ledger of this environment (checker/ledger.py)."""
        from .ledger import Ledger, ledger_name
        return Ledger(self.dynamodb(), ledger_name(self.table_prefix, self.table_suffix))

    # -- migrations (checker/migrate.py, docs/migrations.md) ----------------------------------
    def pending_migrations(self) -> list:
        """[(migration, ledger entry or None)] not finished in this environment."""
        from .migrate import pending
        return pending(self)

    def migrate(self, pending: list, options=None, log: Log = _quiet) -> list:
        """Run `pending` (from pending_migrations()): a list of MigrationResult."""
        from .migrate import MigrateOptions, run_pending
        return run_pending(self, pending, options or MigrateOptions(), echo=log)

    def migration_status(self) -> list:
        from .migrate import status
        return status(self)

    def rollback_migration(self, migration_id: str, log: Log = _quiet):
        from .migrate import rollback_table
        return rollback_table(self, migration_id, echo=log)

    def apply(self, changes: Optional[list] = None, timeout: float = 1800, concurrency: Optional[int] = DEFAULT_CONCURRENCY,
              allow_capacity_changes: bool = False, on_change: Optional[ProgressCallback] = None,
              log: Log = _quiet) -> tuple:
        """Make the plan's automatic changes (`changes`, else a fresh plan), wait for every table
        and GSI, then re-read what changed: (ApplyResult, WaitResult)."""
        from .apply import apply_changes, verify_applied
        from .wait import WaitResult, table_state, wait_until_active
        client = self.dynamodb()
        if changes is None:
            changes = self.plan(for_apply=True)
        result = apply_changes(client, changes, timeout=timeout, concurrency=concurrency, on_change=on_change,
                               log=log, allow_capacity_changes=allow_capacity_changes)
        # every table that exists is waited for and every change re-read, whatever else failed: a
        # failed change must not hide that another, reported made, is not in effect
        never_created = {o.change.table for o in result.failed if o.change.action == Action.CREATE_TABLE} | {
            c.table for c in changes if c.action == Action.MIGRATE_TABLE}   # checker migrate creates those
        # what apply's loop last saw ready after its changes needs no second look; the rest is waited for
        unseen = [n for n in self.names if n not in never_created and n not in result.seen]
        waited = wait_until_active(client, unseen, timeout, on_change)
        states = {s.name: s for s in waited.states} | {n: table_state(n, d) for n, d in result.seen.items()}
        waited = WaitResult([states[n] for n in self.names if n in states], waited.seconds)
        if waited.ready:
            result = verify_applied(client, self.tables, result)
        return result, waited

    def wait(self, timeout: float = 600, on_change: Optional[ProgressCallback] = None, grace: float = 30.0,
             heartbeat: Optional[Callable] = None) -> WaitResult:
        """Until every table and GSI is ACTIVE; a table nobody creates fails after `grace`."""
        from .wait import wait_until_active
        return wait_until_active(self.dynamodb(), self.names, timeout, on_change, grace=grace, heartbeat=heartbeat)

    # -- checks ---------------------------------------------------------------------------
    def check(self, kinds=KIND_NAMES, function_name: Optional[str] = None, base_url: Optional[str] = None,
              since: Optional[str] = None, started_ms: Optional[int] = None, settle: float = 0,
              smoke: bool = False, log: Log = _quiet) -> list:
        """Run the kinds of check; every failure is a result. `since` (15m, 2h, an ISO time, epoch
        ms) bounds the log count, by default the start of the run. `smoke`: the endpoint calls of
        this run must have left logs behind."""
        from .checklist import Checklist
        from .checks import run_checks
        from .checks.logs import parse_since, since_note
        from .context import CheckContext
        started_ms = started_ms if started_ms is not None else int(time.time() * 1000)
        try:
            since_ms = parse_since(since, started_ms) if since else started_ms
        except ValueError as exc:
            raise CheckerError(f"--since: {exc}") from None
        environment = self.environment
        context = CheckContext(
            aws=self.aws, tables=self.tables, checklist=self.checklist or Checklist("(no checklist)"),
            function_name=function_name or self.function_name,
            base_url=base_url or (environment.base_url if environment and environment.base_url else None),
            since_ms=since_ms, since_note=since_note(since), logs_settle=settle, smoke=smoke, project=self)
        return run_checks(context, kinds, log=log)

    # -- IAM ------------------------------------------------------------------------------
    def iam_policy(self, account_id: Optional[str] = None) -> dict:
        """The least-privilege policy of the checklist's permissions on this environment's tables."""
        from .iam_policy import least_privilege_policy
        if self.checklist is None or not self.checklist.permissions:
            raise CheckerError("no iam.permissions in the checklist: nothing to grant")
        region = self.aws.region or self.aws.session().region_name
        if not region:
            raise CheckerError("no AWS region: pass --region or --env with a region, or set AWS_REGION")
        if account_id is None:
            account_id = call(self.aws.client("sts"), "GetCallerIdentity", "sts")["Account"]
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


def table_wishes(client, name: str, spec_name: str, unread: list) -> dict:
    """The checklist's `tables:` entry for a live table's TTL and PITR; what could not be read is
    added to `unread`, never taken for "off"."""
    from .live import read_pitr, read_ttl
    unreadable: dict = {}
    ttl = read_ttl(client, name, unreadable) or {}
    pitr = read_pitr(client, name, unreadable) or {}
    unread += [f"{spec_name}: {what} could not be read ({why})" for what, why in unreadable.items()]
    wish: dict = {}
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        wish["ttl_attribute"] = ttl.get("AttributeName")
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        wish["point_in_time_recovery"] = True
    return wish


def aws_managed_keys(aws: AwsOptions, tables: list, unread: list) -> frozenset:
    """The KMS key ARNs among the tables' that AWS manages (kms:DescribeKey says KeyManager AWS):
    an export writes those as "SSEType KMS" without the account's ARN. A key that cannot be told
    is kept, and said so."""
    arns = sorted({str(arn) for t in tables if (arn := (t.get("SSEDescription") or {}).get("KMSMasterKeyArn"))})
    managed = set()
    for arn in arns:
        try:
            metadata = call(aws.client("kms"), "DescribeKey", "kms", KeyId=arn).get("KeyMetadata") or {}
        except CheckerError as exc:
            unread.append(f"KMS key {arn}: whether AWS manages it could not be read ({exc}); its ARN is kept")
            continue
        if metadata.get("KeyManager") == "AWS":
            managed.add(arn)
    return frozenset(managed)


def init(directory, function_name: Optional[str] = None, env: str = "dev", force: bool = False,
         region: Optional[str] = None, profile: Optional[str] = None, endpoint_url: Optional[str] = None,
         table_prefix: str = "", table_suffix: str = "", retry_mode: Optional[str] = None,
         max_attempts: Optional[int] = None, timeout: Optional[float] = None):
    """checklist.yaml and table_specs/ in `directory`: from a live function, else a starter
    (checker/init.py). Returns what was written and what to fix by hand."""
    from .checklist import ENVIRONMENT_NAME
    from .init import init_from_function, write_starter
    if not ENVIRONMENT_NAME.fullmatch(env):
        raise CheckerError(f"--env {clip(env, 60)!r}: an environment name is letters, digits, _ and -")
    directory = Path(directory)
    if function_name is None:
        return write_starter(directory, force)
    aws = _where(None, region, profile, endpoint_url, None, None, retry_mode, max_attempts, timeout)[0]
    return init_from_function(directory, function_name, env, aws, force, table_prefix, table_suffix)


@dataclass(frozen=True)
class Export:
    files: list          # the spec files written
    snippet: str         # the checklist `tables:` section for the TTL and PITR found


def export(out_dir, tables=(), force: bool = False, checklist=None, env: Optional[str] = None,
           region: Optional[str] = None, profile: Optional[str] = None, endpoint_url: Optional[str] = None,
           table_prefix: Optional[str] = None, table_suffix: Optional[str] = None,
           retry_mode: Optional[str] = None, max_attempts: Optional[int] = None,
           timeout: Optional[float] = None) -> Export:
    """Write a spec file per live table (those named, else every table with the environment's
    prefix/suffix), the prefix/suffix removed; never overwrite a file without `force`."""
    import json

    from .checklist import load_checklist
    from .export import checklist_snippet, spec_from_table, strip_affixes
    from .ledger import is_ledger
    from .live import describe_tables, in_parallel, read_tags, table_names

    environment = None
    if env:
        path = _checklist_path(checklist)
        if path is None:
            raise CheckerError(f"--env {env} needs a checklist ({DEFAULT_CHECKLIST} or --checklist FILE)")
        environment = load_checklist(path, sections=("environments",), environment=env).environment(env)
    aws, prefix, suffix = _where(environment, region, profile, endpoint_url, table_prefix, table_suffix,
                                 retry_mode, max_attempts, timeout)
    client = aws.client("dynamodb")
    if tables:
        names = list(tables)
    else:
        names = [n for n in table_names(client)
                 if strip_affixes(n, prefix, suffix) and not is_ledger(n, prefix, suffix)]   # checker's own: not the app's
    if not names:
        raise CheckerError(f"no table to export (prefix {prefix!r}, suffix {suffix!r}); name them with --table")
    out = Path(out_dir)
    descriptions = describe_tables(client, names)
    planned = []
    for name in names:
        if descriptions[name] is None:
            raise CheckerError(f"--table {name}: no such table")
        spec_name = strip_affixes(name, prefix, suffix) or name
        target = out / f"{spec_name}.json"
        if target.exists() and not force:
            raise CheckerError(f"{target}: exists; pass --force to overwrite it")
        planned.append((name, spec_name, target))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckerError(f"{out}: cannot create the directory: {exc.strerror}") from None
    wishes: dict = {}
    unread: list = []
    specs = []
    aws_managed = aws_managed_keys(aws, [descriptions[name] for name, _, _ in planned], unread)

    def read_extras(entry: tuple) -> tuple:   # tags, TTL and PITR of one table; tables concurrently
        name, spec_name, _ = entry
        table = descriptions[name]
        missed: list = []
        return read_tags(client, table["TableArn"]), table_wishes(client, name, spec_name, missed), missed
    for (name, spec_name, target), (tags, wish, missed) in zip(planned, in_parallel(read_extras, planned), strict=True):
        # everything read before any file is written
        specs.append((target, spec_from_table(descriptions[name], spec_name, tags, aws_managed)))
        unread += missed
        if wish:
            wishes[spec_name] = wish
    written = []
    for target, spec in specs:
        try:
            target.write_text(json.dumps(spec, indent=2) + "\n")
        except OSError as exc:
            raise CheckerError(f"{target}: cannot write the spec: {exc.strerror}") from None
        written.append(target)
    return Export(written, checklist_snippet(wishes, unread))

