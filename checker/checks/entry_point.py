"""The `entry_point` check: a Function URL or an API Gateway HTTP/REST API integrates the function.
Its URL is also the base URL of the endpoint checks when none is given."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from ..context import CheckContext
from ..errors import AwsError, CheckerError, pages
from ..fixes import aws_command, in_template, statement_id
from ..iam_policy import api_gateway_context, grants, resource_policy_allows
from ..results import CheckResult, Status
from .function import function_missing


@dataclass(frozen=True)
class EntryPoint:
    kind: str            # function_url | http_api | rest_api
    name: str
    url: Optional[str]
    auth: str = ""
    stages: tuple = ()   # several stages and no way to tell which one is this environment's: url None
    source_arns: tuple = ()          # execute-api ARNs its integrations invoke the function from
    credentials: bool = False        # an integration invokes with a role of its own (no resource policy needed)

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
    region, account = arn.split(":")[3:5]
    found = []
    url_config = ctx.call("lambda", "GetFunctionUrlConfig", missing_ok=True, FunctionName=ctx.function_name)
    if url_config:
        found.append(EntryPoint("function_url", ctx.function_name, url_config["FunctionUrl"], url_config["AuthType"]))
    for page in pages(ctx.client("apigatewayv2"), "GetApis", "apigateway"):
        for api in page.get("Items", []):
            integrations = [i for i in every_item(ctx, "GetIntegrations", api["ApiId"])
                            if integrates(i.get("IntegrationUri"), arn)]
            if integrations:
                found.append(_http_api(ctx, api, integrations, f"arn:aws:execute-api:{region}:{account}"))
    for page in pages(ctx.client("apigateway"), "GetRestApis", "apigateway"):
        for api in page.get("items", []):
            rest = _rest_api(ctx, api, arn, f"arn:aws:execute-api:{region}:{account}")
            if rest is not None:
                found.append(rest)
    return found


def _one_stage(stages: list) -> tuple:
    """(the stage, ()) when there is one, else (None, every stage): with several, picking one
    would smoke-test whichever came first, maybe another environment's."""
    return (stages[0], ()) if len(stages) == 1 else (None, tuple(stages))


def _http_api(ctx: CheckContext, api: dict, integrations: list, arn_prefix: str) -> EntryPoint:
    endpoint = api.get("ApiEndpoint")
    stages = [s["StageName"] for s in every_item(ctx, "GetStages", api["ApiId"])]
    ids = {f"integrations/{i.get('IntegrationId')}" for i in integrations}
    routes = [r.get("RouteKey", "") for r in every_item(ctx, "GetRoutes", api["ApiId"]) if r.get("Target") in ids]
    stage, ambiguous = _one_stage(stages) if stages and "$default" not in stages else ("$default" if stages else None, ())
    source = stage if stage else "*"
    arns = tuple(f"{arn_prefix}:{api['ApiId']}/{source}/{_route_resource(key)}" for key in routes or ["$default"])
    credentials = any(i.get("CredentialsArn") for i in integrations)
    if not endpoint or not stages or "$default" in stages:
        url = endpoint
    else:
        url = f"{endpoint}/{stage}" if stage else None
    return EntryPoint("http_api", api["ApiId"], url, stages=ambiguous, source_arns=arns, credentials=credentials)


def every_item(ctx: CheckContext, operation: str, api_id: str) -> list:
    """Every item of an HTTP API's listing, all its pages: an integration on the fifth page is
    still this function's entry point."""
    return [item for page in pages(ctx.client("apigatewayv2"), operation, "apigateway", ApiId=api_id)
            for item in page.get("Items", [])]


def _route_resource(route_key: str) -> str:
    """`GET /x` -> `GET/x`, `ANY /x` -> `*/x`, `$default` -> `$default`: the tail of the
    execute-api ARN API Gateway invokes the function from."""
    if " " not in route_key:
        return route_key
    method, path = route_key.split(" ", 1)
    return f"{'*' if method == 'ANY' else method}{path}"


def _rest_api(ctx: CheckContext, api: dict, function_arn: str, arn_prefix: str) -> Optional[EntryPoint]:
    """The REST API as an entry point when a method of it integrates the function: the invoke URL
    of the first such resource (None when there is no stage or several), and every method's
    execute-api ARN; None when nothing in the API integrates it."""
    methods = []   # (resource path, method, integration)
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
                    methods.append((resource.get("path", ""), method, integration))
    if not methods:
        return None
    names = [s["stageName"] for s in ctx.call("apigateway", "GetStages", restApiId=api["id"]).get("item", [])]
    stage, ambiguous = _one_stage(names)
    arns = tuple(f"{arn_prefix}:{api['id']}/{stage or '*'}/{'*' if method == 'ANY' else method}{path}"
                 for path, method, _ in methods)
    credentials = any(integration.get("credentials") for _, _, integration in methods)
    url = rest_invoke_url(ctx.client("apigateway"), api["id"], stage, methods[0][0]) if stage is not None else None
    return EntryPoint("rest_api", api["id"], url, stages=ambiguous, source_arns=arns, credentials=credentials)


