"""The deployment checklist (`checklist.yaml`): what an environment must have beyond the specs.

Loaded with yaml.safe_load, checked against checker/schemas/checklist.schema.json, then `${VAR}`
is expanded from the process environment: an undefined variable is an error naming where it is
used, never a silent empty string. Commands that use only part of the checklist (plan needs
environments and tables) ask only for the variables of those sections, so a missing API token
does not stop a plan.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

import jsonschema

from .errors import CheckerError
from .inputs import InputError, parse_yaml, read_text
from .specs import Problem, SpecError, json_path, load_schema, schema_problems
from .text import clip

ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9_-]+")
AFFIX = re.compile(r"[A-Za-z0-9_.-]*")
TABLE_NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REFERENCE_START = re.compile(r"\$\{")


@dataclass(frozen=True)
class EnvironmentSettings:
    name: str
    region: Optional[str] = None
    table_prefix: str = ""
    table_suffix: str = ""
    function_name: Optional[str] = None
    base_url: Optional[str] = None
    profile: Optional[str] = None        # AWS named profile of this environment's account
    role_arn: Optional[str] = None       # a role to assume in it (credentials never mix between environments)
    endpoint_url: Optional[str] = None   # another AWS endpoint (LocalStack, a moto server)
    parameters: dict = field(default_factory=dict, compare=False)   # a template's parameters here (checker/iac)
    stack: Optional[str] = None          # the stack deployed from the template here (AWS::StackName)


@dataclass(frozen=True)
class TableWishes:
    ttl_attribute: Optional[str] = None
    point_in_time_recovery: bool = False
    migrate_from: Optional[str] = None   # the table `checker migrate` copies into this one (spec-style name)
    transform: Optional[str] = None      # module:function mapping its items to this table's shape
    reverse: Optional[str] = None        # module:function mapping them back (rollback after a transform)
    catch_up: Optional[str] = None       # "stream": online, the writes during the copy replayed from the stream


@dataclass(frozen=True)
class Permission:
    """DynamoDB actions the runtime needs on a table (its spec TableName), or on one of its indexes."""

    table: str
    actions: tuple
    index: Optional[str] = None
    used_by: str = "runtime"    # "external": app actions outside this repository need them

    @property
    def label(self) -> str:
        """Unique per entry: `liked_songs/index/userId-addedAt-index`, `user@external`."""
        base = f"{self.table}/index/{self.index}" if self.index else self.table
        return f"{base}@external" if self.used_by == "external" else base


@dataclass(frozen=True)
class RequiredItem:
    """An item the app needs in a table (spec TableName), by its key; `attributes` must be present."""

    table: str
    key: dict
    attributes: tuple = ()


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})   # RFC 9110 9.2.2


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str = "GET"
    url: Optional[str] = None
    path: Optional[str] = None
    query: dict = field(default_factory=dict)
    action: Optional[str] = None
    entry_point: Optional[str] = None     # function_url | rest_api | http_api: whose URL it is joined to
    headers: dict = field(default_factory=dict)
    body: Any = None
    expect_status: int = 200
    schema: Optional[dict] = None
    timeout: float = 10.0
    retries: Optional[int] = None         # None: 2 for an idempotent method, 0 for POST / PATCH (see tries)
    retry_delay: float = 2.0

    @property
    def tries(self) -> int:
        """Attempts in all. A request that is not idempotent is sent once unless `retries:` says
        otherwise: a retried POST may create a second record where the first one timed out."""
        if self.retries is not None:
            return self.retries + 1
        return 3 if self.method.upper() in IDEMPOTENT_METHODS else 1


@dataclass(frozen=True)
class LogCheck:
    log_group: Optional[str] = None
    filter_pattern: str = "ERROR"
    threshold: int = 0
    samples: int = 5


@dataclass(frozen=True)
class Checklist:
    file: str
    environments: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    function_name: Optional[str] = None
    required_env: tuple = ()
    handler: Optional[str] = None
    runtime: Optional[str] = None
    env_rules: dict = field(default_factory=dict)   # variable -> {"absent": True} or {"not_in": [...]}
    bindings: dict = field(default_factory=dict)   # function variable -> spec TableName
    entry_point: Optional[str] = None
    entry_point_public: bool = False    # a Function URL with AuthType NONE is intended
    permissions: tuple = ()
    warn_broad_grants: bool = True
    endpoints: tuple = ()
    items: tuple = ()
    logs: Optional[LogCheck] = None
    sections: frozenset = frozenset()   # the top-level keys the file has: a kind whose section is absent is skipped
    variable_values: frozenset = frozenset()   # every value a ${VAR} put in: each is masked in all output

    def has(self, section: str) -> bool:
        return section in self.sections

    def environment(self, name: str) -> EnvironmentSettings:
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise CheckerError(f"{self.file}: $.environments: no environment {name!r} (known: {known})")
        return self.environments[name]

    def wishes(self, table_name: str) -> TableWishes:
        return self.tables.get(table_name, TableWishes())


def expand_variables(value: Any, file: str, path: tuple = (), environ=os.environ) -> tuple[Any, list[Problem]]:
    """Replace ${VAR} in every string of a YAML document; each undefined variable is a Problem."""
    problems: list[Problem] = []
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key], found = expand_variables(item, file, path + (key,), environ)
            problems += found
        return out, problems
    if isinstance(value, list):
        out_list = []
        for i, item in enumerate(value):
            expanded, found = expand_variables(item, file, path + (i,), environ)
            out_list.append(expanded)
            problems += found
        return out_list, problems
    if isinstance(value, str):
        def replace(match):
            name = match.group(1)
            if name not in environ:
                problems.append(Problem(file, json_path(path), f"environment variable {name} is not set"))
                return match.group(0)
            if not environ[name]:
                problems.append(Problem(file, json_path(path), f"environment variable {name} is set but empty"))
                return match.group(0)
            return environ[name]
        return VARIABLE.sub(replace, value), problems
    return value, problems


def reference_syntax_problems(value: Any, file: str, path: tuple = ()) -> list[Problem]:
    """`${` that does not start a well-formed ${NAME}: found offline, without any value."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in reference_syntax_problems(item, file, path + (key,))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in reference_syntax_problems(item, file, path + (i,))]
    if isinstance(value, str) and len(REFERENCE_START.findall(value)) != len(VARIABLE.findall(value)):
        return [Problem(file, json_path(path), "malformed ${...} reference: write ${NAME} (letters, digits, _; "
                                               "not starting with a digit)")]
    return []


