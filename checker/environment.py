"""Where a command acts, resolved: one frozen value built once by `resolve(target)` and passed to
everything below the facade (plan, apply, checks, migrations, export, init), never exploded
again into loose parameters.

It holds what the checklist's environment and the options given resolve to: the AWS options
(with the command's deadline), the expected tables named for the environment, the checklist,
the prefix/suffix, the function and the base URL. `table_name` is the one mapping from a spec's
TableName to the live name, and `spec_name` its inverse; `client` makes one client per service
from one boto3 session, so every floor shares the session and the deadline guard.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .target import DEFAULT_CHECKLIST, Target, checklist_header, checklist_path, specs_directory, template_context

if TYPE_CHECKING:
    from .aws import AwsOptions
    from .checklist import Checklist, EnvironmentSettings


@dataclass(frozen=True)
class Environment:
    aws: AwsOptions
    tables: list = field(default_factory=list)      # ExpectedTable, named for this environment
    checklist: Optional[Checklist] = None
    settings: Optional[EnvironmentSettings] = None  # the checklist's environments.NAME, when one was chosen
    target: Target = field(default_factory=Target)  # what was asked for: fix lines point where it did
    table_prefix: str = ""
    table_suffix: str = ""
    # the template that declares the environment's function ("template.yaml (App)", checker/iac): its
    # configuration and its role are the template's, and fix lines say to change and deploy it
    function_owner: str = ""
    _clients: dict = field(default_factory=dict, compare=False, repr=False)
    _functions: dict = field(default_factory=dict, compare=False, repr=False)   # name -> configuration

    # -- names -----------------------------------------------------------------------------
    @property
    def name(self) -> Optional[str]:
        return self.settings.name if self.settings else None

    def table_name(self, spec_name: str) -> str:
        """A spec's TableName as it is named in this environment (the one place prefix and
        suffix are applied); a template's table (checker/iac) as the template names it."""
        named = next((t.name for t in self.tables if t.spec_name == spec_name), None)
        return named or f"{self.table_prefix}{spec_name}{self.table_suffix}"

    def spec_name(self, live_name: str) -> Optional[str]:
        """The spec TableName of a live table of this environment, or None when the live name
        lacks the prefix or suffix (another environment's, or not the app's)."""
        prefix, suffix = self.table_prefix, self.table_suffix
        if prefix and not live_name.startswith(prefix) or suffix and not live_name.endswith(suffix):
            return None
        stripped = live_name[len(prefix):len(live_name) - len(suffix) if suffix else None]
        return stripped or None

    @property
    def names(self) -> list:
        return [t.name for t in self.tables]

    def expected(self, spec_name: str):
        """The ExpectedTable of a spec's TableName, or None."""
        return next((t for t in self.tables if t.spec_name == spec_name), None)

    # -- the app -----------------------------------------------------------------------------
    @property
    def function_name(self) -> Optional[str]:
        """The environment's function, else the checklist's default."""
        return ((self.settings.function_name if self.settings else None)
                or (self.checklist.function_name if self.checklist else None))

    @property
    def base_url(self) -> Optional[str]:
        return self.settings.base_url if self.settings and self.settings.base_url else None

    @property
    def bindings(self) -> dict:
        """{function variable: spec TableName} the checklist binds."""
        return dict(self.checklist.bindings) if self.checklist else {}

    def function(self, name: Optional[str] = None) -> Optional[dict]:
        """GetFunctionConfiguration of the function (`name`, else the environment's), read once a
        run; None when it does not exist. What the checks read; the switch reads afresh (it needs
        the current RevisionId)."""
        from .errors import CheckerError, call, expect
        name = name or self.function_name
        if not name:
            raise CheckerError("no Lambda function named: set lambda.function_name or the environment's "
                               "function_name in the checklist, or pass --function")
        if name not in self._functions:
            self._functions[name] = expect(call(self.client("lambda"), "GetFunctionConfiguration", "lambda",
                                                missing_ok=True, FunctionName=name), ("FunctionArn", "Role"),
                                           "GetFunctionConfiguration", "lambda")
        return self._functions[name]

    # -- AWS ---------------------------------------------------------------------------------
    def client(self, service: str):
        """One client per service, all from one session (credentials resolved once, the
        command's deadline guarding each)."""
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]

    def dynamodb(self):
        return self.client("dynamodb")

    @property
    def region(self) -> Optional[str]:
        from .errors import CheckerError
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

    def command(self, subcommand: str) -> str:
        """A whole `checker` command line acting here, as a fix line shows it."""
        return self.target.command(subcommand, self.name)


def resolve(target: Target, sections: tuple = (), use_checklist: bool = True, tables: bool = True) -> Environment:
    """The Environment a Target names: its checklist (which, when it defines environments, needs
    --env or its default_env), the specs it names, the environment's AWS options under the
    options given. Reads the checklist once. `sections` are the checklist sections whose ${VAR}s
    must be set (a plan does not need the endpoints' API token); without `tables` (export, which
    writes specs) no spec is read and only the checklist's environments."""
    from .checklist import load_checklist
    from .errors import CheckerError
    from .iac import load_table_specs
    from .text import clip
    path = checklist_path(target.checklist_path) if use_checklist else None
    header = checklist_header(path) if path else {}
    env = target.env or header.get("default_env")
    if path and env is None and header.get("environments"):
        names = ", ".join(header["environments"])
        raise CheckerError(f"{path} defines environments ({clip(names, 200)}): pass --env NAME, or set "
                           "default_env in the checklist")
    if env and path is None:
        raise CheckerError(f"--env {env} needs a checklist ({DEFAULT_CHECKLIST} or --checklist FILE)")
    context = template_context(target, header, env, functools.lru_cache(maxsize=1)(
        functools.partial(header_account, target, env, header)))
    specs = load_table_specs(specs_directory(target, path, header), context) if tables else []
    loaded = load_checklist(path, {s.name: s for s in specs} if tables else None,
                            sections if tables else ("environments",), env) if path else None
    environment = where(target, loaded.environment(env) if loaded is not None and env else None, loaded)
    specs = [stack_named(environment, spec) if spec.generated_name else spec for spec in specs]
    owner = ""
    if any(spec.logical_id for spec in specs) and environment.function_name:
        from .iac import function_owner
        owner = function_owner(specs_directory(target, path, header), context, environment.function_name)
    # a migrate_from naming a spec (a template's logical id, say) is that spec's live name
    live_names = {spec.name: spec.for_environment(environment.table_prefix, environment.table_suffix).name
                  for spec in specs}
    return dataclasses.replace(environment, tables=[expected_table(environment, spec, live_names) for spec in specs],
                               function_owner=owner)