def rest_invoke_url(client, api_id: str, stage: str, path: str) -> str:
    """A REST API's invoke URL: on AWS `https://{id}.execute-api.{region}.amazonaws.com/{stage}{path}`;
    against an emulator's --endpoint-url, LocalStack's form `{endpoint}/restapis/{id}/{stage}/_user_request_{path}`
    (which `checker local` serves too), since the AWS host does not resolve there."""
    endpoint = client.meta.endpoint_url or ""
    host = urlsplit(endpoint).hostname or ""
    if not endpoint or host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        suffix = ".cn" if host.endswith(".cn") else ""
        return f"https://{api_id}.execute-api.{client.meta.region_name}.amazonaws.com{suffix}/{stage}{path}"
    return f"{endpoint.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_{path}"


# -- may it invoke? ----------------------------------------------------------------------------
def policy_statements(ctx: CheckContext) -> list:
    """The function's resource policy (GetPolicy), as a list of statements; [] when it has none."""
    answer = ctx.call("lambda", "GetPolicy", missing_ok=True, FunctionName=ctx.function_name)
    if not answer:
        return []
    try:
        document = json.loads(answer.get("Policy") or "{}")
    except ValueError:
        raise CheckerError("GetPolicy: the function's policy is not JSON, not what the API promises") from None
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements or [] if isinstance(s, dict)]


API_GATEWAY = ("apigateway.amazonaws.com", "*")   # the principals whose grant lets API Gateway invoke
# what a public Function URL needs its resource policy to let Principal * do (AWS asks for both)
FUNCTION_URL_ACTIONS = ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction")


def invoke_problems(entry_point: EntryPoint, statements: list, public: bool) -> tuple:
    """(problems that stop it invoking the function, warnings) for one entry point."""
    if entry_point.kind == "function_url":
        if entry_point.auth == "AWS_IAM" and public:   # anyone is meant to call it: unsigned calls get 403
            return ["auth AWS_IAM, but entry_point.public says anyone may call it: an unsigned request is refused "
                    "with 403"], []
        if entry_point.auth == "AWS_IAM":
            return [], ["auth AWS_IAM: who may call it is the callers' IAM policies, not checked here"]
        missing = [a for a in FUNCTION_URL_ACTIONS if not any(grants(s, a, ("*",)) for s in statements)]
        problems = [f"no resource-policy statement lets Principal * call {a}" for a in missing]
        warnings = [] if public else ["auth NONE: anyone on the internet may call it (say entry_point.public: "
                                      "true if that is intended)"]
        return problems, warnings
    if entry_point.credentials:
        return [], []
    denied, unsure = uncovered_arns(entry_point, statements)
    return ([f"the function's resource policy does not let API Gateway invoke it from {arn}" for arn in denied],
            [f"a resource-policy statement may let API Gateway invoke it from {arn} under a condition checker "
             "does not evaluate" for arn in unsure])


def uncovered_arns(entry_point: EntryPoint, statements: list) -> tuple:
    """(the execute-api ARNs of an API no statement lets invoke the function, those only a
    statement with a condition checker cannot evaluate may let through)."""
    denied: list = []
    unsure: list = []
    for arn in entry_point.source_arns:
        verdict = resource_policy_allows(statements, "lambda:InvokeFunction", API_GATEWAY, api_gateway_context(arn))
        if verdict is not True:
            (unsure if verdict is None else denied).append(arn)
    return denied, unsure


