"""Checks of the Lambda function: it exists, its environment variables, its entry point (Function
URL or API Gateway) and its role's DynamoDB permissions.

Environment variable VALUES are never read into a result: only names and whether each is set.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Optional

import botocore.exceptions
from botocore.parsers import ResponseParserError

from . import iam_policy
from .context import CheckContext
from .report import CheckResult


def function_missing(ctx: CheckContext, kind: str) -> CheckResult:
    """A check that needs the function could not look: an error, never a skip that reads as green."""
    return CheckResult(f"{kind}:function", kind, "error", f"not checked: function {ctx.function_name} does not exist",
                       remediation="deploy the function first")


def check_function(ctx: CheckContext) -> list:
    config = ctx.function
    if config is None:
        return [CheckResult("lambda:function", "lambda", "fail", f"function {ctx.function_name} does not exist",
                            expected=f"Lambda function {ctx.function_name} in {ctx.aws.region or 'the default region'}",
                            found="ResourceNotFoundException",
                            remediation="deploy the function (e.g. `serverless deploy`), then run `checker check` again")]
    results = [CheckResult("lambda:function", "lambda", "pass", f"function {ctx.function_name} exists",
                           found=f"{config.get('Runtime', 'container image')}, state {config.get('State', 'unknown')}")]
    variables = (config.get("Environment") or {}).get("Variables") or {}
    for name in ctx.checklist.required_env:
        present = name in variables
        empty = present and not str(variables[name]).strip()
        status = "pass" if present and not empty else "fail"
        found = "set" if status == "pass" else ("set but empty" if empty else "not set")
        results.append(CheckResult(
            f"lambda:env:{name}", "lambda", status, f"environment variable {name} is {found}",
            expected="set and non-empty (value not shown)", found=found,
            remediation="" if status == "pass" else
            f"aws lambda update-function-configuration --function-name {ctx.function_name} "
            f"--environment 'Variables={{...existing...,{name}=<value>}}' (keep the other variables)"))
    return results


def check_bindings(ctx: CheckContext) -> list:
    """Each bound variable must hold the environment's name of its table. Table names are not
    secrets, so these values (and only these) are read and shown."""
    if not ctx.checklist.bindings:
        return [CheckResult("bindings", "bindings", "skip", "no table bindings in the checklist (lambda.bindings)")]
    config = ctx.function
    if config is None:
        return [function_missing(ctx, "bindings")]
    variables = (config.get("Environment") or {}).get("Variables") or {}
    results = []
    for variable, spec_name in ctx.checklist.bindings.items():
        expected = live_table_name(ctx, spec_name)
        value = variables.get(variable)
        check_id = f"bindings:{variable}"
        if value == expected:
            results.append(CheckResult(check_id, "bindings", "pass", f"{variable} names table {expected}",
                                       expected=expected, found=value))
            continue
        found = "not set" if value is None else repr(value)
        results.append(CheckResult(
            check_id, "bindings", "fail",
            f"{variable} is {found}, but this environment's {spec_name} table is {expected}",
            expected=f"{variable}={expected}", found=found,
            remediation=f"aws lambda update-function-configuration --function-name {ctx.function_name} "
                        f"--environment 'Variables={{...existing...,{variable}={expected}}}' (keep the other variables)"))
    return results


# -- entry point --------------------------------------------------------------------------

@dataclass(frozen=True)
class EntryPoint:
    kind: str            # function_url | http_api | rest_api
    name: str
    url: Optional[str]
    auth: str = ""

    def describe(self) -> str:
        auth = f" (auth {self.auth})" if self.auth else ""
        return f"{self.kind.replace('_', ' ')} {self.name} {self.url or ''}{auth}".strip()


def integrates(uri: Optional[str], function_arn: str) -> bool:
    """API Gateway integration URIs embed the function ARN, with or without an alias/version."""
    return bool(uri) and (function_arn in uri or f"function:{function_arn.split(':function:')[-1]}" in uri)


def find_entry_points(ctx: CheckContext) -> list:
    """Function URL and API Gateway APIs integrating the function; the entry_point check and
    base-URL discovery for the endpoints both ask, and the account is searched once."""
    return ctx.fact("entry_points", lambda: _search_entry_points(ctx))


def _search_entry_points(ctx: CheckContext) -> list:
    config = ctx.function
    arn = config["FunctionArn"]
    found = []
    url_config = ctx.call("lambda", "GetFunctionUrlConfig", missing_ok=True, FunctionName=ctx.function_name)
    if url_config:
        found.append(EntryPoint("function_url", ctx.function_name, url_config["FunctionUrl"], url_config["AuthType"]))
    for page in ctx.client("apigatewayv2").get_paginator("get_apis").paginate():
        for api in page.get("Items", []):
            integrations = ctx.call("apigatewayv2", "GetIntegrations", ApiId=api["ApiId"]).get("Items", [])
            if any(integrates(i.get("IntegrationUri"), arn) for i in integrations):
                found.append(EntryPoint("http_api", api["ApiId"], _http_api_url(ctx, api)))
    for page in ctx.client("apigateway").get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            url = _rest_api_url(ctx, api, arn)
            if url is not None:
                found.append(EntryPoint("rest_api", api["id"], url or None))
    return found


def _http_api_url(ctx: CheckContext, api: dict) -> Optional[str]:
    endpoint = api.get("ApiEndpoint")
    stages = [s["StageName"] for s in ctx.call("apigatewayv2", "GetStages", ApiId=api["ApiId"]).get("Items", [])]
    if not endpoint or not stages or "$default" in stages:
        return endpoint
    return f"{endpoint}/{stages[0]}"


def _rest_api_url(ctx: CheckContext, api: dict, function_arn: str) -> Optional[str]:
    """The invoke URL of the first resource integrating the function, '' if no stage, else None."""
    for page in ctx.client("apigateway").get_paginator("get_resources").paginate(restApiId=api["id"]):
        for resource in page.get("items", []):
            for method in resource.get("resourceMethods") or {}:
                try:
                    integration = ctx.client("apigateway").get_integration(
                        restApiId=api["id"], resourceId=resource["id"], httpMethod=method)
                except botocore.exceptions.ClientError:
                    continue
                if integrates(integration.get("uri"), function_arn):
                    stages = ctx.call("apigateway", "GetStages", restApiId=api["id"]).get("item", [])
                    if not stages:
                        return ""
                    host = f"https://{api['id']}.execute-api.{ctx.client('apigateway').meta.region_name}.amazonaws.com"
                    return f"{host}/{stages[0]['stageName']}{resource.get('path', '')}"
    return None


def check_entry_point(ctx: CheckContext) -> list:
    if ctx.function is None:
        return [function_missing(ctx, "entry_point")]
    require = ctx.checklist.entry_point or "any"
    entry_points = find_entry_points(ctx)
    wanted = [e for e in entry_points if require == "any" or e.kind == require
              or (require == "api_gateway" and e.kind in ("http_api", "rest_api"))]
    expected = {"any": "a Function URL or an API Gateway API integrating the function",
                "function_url": "a Function URL", "api_gateway": "an API Gateway REST or HTTP API"}[require]
    if not wanted:
        found = "; ".join(e.describe() for e in entry_points) or "none"
        return [CheckResult("entry_point", "entry_point", "fail", f"no entry point for {ctx.function_name}",
                            expected=expected, found=found,
                            remediation=f"aws lambda create-function-url-config --function-name {ctx.function_name} "
                                        "--auth-type AWS_IAM (or integrate it in API Gateway)")]
    return [CheckResult("entry_point", "entry_point", "pass", "; ".join(e.describe() for e in wanted),
                        expected=expected, found="; ".join(e.describe() for e in wanted))]


def discovered_base_url(ctx: CheckContext) -> Optional[str]:
    if ctx.function is None:
        return None
    return next((e.url for e in find_entry_points(ctx) if e.url), None)


# -- IAM ------------------------------------------------------------------------------------

def role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def role_policies(ctx: CheckContext, role: str) -> list:
    """(policy name, document) of every inline and attached managed policy of the role."""
    iam = ctx.client("iam")
    documents = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role):
        for name in page["PolicyNames"]:
            documents.append((name, ctx.call("iam", "GetRolePolicy", RoleName=role, PolicyName=name)["PolicyDocument"]))
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role):
        for attached in page["AttachedPolicies"]:
            policy = ctx.call("iam", "GetPolicy", PolicyArn=attached["PolicyArn"])["Policy"]
            version = ctx.call("iam", "GetPolicyVersion", PolicyArn=attached["PolicyArn"],
                               VersionId=policy["DefaultVersionId"])["PolicyVersion"]
            documents.append((attached["PolicyName"], version["Document"]))
    return documents


def live_table_name(ctx: CheckContext, spec_name: str) -> str:
    return next((t.name for t in ctx.tables if t.spec_name == spec_name), spec_name)


def required_pairs(ctx: CheckContext, account: str, region: str) -> list:
    """(permission, action, resource ARN) for everything the checklist says the runtime uses."""
    pairs = []
    for permission in ctx.checklist.permissions:
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{live_table_name(ctx, permission.table)}"
        if permission.index:
            arn += f"/index/{permission.index}"
        pairs += [(permission, action, arn) for action in permission.actions]
    return pairs


def simulate(ctx: CheckContext, role_arn: str, pairs: list) -> Optional[dict]:
    """{(action, resource): allowed} from iam:SimulatePrincipalPolicy, or None where unavailable."""
    decisions = {}
    # One attempt only: where the simulator is missing or refused, the fallback answers at once
    # instead of after botocore's retries of a 500.
    iam = dataclasses.replace(ctx.aws, max_attempts=1).client("iam")
    try:
        for resource in sorted({r for _, _, r in pairs}):
            actions = sorted({a for _, a, r in pairs if r == resource})
            paginator = iam.get_paginator("simulate_principal_policy")
            for page in paginator.paginate(PolicySourceArn=role_arn, ActionNames=actions, ResourceArns=[resource]):
                for result in page["EvaluationResults"]:
                    decisions[(result["EvalActionName"], resource)] = result["EvalDecision"] == "allowed"
    except (NotImplementedError, ResponseParserError, botocore.exceptions.ClientError,
            botocore.exceptions.BotoCoreError):
        return None  # not implemented (moto) or not permitted: evaluate the documents ourselves
    return decisions


def check_iam(ctx: CheckContext) -> list:
    if ctx.function is None:
        return [function_missing(ctx, "iam")]
    config = ctx.function
    role_arn = config["Role"]
    arn_parts = config["FunctionArn"].split(":")
    region, account = arn_parts[3], arn_parts[4]
    pairs = required_pairs(ctx, account, region)
    decisions = simulate(ctx, role_arn, pairs)
    method = "iam:SimulatePrincipalPolicy"
    documents = None
    if decisions is None or ctx.checklist.warn_broad_grants:
        documents = role_policies(ctx, role_name(role_arn))
    if decisions is None:
        method = "the role's policies, evaluated by checker"
        decisions = {(a, r): iam_policy.evaluate(documents, a, r).allowed for _, a, r in pairs}
    results = []
    for permission in ctx.checklist.permissions:
        mine = [(a, r) for p, a, r in pairs if p is permission]
        missing = [(a, r) for a, r in mine if not decisions.get((a, r))]
        table = live_table_name(ctx, permission.table) + (f" index {permission.index}" if permission.index else "")
        if not missing:
            results.append(CheckResult(f"iam:{permission.label}", "iam", "pass",
                                       f"role {role_name(role_arn)} may use {table}",
                                       found=f"{len(mine)} action/resource pairs allowed ({method})"))
            continue
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": sorted({a for a, _ in missing}), "Resource": sorted({r for _, r in missing})}]}
        results.append(CheckResult(
            f"iam:{permission.label}", "iam", "fail",
            f"role {role_name(role_arn)} lacks {len(missing)} permission(s) on {table}",
            expected=", ".join(permission.actions) + f" on {table}",
            found="denied: " + "; ".join(f"{a} on {r}" for a, r in missing) + f" ({method})",
            remediation=f"aws iam put-role-policy --role-name {role_name(role_arn)} --policy-name "
                        f"checker-{permission.label.replace('/', '-')} --policy-document '{json.dumps(policy, separators=(',', ':'))}'"))
    if ctx.checklist.warn_broad_grants and documents is not None:
        broad = iam_policy.broad_grants(documents)
        results.append(CheckResult(
            "iam:broad-grants", "iam", "warn" if broad else "pass",
            f"role {role_name(role_arn)} has grants broader than needed" if broad
            else f"role {role_name(role_arn)} grants no wildcard DynamoDB access",
            expected="DynamoDB actions listed one by one, on the table and index ARNs",
            found="; ".join(broad) or "none",
            remediation="replace dynamodb:* and Resource \"*\" with the actions and ARNs the app uses" if broad else ""))
    return results
