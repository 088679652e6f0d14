"""A Lambda function as the checks see it, on a moto server: its role with a policy, its
environment variables, a Function URL. The code is a stub; the app itself is served by AppServer."""
from __future__ import annotations

import io
import json
import zipfile

import boto3

from ..iam_policy import least_privilege_policy

MOTO_ACCOUNT = "123456789012"


def role_policy(tables: list, permissions: list, region: str, account: str = MOTO_ACCOUNT, leave_out=()) -> dict:
    """The least-privilege policy of the checklist's permissions, minus any (action, spec table)
    in `leave_out` (tests take one away to see the IAM check fail). A migration's target is
    granted on its source too: before the switch the app uses the source with those rights."""
    policy = least_privilege_policy(permissions, tables, region, account, leave_out)
    sources = {f"table/{t.name}": f"table/{t.migrate_from}" for t in tables if t.migrate_from}
    extra = []
    for statement in policy["Statement"]:
        table_part = statement["Resource"].split(":")[-1]
        for target, source in sources.items():
            if table_part == target or table_part.startswith(target + "/"):
                resource = statement["Resource"].replace(target, source, 1)
                extra.append({**statement, "Sid": statement["Sid"] + "Source", "Resource": resource})
    policy["Statement"] += extra
    return policy


def deploy_function(endpoint: str, region: str, function_name: str, policy: dict, variables: dict,
                    function_url: bool = True, auth_type: str = "NONE", handler: str = "stub.handler",
                    runtime: str = "python3.12") -> dict:
    """A Lambda function with a stub handler, a role carrying `policy`, and a Function URL that
    may invoke it (AuthType NONE with the two statements AWS requires); returns the role."""
    def client(service):
        return boto3.client(service, endpoint_url=endpoint, region_name=region)
    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = iam.create_role(RoleName=f"{function_name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    if policy.get("Statement"):   # no iam permissions: a role with no DynamoDB grant (IAM refuses an empty policy)
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName="dynamodb", PolicyDocument=json.dumps(policy))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("stub.py", "def handler(event, context):\n    return {}\n")
    lam = client("lambda")
    lam.create_function(FunctionName=function_name, Runtime=runtime, Role=role["Arn"], Handler=handler,
                        Code={"ZipFile": code.getvalue()}, Environment={"Variables": variables})
    if function_url:
        lam.create_function_url_config(FunctionName=function_name, AuthType=auth_type)
        if auth_type == "NONE":
            for action in ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction"):
                lam.add_permission(FunctionName=function_name, StatementId=action.replace(":", "-"), Action=action,
                                   Principal="*")
    return role


def create_entry_point(endpoint: str, region: str, function_name: str, kind: str,
                       account: str = MOTO_ACCOUNT) -> str:
    """The entry point `kind` (http_api or rest_api) integrating the function, allowed by its
    resource policy to invoke it, as a deploy tool would make it; returns the API's id. Every
    method and path goes to the function (`$default` route; REST: ANY on / and /{proxy+}, stage
    `local`)."""
    from .events import REST_STAGE

    lam = boto3.client("lambda", endpoint_url=endpoint, region_name=region)
    arn = lam.get_function(FunctionName=function_name)["Configuration"]["FunctionArn"]
    uri = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    if kind == "http_api":
        v2 = boto3.client("apigatewayv2", endpoint_url=endpoint, region_name=region)
        api_id = v2.create_api(Name=function_name, ProtocolType="HTTP")["ApiId"]
        integration = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn,
                                            PayloadFormatVersion="2.0")["IntegrationId"]
        v2.create_route(ApiId=api_id, RouteKey="$default", Target=f"integrations/{integration}")
        v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    else:
        gateway = boto3.client("apigateway", endpoint_url=endpoint, region_name=region)
        api_id = gateway.create_rest_api(name=function_name)["id"]
        root = next(r for r in gateway.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
        proxy = gateway.create_resource(restApiId=api_id, parentId=root["id"], pathPart="{proxy+}")
        for resource in (root, proxy):
            gateway.put_method(restApiId=api_id, resourceId=resource["id"], httpMethod="ANY", authorizationType="NONE")
            gateway.put_integration(restApiId=api_id, resourceId=resource["id"], httpMethod="ANY", type="AWS_PROXY",
                                    integrationHttpMethod="POST", uri=uri)
        gateway.create_deployment(restApiId=api_id, stageName=REST_STAGE)
    allow_api_gateway(endpoint, region, function_name, api_id, account)
    return api_id


def allow_api_gateway(endpoint: str, region: str, function_name: str, api_id: str,
                      account: str = MOTO_ACCOUNT) -> None:
    """The resource-policy statement that lets API Gateway invoke the function from any stage,
    method and path of the API, as `aws lambda add-permission` writes it."""
    lam = boto3.client("lambda", endpoint_url=endpoint, region_name=region)
    lam.add_permission(FunctionName=function_name, StatementId=f"apigateway-{api_id}", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{region}:{account}:{api_id}/*")


def binding_variables(bindings: dict, tables: list) -> dict:
    """{variable: the environment's name of the spec table it is bound to}; a variable bound to a
    migration's target names its source, the state before the migration (which `checker
    migrate` then switches, as it would on AWS: the migration is rehearsed, not skipped)."""
    names = {t.spec_name: t.migrate_from or t.name for t in tables}
    return {variable: names.get(spec_name, spec_name) for variable, spec_name in bindings.items()}
