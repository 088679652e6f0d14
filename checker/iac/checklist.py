"""`checker init --from TEMPLATE`: the checklist of a SAM or CloudFormation template's function.

The template (SAM translated first, so a policy template such as `DynamoDBCrudPolicy` is the
statements SAM deploys) gives: `specs:` the template itself; the function (`AWS::Lambda::Function`,
one, or the one `--function LOGICAL_ID` names) and its FunctionName; `lambda.required_env` its
variables' names, `lambda.bindings` those whose value is a `!Ref` of one of the template's tables;
`iam.permissions` the DynamoDB actions its role's inline policies allow on those tables (and, on
`table/NAME/index/*`, the index actions on each index of the table); `entry_point` from an
`AWS::Lambda::Url` (Function URL, `public` with AuthType NONE) or API Gateway's invoke
permission; `endpoints` the GET routes without path parameters of its `Api`/`HttpApi` events. What
the template cannot say is a note for the checklist's head (a generated function name, a
parameter with no default, a wildcard grant), never a guess.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import CheckerError
from .cloudformation import Resolver, TemplateContext, Unresolvable, template_document

INDEX_ACTIONS = ("dynamodb:Query", "dynamodb:Scan")


def referenced(node: Any) -> set:
    """The logical ids a value names: Ref, Fn::GetAtt, and ${Name} / ${Name.Attr} inside Fn::Sub."""
    found: set = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) and value else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                found |= referenced(value[1] if isinstance(value, list) and len(value) > 1 else None)
            else:
                found |= referenced(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced(item)
    return found


def texts(node: Any) -> str:
    """Every string of a value, joined (where `/index/` shows in a Sub or a Join)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return " ".join(texts(v) for v in node.values())
    if isinstance(node, list):
        return " ".join(texts(v) for v in node)
    return ""


