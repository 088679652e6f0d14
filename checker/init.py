"""`checker init`: a project's specs and checklist, written from what is live, or a starter.

From a live function: the tables it uses are those its variables name and those its role grants
(never the whole account), exported as specs; the checklist gets the function's variable NAMES as
`required_env` (values are never read into the file), the variables whose values are those
tables' names as `bindings`, the entry point found, the role's DynamoDB grants on those tables as
`iam.permissions`, and the logs defaults. Wildcard grants cannot be written as permissions: they
become a comment to fix by hand. `checker check` on that environment then passes.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import yaml

from .checklist import TABLE_NAME, Checklist
from .errors import CheckerError
from .iam_actions import ACTIONS
from .text import clip, escape_controls

if TYPE_CHECKING:
    from .environment import Environment

STARTER = """\
# checker's checklist: what an environment of this app must have beyond its table specs.
# `checker validate` checks this file offline; `checker check --env dev` checks an environment.
# Every section but version and environments is optional: a section left out is not checked.
version: 1
default_env: dev
# specs: table_specs            # the table specs directory, relative to this file (this is the default)

environments:
  dev:
    region: us-east-1
    # function_name: my-function
    # table_prefix: dev-         # the environment's table names: dev-orders for the spec "orders"

# lambda:
#   required_env: [API_KEY]      # names only: values are never read
#   bindings: {ORDERS_TABLE: orders}   # a variable that must hold the environment's name of a table
# entry_point:
#   require: any                 # function_url | api_gateway | any | none
# iam:
#   permissions:
#     - {table: orders, actions: [dynamodb:GetItem, dynamodb:PutItem]}
# endpoints:
#   - {name: health, path: /health, expect_status: 200}
# logs:
#   threshold: 0
"""

STARTER_SPEC = {
    "TableName": "example",
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}


@dataclass(frozen=True)
class Written:
    files: list          # paths written
    notes: list          # what to fix by hand


def write_starter(directory: Path, force: bool) -> Written:
    checklist, spec = directory / "checklist.yaml", directory / "table_specs" / "example.json"
    refuse_overwrite([checklist, spec], force)
    spec.parent.mkdir(parents=True, exist_ok=True)
    checklist.write_text(STARTER)
    spec.write_text(json.dumps(STARTER_SPEC, indent=2) + "\n")
    return Written([checklist, spec], ["table_specs/example.json is an example: replace it with your tables "
                                       "(or run `checker init --function NAME` against a live environment)"])


def refuse_overwrite(paths: list, force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise CheckerError(f"{existing[0]}: exists; pass --force to overwrite it")


def init_from_function(directory: Path, function_name: str, env: str, environment: Environment,
                       force: bool) -> Written:
    """From the live function where `environment` points (its prefix/suffix removed from the
    spec names); the export shares its session and its deadline."""
    from .checks.iam import role_name, role_policies
    from .context import CheckContext
    from .export import export_tables
    from .migrate.ledger import is_ledger
    ctx = CheckContext.of(dataclasses.replace(environment, checklist=Checklist("(init)", sections=frozenset())),
                          function_name=function_name)
    config = ctx.function
    prefix, suffix = environment.table_prefix, environment.table_suffix
    if config is None:
        raise CheckerError(f"--function {function_name}: no such function in "
                           f"{environment.aws.region or 'the default region'}")
    variables = (config.get("Environment") or {}).get("Variables") or {}
    documents = role_policies(ctx, role_name(config["Role"]))
    grants, found_notes = dynamodb_grants(documents)
    # a note holds live text (a policy's name and Resource): one line each, a comment in the
    # checklist and a line on the terminal, whatever it holds
    notes = [escape_controls(clip(note, 400)) for note in found_notes]
    live_tables = live_candidates(ctx, {*variables.values(), *(t for t, _ in grants)})
    named = {value for value in variables.values() if value in live_tables}
    tables = sorted(named | ({t for t, _ in grants} & live_tables))
    tables = [t for t in tables if environment.spec_name(t) and not is_ledger(t, prefix, suffix)]
    if not tables:
        raise CheckerError(f"{function_name}: neither its variables nor its role name a live DynamoDB table; "
                           "run `checker init` without --function for a starter")
    checklist_file = directory / "checklist.yaml"
    specs_dir = directory / "table_specs"
    spec_names = {t: environment.spec_name(t) or t for t in tables}
    refuse_overwrite([checklist_file, *(specs_dir / f"{n}.json" for n in spec_names.values())], force)
    exported = export_tables(environment, specs_dir, tables, force=True)
    document = checklist_document(ctx, env, config, variables, spec_names, grants, prefix, suffix)
    wishes = (yaml.safe_load(exported.snippet) or {}).get("tables")  # TTL and PITR found, as a tables: section
    if wishes:
        document["tables"] = wishes
    header = "# Written by `checker init` from the live function " + function_name + \
             ". Values of variables are never read into this file.\n"
    header += "".join(f"# TO FIX BY HAND: {note}\n" for note in notes)
    checklist_file.write_text(header + yaml.safe_dump(document, sort_keys=False, width=110))
    return Written([*exported.files, checklist_file], notes)


def live_candidates(ctx, candidates: set) -> set:
    """Which of the tables the function's variables and role name exist: every table the account
    lists, or, where ListTables is denied (a role scoped to its own tables), each candidate
    described by name."""
    from .errors import AwsError
    from .live import describe_tables, table_names
    try:
        return set(table_names(ctx.client("dynamodb")))
    except AwsError as exc:
        if exc.code not in ("AccessDenied", "AccessDeniedException"):
            raise
    names = sorted(c for c in candidates if isinstance(c, str) and TABLE_NAME.fullmatch(c))
    found = describe_tables(ctx.client("dynamodb"), names)
    return {name for name, description in found.items() if description is not None}


def checklist_document(ctx, env: str, config: dict, variables: dict, spec_names: dict, grants: dict,
                       prefix: str, suffix: str) -> dict:
    from .checks.entry_point import find_entry_points
    environment = {"region": config["FunctionArn"].split(":")[3], "function_name": ctx.function_name}
    if prefix:
        environment["table_prefix"] = prefix
    if suffix:
        environment["table_suffix"] = suffix
    document: dict = {"version": 1, "default_env": env, "environments": {env: environment}}
    bindings = {name: spec_names[value] for name, value in sorted(variables.items()) if value in spec_names}
    section: dict = {"required_env": sorted(variables)}
    if bindings:
        section["bindings"] = bindings
    document["lambda"] = section
    entry_points = find_entry_points(ctx)
    kinds = {e.kind for e in entry_points}
    if not entry_points:
        document["entry_point"] = {"require": "none"}
    else:
        require = "function_url" if kinds == {"function_url"} else "api_gateway" if "function_url" not in kinds else "any"
        document["entry_point"] = {"require": require}
        if any(e.kind == "function_url" and e.auth == "NONE" for e in entry_points):
            document["entry_point"]["public"] = True
    permissions = []
    for (table, index), actions in sorted(grants.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if table in spec_names:
            entry = {"table": spec_names[table], "actions": sorted(f"dynamodb:{a}" for a in actions)}
            if index:
                entry["index"] = index
            permissions.append(dict(entry, used_by="external"))
    if permissions:
        document["iam"] = {"permissions": permissions}
    document["logs"] = {"filter_pattern": "ERROR", "threshold": 0}
    return document


def dynamodb_grants(documents: list) -> tuple:
    """({(table, index or None): {action}}, notes) of the Allow statements naming DynamoDB
    actions on table or index ARNs; wildcards (an action `dynamodb:*`, a resource `*` or a
    table named with `*`) cannot be written as permissions and become notes."""
    from .iam_policy import as_list, parse_document
    grants: dict = {}
    notes: list = []
    for name, raw in documents:
        for statement in as_list(parse_document(raw).get("Statement")):
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            actions = [a for a in as_list(statement.get("Action")) if str(a).lower().startswith("dynamodb:")]
            if not actions:
                continue
            exact = {a.split(":", 1)[1] for a in actions if a.split(":", 1)[1] in ACTIONS}
            wild = sorted(a for a in actions if "*" in a or "?" in a)
            for resource in as_list(statement.get("Resource")):
                target = _table_and_index(str(resource))
                if target is None:
                    notes.append(f"policy {name}: {', '.join(actions)} on {resource} (a wildcard resource)")
                    continue
                if wild:
                    notes.append(f"policy {name}: {', '.join(wild)} on {resource} (name the actions the app uses)")
                grants.setdefault(target, set()).update(exact)
    return grants, list(dict.fromkeys(notes))


def _table_and_index(arn: str) -> Optional[tuple]:
    """(table, index or None) of a DynamoDB table or index ARN without wildcards."""
    if ":table/" not in arn or "*" in arn or "?" in arn:
        return None
    rest = arn.split(":table/", 1)[1]
    table, _, tail = rest.partition("/")
    if tail.startswith("index/"):
        return table, tail[len("index/"):]
    return (table, None) if not tail else None



def init_from_template(directory: Path, template: Path, env: str, region: Optional[str], function_id: Optional[str],
                       force: bool) -> Written:
    """checklist.yaml from a SAM or CloudFormation template (checker/iac/checklist.py): its specs
    are the template itself, so no spec file is written."""
    import os

    from .iac import TemplateContext
    from .iac.checklist import checklist_from_template
    if not template.is_file():
        raise CheckerError(f"--from {clip(str(template), 200)}: no such file")
    checklist_file = directory / "checklist.yaml"
    refuse_overwrite([checklist_file], force)
    relative = Path(os.path.relpath(template.resolve(), directory.resolve())).as_posix()
    from .iac.terraform import is_terraform_json
    try:
        if is_terraform_json(template.read_text(encoding="utf-8")):
            from .iac.checklist import checklist_from_terraform
            document, found_notes = checklist_from_terraform(template, relative, env, region, function_id)
        else:
            document, found_notes = checklist_from_template(template, relative, TemplateContext(
                region=region or "us-east-1", environment=env), env, function_id)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        # a function, role or policy of another shape than a deployable template's: named, not guessed
        raise CheckerError(f"{template}: its function, role or policies are not what a deployable template holds "
                           f"({type(exc).__name__}: {clip(str(exc), 120)}); nothing was written") from None
    notes = [escape_controls(clip(note, 400)) for note in found_notes]
    if region is None:
        notes.append(f"environments.{env}.region: us-east-1 was assumed (pass --region)")
    header = f"# Written by `checker init --from {relative}`: tables, function, bindings and permissions as the template says.\n"
    header += "".join(f"# TO FIX BY HAND: {note}\n" for note in notes)
    directory.mkdir(parents=True, exist_ok=True)
    checklist_file.write_text(header + yaml.safe_dump(document, sort_keys=False, width=110))
    return Written([checklist_file], notes)
