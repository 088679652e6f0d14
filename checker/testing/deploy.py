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
    in `leave_out` (tests take one away to see the IAM check fail)."""
    return least_privilege_policy(permissions, tables, region, account, leave_out)


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


def allow_api_gateway(endpoint: str, region: str, function_name: str, api_id: str,
                      account: str = MOTO_ACCOUNT) -> None:
    """The resource-policy statement that lets API Gateway invoke the function from any stage,
    method and path of the API, as `aws lambda add-permission` writes it."""
    lam = boto3.client("lambda", endpoint_url=endpoint, region_name=region)
    lam.add_permission(FunctionName=function_name, StatementId=f"apigateway-{api_id}", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{region}:{account}:{api_id}/*")


def binding_variables(bindings: dict, tables: list) -> dict:
    """{variable: the environment's name of the spec table it is bound to}."""
    names = {t.spec_name: t.name for t in tables}
    return {variable: names.get(spec_name, spec_name) for variable, spec_name in bindings.items()}
