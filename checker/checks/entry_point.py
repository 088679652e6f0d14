"""The `entry_point` check: a Function URL or an API Gateway HTTP/REST API integrates the function.
Its URL is also the base URL of the endpoint checks when none is given."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..context import CheckContext
from ..errors import AwsError, pages
from ..results import CheckResult, Status
from .function import function_missing


@dataclass(frozen=True)
class EntryPoint:
    kind: str            # function_url | http_api | rest_api
    name: str
    url: Optional[str]
    auth: str = ""
    stages: tuple = ()   # several stages and no way to tell which one is this environment's: url None

    def describe(self) -> str:
        parts = [self.kind.replace("_", " "), self.name, self.url or "",
                 f"(stages {', '.join(self.stages)})" if self.stages else "",
                 f"(auth {self.auth})" if self.auth else ""]
        return " ".join(part for part in parts if part)


def integrates(uri: Optional[str], function_arn: str) -> bool:
    """API Gateway integration URIs embed the function ARN, with or without an alias/version."""
    if not uri:
        return False
    return function_arn in uri or f"function:{function_arn.split(':function:')[-1]}" in uri


def find_entry_points(ctx: CheckContext) -> list:
    """Function URL and API Gateway APIs integrating the function; the entry_point check and
    base-URL discovery for the endpoints both ask, and the account is searched once."""
    return ctx.fact("entry_points", lambda: _search_entry_points(ctx))


def _search_entry_points(ctx: CheckContext) -> list:
    config = ctx.function
    if config is None or ctx.function_name is None:
        return []
    arn = config["FunctionArn"]
    found = []
    url_config = ctx.call("lambda", "GetFunctionUrlConfig", missing_ok=True, FunctionName=ctx.function_name)
    if url_config:
        found.append(EntryPoint("function_url", ctx.function_name, url_config["FunctionUrl"], url_config["AuthType"]))
    for page in pages(ctx.client("apigatewayv2"), "GetApis", "apigateway"):
        for api in page.get("Items", []):
            integrations = ctx.call("apigatewayv2", "GetIntegrations", ApiId=api["ApiId"]).get("Items", [])
            if any(integrates(i.get("IntegrationUri"), arn) for i in integrations):
                url, stages = _http_api_url(ctx, api)
                found.append(EntryPoint("http_api", api["ApiId"], url, stages=stages))
    for page in pages(ctx.client("apigateway"), "GetRestApis", "apigateway"):
        for api in page.get("items", []):
            rest = _rest_api_url(ctx, api, arn)
            if rest is not None:
                found.append(EntryPoint("rest_api", api["id"], rest[0], stages=rest[1]))
    return found


def _one_stage(stages: list) -> tuple:
    """(the stage, ()) when there is one, else (None, every stage): with several, picking one
    would smoke-test whichever came first, maybe another environment's."""
    return (stages[0], ()) if len(stages) == 1 else (None, tuple(stages))


def _http_api_url(ctx: CheckContext, api: dict) -> tuple:
    endpoint = api.get("ApiEndpoint")
    stages = [s["StageName"] for s in ctx.call("apigatewayv2", "GetStages", ApiId=api["ApiId"]).get("Items", [])]
    if not endpoint or not stages or "$default" in stages:
        return endpoint, ()
    stage, ambiguous = _one_stage(stages)
    return (f"{endpoint}/{stage}" if stage else None), ambiguous


def _rest_api_url(ctx: CheckContext, api: dict, function_arn: str) -> Optional[tuple]:
    """(invoke URL of the first resource integrating the function, stages when several), the URL
    None when there is no stage or several; None when nothing in the API integrates it."""
    for page in pages(ctx.client("apigateway"), "GetResources", "apigateway", restApiId=api["id"]):
        for resource in page.get("items", []):
            for method in resource.get("resourceMethods") or {}:
                try:
                    integration = ctx.call("apigateway", "GetIntegration", restApiId=api["id"],
                                           resourceId=resource["id"], httpMethod=method)
                except AwsError as exc:
                    if exc.code == "NotFoundException":
                        continue  # a method without an integration
                    raise
                if integrates(integration.get("uri"), function_arn):
                    names = [s["stageName"] for s in
                             ctx.call("apigateway", "GetStages", restApiId=api["id"]).get("item", [])]
                    stage, ambiguous = _one_stage(names)
                    if stage is None:
                        return None, ambiguous
                    host = f"https://{api['id']}.execute-api.{ctx.client('apigateway').meta.region_name}.amazonaws.com"
                    return f"{host}/{stage}{resource.get('path', '')}", ()
    return None


def check_entry_point(ctx: CheckContext, log=None) -> list:
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
        return [CheckResult("entry_point", "entry_point", Status.FAIL, f"no entry point for {ctx.function_name}",
                            expected=expected, found=found,
                            remediation=f"aws lambda create-function-url-config --function-name {ctx.function_name} "
                                        "--auth-type AWS_IAM (or integrate it in API Gateway)")]
    return [CheckResult("entry_point", "entry_point", Status.PASS, "; ".join(e.describe() for e in wanted),
                        expected=expected, found="; ".join(e.describe() for e in wanted))]


def discovered_base_url(ctx: CheckContext) -> tuple:
    """(the first entry point's URL, "") or (None, why there is none to take)."""
    if ctx.function is None:
        return None, ""
    entry_points = find_entry_points(ctx)
    url = next((e.url for e in entry_points if e.url), None)
    several = [e for e in entry_points if e.stages]
    if url is None and several:
        return None, (f"no base URL: {several[0].describe()}: checker cannot tell which stage is this "
                      "environment's; set base_url in the checklist environment, or pass --base-url")
    return url, ""
