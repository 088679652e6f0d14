"""Checks of the Lambda function: it exists, its environment variables and table bindings, its
entry point (Function URL or API Gateway). Its role's permissions: iam_check.py.

Environment variable VALUES are never read into a result: only names and whether each is set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import botocore.exceptions

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
        expected = ctx.table_name(spec_name)
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