def read_checklist_document(path: Path) -> tuple[Any, list[Problem]]:
    """yaml.safe_load, strictly and within bounds (checker/inputs.py); any problem is a Problem."""
    try:
        return parse_yaml(read_text(path)), []
    except InputError as exc:
        return None, [Problem(str(path), exc.where, exc.message)]


def remote_references(schema: Any, path: str) -> list:
    """JSON paths of `$ref`s that point outside the schema: checker never fetches anything."""
    found = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and not (isinstance(value, str) and value.startswith("#")):
                found.append(f"{path}.{key}")
            found += remote_references(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += remote_references(value, f"{path}[{i}]")
    return found


def url_problem(url: Any) -> Optional[str]:
    """Why a URL from the checklist cannot be requested, or None; never a part of its user name
    or password (they are taken off before the URL is parsed)."""
    from .secrets import split_userinfo
    if not isinstance(url, str):
        return "not a URL"
    scheme, userinfo, rest = split_userinfo(url)
    if userinfo is not None and any(c in userinfo for c in "/?#"):
        return "its user name or password holds / ? or #: percent-encode them (%2F %3F %23)"
    try:
        parts = urlsplit(scheme + rest)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL with a host"
    return None


def _semantic_problems(document: dict, file: str, specs: Optional[dict]) -> list[Problem]:
    """What the schema cannot say. `specs`: {spec TableName: its TableSpec} (a set of names
    checks table names only; None: offline without specs)."""
    problems = []
    if specs is not None:
        problems += _table_reference_problems(document, file, specs)
    problems += _default_env_problems(document, file)
    if isinstance(document.get("specs"), str) and (reason := specs_path_problem(document["specs"])):
        problems.append(Problem(file, "$.specs", reason))
    for name, environment in (document.get("environments") or {}).items():
        problems += _environment_problems(name, environment, file, specs)
    problems += _endpoint_problems(document, file)
    problems += _log_pattern_problems(document, file)
    return problems


def _log_pattern_problems(document: dict, file: str) -> list[Problem]:
    """A pattern checker cannot evaluate itself would leave the count to a server that may not
    evaluate it either (moto answers nothing): refused here, never a silent zero."""
    from .log_pattern import UnsupportedPattern, parse
    pattern = (document.get("logs") or {}).get("filter_pattern") if isinstance(document.get("logs"), dict) else None
    if not isinstance(pattern, str):
        return []
    try:
        parse(pattern)
    except UnsupportedPattern as exc:
        return [Problem(file, "$.logs.filter_pattern", f"{exc} (checker evaluates words, phrases, - and ?, and "
                        "JSON patterns { $.field = value })")]
    return []


def _migration_problems(tables: dict, file: str) -> list[Problem]:
    """A table migrates from a live table that is not itself being migrated, nor itself: one
    copy at a time, each from a table that stays what it is."""
    sources = {name: (wishes or {}).get("migrate_from") for name, wishes in tables.items()}
    problems = []
    for name, source in sources.items():
        if source is None:
            for key in ("transform", "reverse", "catch_up"):
                if (tables[name] or {}).get(key):
                    problems.append(Problem(file, f"$.tables.{name}.{key}", f"{key} needs migrate_from"))
            continue
        where = f"$.tables.{name}.migrate_from"
        if source == name:
            problems.append(Problem(file, where, f"{name} cannot migrate from itself"))
        elif sources.get(source):
            problems.append(Problem(file, where, f"{source} is itself migrating (from {sources[source]}): a chain "
                                    "of migrations is not allowed; migrate from the table the app uses now"))
        elif list(sources.values()).count(source) > 1:
            problems.append(Problem(file, where, f"{source} is the migrate_from of several tables; one target a source"))
    return problems


def _table_reference_problems(document: dict, file: str, specs) -> list[Problem]:
    from .iam_actions import action_problem
    from .suggest import did_you_mean
    names = set(specs)
    known = ", ".join(sorted(names))

    def unknown_table(name, where) -> list[Problem]:
        if name in names:
            return []
        return [Problem(file, where, f"no table spec has TableName {clip(name, 80)!r}{did_you_mean(name, names)} "
                                     f"(known: {known})")]
    problems = []
    for name in document.get("tables") or {}:
        problems += unknown_table(name, f"$.tables.{name}")
    problems += _migration_problems(document.get("tables") or {}, file)
    for variable, table in ((document.get("lambda") or {}).get("bindings") or {}).items():
        problems += unknown_table(table, f"$.lambda.bindings.{variable}")
    for i, item in enumerate(document.get("items") or []):
        problems += unknown_table(item["table"], f"$.items[{i}].table")
        spec = specs.get(item["table"]) if isinstance(specs, dict) else None
        keys = sorted(k["AttributeName"] for k in spec.request["KeySchema"]) if spec is not None else None
        if keys is not None and sorted(item["key"]) != keys:
            problems.append(Problem(file, f"$.items[{i}].key", f"table {item['table']}'s key is {', '.join(keys)}; "
                                    f"give exactly those (given: {clip(', '.join(map(str, item['key'])), 100)})"))
        ranges = {k["AttributeName"] for k in spec.request["KeySchema"] if k["KeyType"] == "RANGE"} if spec else set()
        for name, value in (item.get("key") or {}).items():
            limit = 1024 if name in ranges else 2048   # DynamoDB's sort and partition key sizes, in bytes
            size = len(str(value).encode("utf-8", "surrogatepass"))
            if size > limit:
                problems.append(Problem(file, f"$.items[{i}].key.{clip(str(name), 60)}",
                                        f"is {size:,} bytes; a DynamoDB {'sort' if limit == 1024 else 'partition'} "
                                        f"key holds at most {limit:,}"))
    for i, permission in enumerate((document.get("iam") or {}).get("permissions") or []):
        where = f"$.iam.permissions[{i}]"
        problems += unknown_table(permission["table"], f"{where}.table")
        spec = specs.get(permission["table"]) if isinstance(specs, dict) else None
        indexes = spec.index_names if spec is not None else None
        index = permission.get("index")
        if index is not None and indexes is not None and index not in indexes:
            shown = ", ".join(sorted(indexes)) or "none"
            problems.append(Problem(file, f"{where}.index", f"table {permission['table']} has no index "
                                    f"{clip(index, 80)!r}{did_you_mean(index, indexes)} (its indexes: {shown})"))
        for j, action in enumerate(permission["actions"]):
            reason = action_problem(action)
            if reason:
                problems.append(Problem(file, f"{where}.actions[{j}]", reason))
    return problems


def specs_path_problem(value: str) -> Optional[str]:
    """Why the checklist's `specs:` cannot be a directory path, or None (the file system would
    raise on a NUL byte or a name too long, and a traceback is no answer)."""
    if not value or len(value) > 1000 or re.search(r"[\x00-\x1f\x7f]", value):
        return "not a directory path: at most 1000 characters, no control characters"
    return None


def _default_env_problems(document: dict, file: str) -> list[Problem]:
    default_env = document.get("default_env")
    environments = document.get("environments") or {}
    if default_env is None or default_env in environments:
        return []
    return [Problem(file, "$.default_env", f"no environment {clip(default_env, 60)!r} (known: {', '.join(environments)})")]


def _environment_problems(name: str, environment: dict, file: str, specs) -> list[Problem]:
    problems = []
    if not ENVIRONMENT_NAME.fullmatch(name):
        problems.append(Problem(file, f"$.environments.{clip(name, 60)}", "an environment name is letters, digits, _ and -"))
    for affix in ("table_prefix", "table_suffix"):
        value = environment.get(affix)
        if isinstance(value, str) and not AFFIX.fullmatch(value):
            problems.append(Problem(file, f"$.environments.{name}.{affix}",
                                    f"{clip(value, 60)!r} may hold only a-z A-Z 0-9 _ . -"))
    for table in sorted(specs or ()):
        if getattr(specs[table] if isinstance(specs, dict) else None, "logical_id", ""):
            continue      # a template's table: the template names it, no prefix or suffix is added
        full = f"{environment.get('table_prefix') or ''}{table}{environment.get('table_suffix') or ''}"
        if not TABLE_NAME.fullmatch(full):
            problems.append(Problem(file, f"$.environments.{name}", f"makes table name {clip(full, 80)!r}, which "
                                    "DynamoDB rejects (3 to 255 characters of a-z A-Z 0-9 _ . -)"))
            break
    for field_name in ("base_url", "endpoint_url"):
        value = environment.get(field_name)
        if isinstance(value, str) and "${" not in value:
            reason = url_problem(value)
            if reason:
                problems.append(Problem(file, f"$.environments.{name}.{field_name}", reason))
    return problems


def _endpoint_problems(document: dict, file: str) -> list[Problem]:
    problems = []
    for i, endpoint in enumerate(document.get("endpoints") or []):
        if "schema" in endpoint:
            problems += _schema_problems(endpoint["schema"], file, f"$.endpoints[{i}].schema")
        if isinstance(endpoint.get("url"), str) and "${" not in endpoint["url"]:
            reason = url_problem(endpoint["url"])
            if reason:
                problems.append(Problem(file, f"$.endpoints[{i}].url", reason))
        if isinstance(endpoint.get("path"), str) and (reason := path_problem(endpoint["path"])):
            problems.append(Problem(file, f"$.endpoints[{i}].path", reason))
        problems += _header_problems(endpoint.get("headers") or {}, file, f"$.endpoints[{i}].headers")
    names = [e.get("name") for e in document.get("endpoints") or []]
    for i, name in enumerate(names):
        if names.index(name) != i:
            problems.append(Problem(file, f"$.endpoints[{i}].name", f"endpoint name {name!r} is used more than once"))
    return problems


def path_problem(path: str) -> Optional[str]:
    """Why an endpoint's `path` cannot be appended to the base URL as it means: a `.` or `..`
    segment (plain or percent-encoded) would climb out of the base's stage and resource, and `?`
    or `#` would start a second query (the `query:` key is for that)."""
    if "?" in path or "#" in path:
        return f"{clip(path, 80)!r} holds {'?' if '?' in path else '#'}: put query parameters under query:"
    for segment in path.split("/"):
        if unquote(segment) in (".", ".."):
            return f"{clip(path, 80)!r} has a {unquote(segment)!r} segment, which would leave the base URL's path"
    return None


def _header_problems(headers: dict, file: str, where: str) -> list[Problem]:
    """HTTP/1.1 carries header values as latin-1 without line breaks: anything else cannot be sent
    (the value is never shown; it may be a secret)."""
    problems = []
    for name, value in headers.items():
        try:
            str(value).strip().encode("latin-1")
            str(name).encode("ascii")
        except UnicodeEncodeError:
            problems.append(Problem(file, f"{where}.{clip(name, 60)}", "holds characters an HTTP header cannot carry "
                                    "(names: ASCII; values: latin-1); encode the value (e.g. base64)"))
            continue
        if any(c in str(value).strip() + str(name) for c in "\r\n\x00"):  # a CI secret's own line end is trimmed
            problems.append(Problem(file, f"{where}.{clip(name, 60)}", "holds a line break or NUL, which an HTTP "
                                    "header cannot carry"))
    return problems


def _schema_problems(schema, file: str, where: str) -> list[Problem]:
    remote = remote_references(schema, where)
    if remote:
        return [Problem(file, path, "only local references (#/...) are allowed: checker never fetches a schema")
                for path in remote]
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [Problem(file, where, f"not a valid JSON Schema: {clip(exc.message)}")]
    return []


def _section(path: str) -> str:
    """`$.endpoints[0].headers.x` -> `endpoints`."""
    return re.split(r"[.\[]", path[2:], maxsplit=1)[0] if path.startswith("$.") else path


def _used(path: str, sections: Optional[tuple], environment: Optional[str]) -> bool:
    """Is the value at `path` used by a command reading `sections` for `environment`? Of the
    environments, only the chosen one is."""
    if sections is None:
        return True
    section = _section(path)
    if section == "environments":
        return section in sections and environment is not None and (
            path == f"$.environments.{environment}" or path.startswith(f"$.environments.{environment}."))
    return section in sections


def checklist_problems(path: Path, specs=None, environ=os.environ,
                       sections: Optional[tuple] = None,
                       environment: Optional[str] = None) -> tuple[Optional[Checklist], list[Problem]]:
    """The checklist, or every problem with it. ${VAR}s are resolved where they are used: in
    `sections` (None: everywhere), and of the environments only in `environment`'s entry."""
    document, problems = read_checklist_document(path)
    if problems:
        return None, problems
    file = str(path)
    problems = schema_problems(document, load_schema("checklist.schema.json"), file)
    if problems:
        return None, problems
    problems = reference_syntax_problems(document, file)
    raw = document
    document, undefined = expand_variables(document, file, environ=environ)
    problems += [p for p in undefined if _used(p.path, sections, environment)]
    problems += _semantic_problems(document, file, specs)
    if problems:
        return None, problems
    values = frozenset(environ[name] for name in variable_names(raw) if environ.get(name))
    return dataclasses.replace(build_checklist(document, file), variable_values=values), []


def variable_names(value: Any) -> set:
    """The NAMEs of every ${NAME} in a document's strings."""
    if isinstance(value, dict):
        return {n for item in value.values() for n in variable_names(item)}
    if isinstance(value, list):
        return {n for item in value for n in variable_names(item)}
    return set(VARIABLE.findall(value)) if isinstance(value, str) else set()


def build_checklist(document: dict, file: str) -> Checklist:
    lambda_section = document.get("lambda") or {}
    iam = document.get("iam") or {}
    logs = document.get("logs")
    return Checklist(
        file=file,
        environments={name: EnvironmentSettings(name=name, **values) for name, values in document["environments"].items()},
        tables={name: TableWishes(**(values or {})) for name, values in (document.get("tables") or {}).items()},
        function_name=lambda_section.get("function_name"),
        required_env=tuple(lambda_section.get("required_env") or ()),
        handler=lambda_section.get("handler"),
        runtime=lambda_section.get("runtime"),
        env_rules=dict(lambda_section.get("env") or {}),
        bindings=dict(lambda_section.get("bindings") or {}),
        entry_point=(document.get("entry_point") or {}).get("require"),
        entry_point_public=bool((document.get("entry_point") or {}).get("public", False)),
        permissions=tuple(Permission(p["table"], tuple(p["actions"]), p.get("index"), p.get("used_by", "runtime"))
                          for p in iam.get("permissions") or ()),
        warn_broad_grants=iam.get("warn_broad_grants", True),
        endpoints=tuple(Endpoint(**e) for e in document.get("endpoints") or ()),
        items=tuple(RequiredItem(i["table"], dict(i["key"]), tuple(i.get("attributes") or ()))
                    for i in document.get("items") or ()),
        logs=LogCheck(**logs) if logs is not None else None,
        sections=frozenset(document),
    )


def load_checklist(path: Path, specs=None, sections: Optional[tuple] = None,
                   environment: Optional[str] = None) -> Checklist:
    checklist, problems = checklist_problems(path, specs, sections=sections, environment=environment)
    if problems or checklist is None:
        raise SpecError(problems)
    return checklist