def header_account(target: Target, env: Optional[str], header: dict) -> Optional[str]:
    """The account `env`'s credentials act in, read before the checklist is loaded in full (for a
    template's AWS::AccountId): its environment's AWS keys as the header has them."""
    from .checklist import EnvironmentSettings
    settings = (header.get("templates") or {}).get(env or "") or {}
    keys = {key: settings[key] for key in ("region", "profile", "role_arn", "endpoint_url")
            if isinstance(settings.get(key), str)}
    return where(target, EnvironmentSettings(name=env or "", **keys) if env else None).account_id()


def stack_named(environment: Environment, spec):
    """A template's table whose name CloudFormation generates, named as the environment's stack
    (environments.<env>.stack) says: DescribeStackResource of its logical id."""
    import dataclasses as classes

    from .errors import AwsError, CheckerError, pages
    settings = environment.checklist.environments.get(environment.name or "") if environment.checklist else None
    stack = settings.stack if settings is not None else None
    if not stack:
        raise CheckerError(f"{spec.file}: $.Resources.{spec.logical_id}: no TableName (CloudFormation generates it): "
                           f"set environments.{environment.name or 'ENV'}.stack to the stack deployed from the template, "
                           "so checker reads the name it was given")
    try:     # every page of the stack's resources (one DescribeStackResource fails on moto's skipped ones)
        found = next((r for page in pages(environment.aws.client("cloudformation"), "ListStackResources",
                                          "cloudformation", StackName=stack)
                      for r in page.get("StackResourceSummaries", []) if r.get("LogicalResourceId") == spec.logical_id),
                     None)
    except AwsError as exc:
        if exc.code != "ValidationError":
            raise
        found, missing = None, exc.aws_message or exc.code
    else:
        missing = f"no resource {spec.logical_id}"
    if found is None or not found.get("PhysicalResourceId"):
        raise CheckerError(f"{spec.file}: $.Resources.{spec.logical_id}: no TableName, and the stack {stack} has no "
                           f"such resource ({missing}): deploy the template to {stack} first (only the stack can "
                           "create a table CloudFormation names), or give the table a TableName")
    return classes.replace(spec, request=dict(spec.request, TableName=found["PhysicalResourceId"]), generated_name=False)


def where(target: Target, settings=None, checklist=None) -> Environment:
    """An Environment with no tables yet: each option given wins over the checklist
    environment's (`settings`); the command's --timeout becomes its armed Deadline."""
    from .aws import AwsOptions
    from .poll import Deadline

    def chosen(option, field_name, default=None):
        return option if option is not None else (getattr(settings, field_name) if settings else default)
    aws = AwsOptions(region=chosen(target.region, "region"), profile=chosen(target.profile, "profile"),
                     endpoint_url=chosen(target.endpoint_url, "endpoint_url"), role_arn=chosen(None, "role_arn"),
                     retry_mode=target.retry_mode, max_attempts=target.max_attempts,
                     deadline=Deadline(target.timeout).arm() if target.timeout is not None else None)
    return Environment(aws, [], checklist, settings, target, table_prefix=chosen(target.table_prefix, "table_prefix", ""),
                       table_suffix=chosen(target.table_suffix, "table_suffix", ""))


def expected_table(environment: Environment, spec, live_names: Optional[dict] = None):
    """A spec named for the environment, with what the checklist wishes for it."""
    from .checklist import TABLE_NAME
    from .errors import CheckerError
    from .model import ExpectedTable
    from .text import clip
    named = spec.for_environment(environment.table_prefix, environment.table_suffix)
    name = named.name
    if not TABLE_NAME.fullmatch(name):
        target = environment.target
        given = "--table-prefix/--table-suffix" if target.table_prefix or target.table_suffix \
            else f"environment {environment.name}"
        raise CheckerError(f"{given}: makes table name {clip(name, 80)!r}, which DynamoDB rejects "
                           "(3 to 255 characters of a-z A-Z 0-9 _ . -)")
    wishes = environment.checklist.wishes(spec.name) if environment.checklist else None
    source = wishes.migrate_from if wishes else None
    stated = spec.wishes     # a template's TTL and PITR; the checklist's wishes add to them
    return ExpectedTable(named, ttl_attribute=(wishes.ttl_attribute if wishes else None) or stated.get("ttl_attribute"),
                         point_in_time_recovery=bool((wishes.point_in_time_recovery if wishes else False)
                                                     or stated.get("point_in_time_recovery")),
                         spec_name=spec.name,
                         migrate_from=(live_names or {}).get(source) or environment.table_name(source) if source else None,
                         transform=wishes.transform if wishes else None, reverse=wishes.reverse if wishes else None,
                         catch_up=wishes.catch_up if wishes else None,
                         owner=f"{spec.file} ({spec.logical_id})" if spec.logical_id else "")