def permission_fixes(ctx: CheckContext, entry: EntryPoint, statements: list) -> list:
    """The add-permission commands that let this entry point invoke the function: for an API,
    one per stage of it whose ARN nothing allows (`API/STAGE/*`: every method and path of the
    stage); for a Function URL of auth NONE, each of the two statements AWS requires. A function
    a template owns (checker/iac): the permission goes into the template."""
    if ctx.function_owner:
        return [in_template(ctx.function_owner, f"let the {entry.kind.replace('_', ' ')} invoke the function (SAM: its event or "
                                   "FunctionUrlConfig; CloudFormation: an AWS::Lambda::Permission)")]
    function = ctx.function_name or ""
    if entry.kind == "function_url":
        public = [aws_command(ctx.aws, "lambda", "update-function-url-config", "--function-name", function,
                              "--auth-type", "NONE", "--query", "AuthType", "--output", "text")
                  ] if entry.auth == "AWS_IAM" else []
        conditions = {"lambda:InvokeFunctionUrl": ("--function-url-auth-type", "NONE"),
                      "lambda:InvokeFunction": ("--invoked-via-function-url",)}
        return public + [aws_command(ctx.aws, "lambda", "add-permission", "--function-name", function, "--statement-id",
                                     statement_id("checker-url", function, action), "--action", action,
                                     "--principal", "*", *conditions[action])
                         for action in FUNCTION_URL_ACTIONS if not any(grants(s, action, ("*",)) for s in statements)]
    fixes = []
    for arn in uncovered_arns(entry, statements)[0]:
        api, _, rest = arn.partition("/")
        stage_wide = f"{api}/{rest.split('/', 1)[0]}/*"
        fixes.append(aws_command(ctx.aws, "lambda", "add-permission", "--function-name", function, "--statement-id",
                                 statement_id("checker-apigateway", function, stage_wide), "--action",
                                 "lambda:InvokeFunction", "--principal", "apigateway.amazonaws.com",
                                 "--source-arn", stage_wide))
    return fixes


def check_entry_point(ctx: CheckContext, log=None) -> list:
    require = ctx.checklist.entry_point or "any"
    if require == "none":
        return [CheckResult("entry_point", "entry_point", Status.SKIP,
                            "entry_point.require is none: the function has no HTTP entry point to check")]
    if ctx.function is None:
        return [function_missing(ctx, "entry_point")]
    entry_points = find_entry_points(ctx)
    wanted = [e for e in entry_points if require == "any" or e.kind == require
              or (require == "api_gateway" and e.kind in ("http_api", "rest_api"))]
    expected = {"any": "a Function URL or an API Gateway API integrating the function",
                "function_url": "a Function URL", "api_gateway": "an API Gateway REST or HTTP API"}[require]
    expected += ", allowed by the function's resource policy to invoke it"
    if not wanted:
        found = "; ".join(e.describe() for e in entry_points) or "none"
        return [CheckResult("entry_point", "entry_point", Status.FAIL, f"no entry point for {ctx.function_name}",
                            expected=expected, found=found,
                            remediation="integrate it in API Gateway, or give it a Function URL that only signed "
                                        "callers may use: " + aws_command(
                                            ctx.aws, "lambda", "create-function-url-config", "--function-name",
                                            ctx.function_name or "", "--auth-type", "AWS_IAM"))]
    statements = policy_statements(ctx)
    problems, warnings, fixes = [], [], []
    for entry in wanted:
        blocked, unsure = invoke_problems(entry, statements, ctx.checklist.entry_point_public)
        problems += [f"{entry.kind.replace('_', ' ')} {entry.name}: {p}" for p in blocked]
        warnings += [f"{entry.kind.replace('_', ' ')} {entry.name}: {w}" for w in unsure]
        if blocked:
            fixes += permission_fixes(ctx, entry, statements)
    found = "; ".join(e.describe() for e in wanted)
    if problems:
        return [CheckResult("entry_point", "entry_point", Status.FAIL,
                            f"{ctx.function_name}'s entry point may not invoke it", expected=expected, found=found,
                            details=tuple(problems + warnings), remediation=" && ".join(dict.fromkeys(fixes)))]
    if warnings:
        return [CheckResult("entry_point", "entry_point", Status.WARN, found, expected=expected, found=found,
                            details=tuple(warnings))]
    return [CheckResult("entry_point", "entry_point", Status.PASS, found, expected=expected, found=found)]


def entry_point_urls(ctx: CheckContext) -> dict:
    """{kind: the URL} of each entry point found with one (the first of a kind), for the
    endpoints that name the entry point they go through."""
    urls: dict = {}
    for entry in find_entry_points(ctx) if ctx.function is not None else []:
        if entry.url:
            urls.setdefault(entry.kind, entry.url)
    return urls


def discovered_base_url(ctx: CheckContext) -> tuple:
    """(the first entry point's URL, "") or (None, why there is none to take)."""
    if ctx.checklist.entry_point == "none":
        return None, ("no base URL: entry_point.require is none, so none is looked for; set base_url in the "
                      "checklist environment, or pass --base-url")
    if ctx.function is None:
        return None, ""
    entry_points = find_entry_points(ctx)
    url = next((e.url for e in entry_points if e.url), None)
    several = [e for e in entry_points if e.stages]
    if url is None and several:
        return None, (f"no base URL: {several[0].describe()}: checker cannot tell which stage is this "
                      "environment's; set base_url in the checklist environment, or pass --base-url")
    return url, ""