def checklist_from_template(path: Path, relative: str, context: TemplateContext, env: str,
                            function_id: Optional[str] = None) -> tuple:
    """(the checklist document, notes to fix by hand)."""
    from .cloudformation import TABLE_TYPES, cloudformation_specs
    text = path.read_text(encoding="utf-8")
    document = template_document(path, text, context)
    resources = document.get("Resources") or {}
    specs, problems = cloudformation_specs(path, text, context)
    if problems:
        raise CheckerError("; ".join(str(p) for p in problems[:5]))
    tables = {s.logical_id: s for s in specs}
    table_ids = {k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") in TABLE_TYPES}
    functions = [k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == "AWS::Lambda::Function"]
    if not functions:
        raise CheckerError(f"{path}: declares no AWS::Lambda::Function (nor AWS::Serverless::Function): init --from "
                           "writes the checklist of the function the app runs as")
    if function_id is None and len(functions) != 1:
        raise CheckerError(f"{path}: {len(functions)} functions ({', '.join(functions)}): name one with "
                           "--function LOGICAL_ID")
    chosen = function_id or functions[0]
    if chosen not in functions:
        raise CheckerError(f"{path}: no AWS::Lambda::Function {chosen} (functions: {', '.join(functions) or 'none'})")
    resolver = Resolver(document, context)
    properties = resources[chosen].get("Properties") or {}
    notes: list = []
    environment: dict = {"region": context.region or "us-east-1"}
    missing = [name for name, declared in (document.get("Parameters") or {}).items()
               if isinstance(declared, dict) and "Default" not in declared and name not in context.parameters]
    if missing:
        notes.append(f"environments.{env}.parameters: give {', '.join(missing)} (the template has no Default)")
    try:
        environment["function_name"] = resolver.value(properties["FunctionName"]) if "FunctionName" in properties else None
    except Unresolvable as exc:
        environment["function_name"] = None
        notes.append(f"environments.{env}.function_name: {exc}")
    if environment["function_name"] is None:
        notes.append(f"environments.{env}.function_name: the template gives {chosen} no FunctionName (CloudFormation "
                     "generates it): set it to the deployed function's name")
    environment = {k: v for k, v in environment.items() if v is not None}
    variables = (properties.get("Environment") or {}).get("Variables") or {}
    section: dict = {"required_env": sorted(variables)}
    bindings = {name: next(iter(referenced(value) & table_ids)) for name, value in sorted(variables.items())
                if len(referenced(value) & table_ids) == 1 and isinstance(value, dict) and "Ref" in value}
    if bindings:
        section["bindings"] = bindings
    checklist: dict = {"version": 1, "default_env": env, "specs": relative, "environments": {env: environment},
                       "lambda": section}
    checklist["entry_point"] = entry_point(resources, chosen)
    permissions = role_permissions(resources, properties.get("Role"), table_ids, tables, notes)
    if permissions:
        checklist["iam"] = {"permissions": permissions}
    endpoints = routes(resources, chosen)
    if endpoints:
        checklist["endpoints"] = endpoints
    checklist["logs"] = {"filter_pattern": "ERROR", "threshold": 0}
    return checklist, notes


def entry_point(resources: dict, function_id: str) -> dict:
    urls = [r for r in resources.values() if isinstance(r, dict) and r.get("Type") == "AWS::Lambda::Url"
            and function_id in referenced((r.get("Properties") or {}).get("TargetFunctionArn"))]
    apis = [r for r in resources.values() if isinstance(r, dict) and r.get("Type") == "AWS::Lambda::Permission"
            and function_id in referenced((r.get("Properties") or {}).get("FunctionName"))
            and (r.get("Properties") or {}).get("Principal") == "apigateway.amazonaws.com"]
    if not urls and not apis:
        return {"require": "none"}
    found: dict = {"require": "any" if urls and apis else "function_url" if urls else "api_gateway"}
    if any((u.get("Properties") or {}).get("AuthType") == "NONE" for u in urls):
        found["public"] = True
    return found


def role_permissions(resources: dict, role: Any, table_ids: set, tables: dict, notes: list) -> list:
    """The DynamoDB actions the function's role (a role of the template) allows on its tables."""
    role_ids = referenced(role)
    role_resource = next((resources[r] for r in role_ids if r in resources), None)
    if role_resource is None or role_resource.get("Type") != "AWS::IAM::Role":
        notes.append("iam.permissions: the function's role is not a role of the template; list what the app calls")
        return []
    grants: dict = {}
    for policy in (role_resource.get("Properties") or {}).get("Policies") or []:
        for statement in _list((policy.get("PolicyDocument") or {}).get("Statement")):
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            actions = [a for a in _list(statement.get("Action")) if isinstance(a, str) and a.lower().startswith("dynamodb:")]
            if not actions:
                continue
            wild = [a for a in actions if "*" in a]
            for resource in _list(statement.get("Resource")):
                named = referenced(resource) & table_ids
                if not named:
                    notes.append(f"iam.permissions: {policy.get('PolicyName')}: {', '.join(actions)} on "
                                 f"{json.dumps(resource)[:120]} (not one of the template's tables)")
                    continue
                if wild:
                    notes.append(f"iam.permissions: {policy.get('PolicyName')}: {', '.join(wild)} (name the actions)")
                on_index = "/index/" in texts(resource)
                for table in named:
                    if not on_index:
                        grants.setdefault((table, None), set()).update(a for a in actions if a not in wild)
                    elif table in tables:
                        for index in sorted(tables[table].index_names):
                            grants.setdefault((table, index), set()).update(a for a in actions if a in INDEX_ACTIONS)
    return permission_entries(grants)


def permission_entries(grants: dict) -> list:
    """{(table, index or None): {action}} as iam.permissions entries, in a stable order (the app's
    own calls: `used_by: external`, as init writes them from a live role)."""
    return [dict({"table": table, "actions": sorted(actions)}, **({"index": index} if index else {}), used_by="external")
            for (table, index), actions in sorted(grants.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
            if actions]


def routes(resources: dict, function_id: str) -> list:
    """GET routes without path parameters of the function's API events (SAM's translation keeps
    them in the API's OpenAPI body; an HttpApi's route keys say them too)."""
    found = []
    for resource in resources.values():
        if not isinstance(resource, dict):
            continue
        body = (resource.get("Properties") or {}).get("Body") or (resource.get("Properties") or {}).get("DefinitionBody")
        for route, operations in ((body or {}).get("paths") or {}).items() if isinstance(body, dict) else ():
            if not isinstance(operations, dict) or "{" in route:
                continue
            for method, operation in operations.items():
                integration = json.dumps((operation or {}).get("x-amazon-apigateway-integration") or {})
                if method.lower() in ("get", "x-amazon-apigateway-any-method") and function_id in integration:
                    name = re.sub(r"[^A-Za-z0-9_-]+", "-", route.strip("/")) or "root"
                    found.append({"name": name, "path": route, "expect_status": 200})
    return list({e["path"]: e for e in found}.values())


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def checklist_from_terraform(path: Path, relative: str, env: str, region: Optional[str],
                             function_id: Optional[str] = None) -> tuple:
    """The checklist of a `terraform show -json` document's function (`aws_lambda_function`, one,
    or the one `--function` names by address or function_name): its variables, the bindings
    whose value is one of the document's tables, its role's `aws_iam_role_policy` grants on them,
    the entry point (`aws_lambda_function_url`, API Gateway's `aws_lambda_permission`)."""
    from ..inputs import parse_json
    from .terraform import resources, terraform_specs
    text = path.read_text(encoding="utf-8")
    specs, problems = terraform_specs(path, text)
    if problems:
        raise CheckerError("; ".join(str(p) for p in problems[:5]))
    document = parse_json(text)
    found = resources((document.get("planned_values") or document.get("values") or {}).get("root_module"))
    functions = [r for r in found if r.get("type") == "aws_lambda_function"]
    chosen = [f for f in functions if function_id in (f.get("address"), (f.get("values") or {}).get("function_name"))] \
        if function_id else functions
    if len(chosen) != 1:
        raise CheckerError(f"{path}: {len(chosen)} aws_lambda_function(s) {'named ' + function_id if function_id else ''}"
                           f"({', '.join(str(f.get('address')) for f in functions) or 'none'}): name one with --function")
    function = chosen[0].get("values") or {}
    by_name = {s.request["TableName"]: s for s in specs}
    variables = ((function.get("environment") or [{}])[0] or {}).get("variables") or {}
    section: dict = {"required_env": sorted(variables)}
    bindings = {name: by_name[value].logical_id for name, value in sorted(variables.items()) if value in by_name}
    if bindings:
        section["bindings"] = bindings
    notes: list = []
    environment = {"region": region or "us-east-1", "function_name": function.get("function_name")}
    checklist: dict = {"version": 1, "default_env": env, "specs": relative, "environments": {env: environment},
                       "lambda": section}
    checklist["entry_point"] = terraform_entry_point(found, function)
    role = str(function.get("role") or "").rsplit("/", 1)[-1]
    grants: dict = {}
    for policy in (r.get("values") or {} for r in found if r.get("type") == "aws_iam_role_policy"):
        if str(policy.get("role") or "").rsplit("/", 1)[-1] != role:
            continue
        try:
            statements = _list(json.loads(policy.get("policy") or "{}").get("Statement"))
        except ValueError:
            notes.append(f"iam.permissions: the policy {policy.get('name')} is not JSON")
            continue
        for statement in statements:
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            actions = [a for a in _list(statement.get("Action")) if isinstance(a, str) and a.startswith("dynamodb:")
                       and "*" not in a]
            for resource in _list(statement.get("Resource")):
                match = re.fullmatch(r"arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([^/]+)(/index/(.+))?", str(resource))
                if not match or match.group(1) not in by_name or not actions:
                    continue
                spec = by_name[match.group(1)]
                indexes = [None] if not match.group(3) else sorted(spec.index_names) if match.group(3) == "*" \
                    else [match.group(3)]
                for index in indexes:
                    grants.setdefault((spec.logical_id, index), set()).update(
                        a for a in actions if index is None or a in INDEX_ACTIONS)
    permissions = permission_entries(grants)
    if permissions:
        checklist["iam"] = {"permissions": permissions}
    checklist["logs"] = {"filter_pattern": "ERROR", "threshold": 0}
    return checklist, notes


def terraform_entry_point(found: list, function: dict) -> dict:
    name = function.get("function_name")
    urls = [r.get("values") or {} for r in found if r.get("type") == "aws_lambda_function_url"
            and (r.get("values") or {}).get("function_name") in (name, function.get("arn"))]
    apis = [r for r in found if r.get("type") == "aws_lambda_permission"
            and (r.get("values") or {}).get("function_name") in (name, function.get("arn"))
            and (r.get("values") or {}).get("principal") == "apigateway.amazonaws.com"]
    if not urls and not apis:
        return {"require": "none"}
    entry: dict = {"require": "any" if urls and apis else "function_url" if urls else "api_gateway"}
    if any(u.get("authorization_type") == "NONE" for u in urls):
        entry["public"] = True
    return entry
