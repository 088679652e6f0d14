"""A thin proxy in front of moto that makes the local app reachable the way it is found on AWS.

On AWS, `checker check` finds the app's base URL by asking Lambda for the Function URL or API
Gateway for the API's endpoint; on moto those URLs name hosts that do not resolve. This proxy
forwards every AWS call to moto unchanged, except that the answers naming the local app's URL
(GetFunctionUrlConfig's `FunctionUrl`, an HTTP API's `ApiEndpoint`) name the app's local address,
and a REST API's invoke URL in LocalStack's form (`/restapis/{id}/{stage}/_user_request_/...`,
which checker builds when pointed at an endpoint) goes to the app. So `check` and `smoke` need no
`--base-url` on the local stack, and the discovery code they run is the code that runs on AWS.
"""
from __future__ import annotations

import json
import re
from typing import Optional

import urllib3

from .. import iam_policy
from .events import REST_PREFIX
from .http import LocalServer, send

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-type", "date", "server",
              "proxy-connection", "te", "trailer", "upgrade"}
FUNCTION_URL_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/functions/[^/]+/urls?(\?|$)")
HTTP_API_PATH = re.compile(r"^/v2/apis(/[^/?]+)?(\?|$)")


CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
DYNAMODB_TARGET = "DynamoDB_20120810."


class AwsFront:
    def __init__(self, upstream: str, port: int = 0):
        self.upstream = upstream.rstrip("/")
        self.app_url: Optional[str] = None          # the local app's address, once it serves
        self.http_api_ids: set = set()              # the HTTP APIs whose endpoint is the app
        self.roles: dict = {}                       # access key id -> (role name, its assumed-role ARN)
        self.region = "us-east-1"
        self.clients: dict = {}                     # the clients reading the roles' policies from moto
        self.http = urllib3.PoolManager(maxsize=16)
        self.server = LocalServer(self.serve, port)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> AwsFront:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def serve(self, handler, method: str) -> None:
        denied = self.denied(handler)
        if denied is not None:
            return send(handler, 400, json.dumps(denied).encode(), {}, "application/x-amz-json-1.0")
        to_app = self.app_url is not None and handler.path.startswith("/restapis/") and REST_PREFIX in handler.path
        base = self.app_url.rstrip("/") if to_app and self.app_url else self.upstream
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        try:
            answer = self.http.request(method, base + handler.path, body=handler.body() or None, headers=headers,
                                       retries=False, redirect=False, timeout=urllib3.Timeout(connect=5, read=120))
        except urllib3.exceptions.HTTPError as exc:
            return send(handler, 502, json.dumps({"message": f"local stack: {type(exc).__name__}"}).encode())
        payload = answer.data
        if not to_app and method == "GET" and 200 <= answer.status < 300:  # moto answers GetFunctionUrlConfig 201
            payload = self.rewrite(handler.path, payload)
        passed = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        send(handler, answer.status, payload, passed, answer.headers.get("Content-Type", "application/json"))

    def denied(self, handler) -> Optional[dict]:
        """DynamoDB's AccessDeniedException for a call signed with a function role's credentials
        (what the handler runs with) that the role's policies do not allow, as IAM decides on
        AWS: the action on the table or index ARN the request names. Other callers (checker,
        the user's shell) and other services pass, as they do to moto."""
        match = CREDENTIAL.search(handler.headers.get("Authorization", ""))
        operation = handler.headers.get("X-Amz-Target", "")
        if not match or match.group(1) not in self.roles or not operation.startswith(DYNAMODB_TARGET):
            return None
        role, principal = self.roles[match.group(1)]
        action = "dynamodb:" + operation[len(DYNAMODB_TARGET):]
        try:
            body = json.loads(handler.body() or b"{}")
        except ValueError:
            return None
        documents = self.role_documents(role)
        for resource in self.resources(body, principal.split(":")[4]):
            if iam_policy.evaluate(documents, action, resource).denied:   # a condition: the benefit of the doubt
                return {"__type": "com.amazon.coral.service#AccessDeniedException",
                        "message": f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
                                   f"because no identity-based policy allows the {action} action"}
        return None

    def resources(self, body: dict, account: str) -> list:
        """The table (or index) ARNs a DynamoDB request acts on."""
        def arn(table, index=None) -> str:
            return iam_policy.table_arn(self.region, account, str(table), index)
        tables = [body["TableName"]] if body.get("TableName") else []
        tables += list(body.get("RequestItems") or {})
        tables += [operation.get("TableName") for item in body.get("TransactItems") or [] for operation in item.values()
                   if isinstance(operation, dict) and operation.get("TableName")]
        if body.get("IndexName") and body.get("TableName"):
            return [arn(body["TableName"], body["IndexName"])]
        return [arn(table) for table in tables]

    def role_documents(self, role: str) -> list:
        """(name, document) of the role's inline and attached policies, read from moto now as the
        iam check reads them (every page); a policy changed a moment ago applies to the next call."""
        from ..aws import AwsOptions
        from ..checklist import Checklist
        from ..checks.iam import role_policies
        from ..context import CheckContext
        context = CheckContext(AwsOptions(region=self.region, endpoint_url=self.upstream), [], Checklist("(local)"),
                               None, None, 0, _clients=self.clients)
        return role_policies(context, role)

    def rewrite(self, path: str, payload: bytes) -> bytes:
        if self.app_url is None or not (FUNCTION_URL_PATH.match(path) or HTTP_API_PATH.match(path)):
            return payload
        try:
            document = json.loads(payload)
        except ValueError:
            return payload
        if not isinstance(document, dict):
            return payload
        # Lambda's wire names are PascalCase, API Gateway v2's camelCase
        for item in [document, *document.get("FunctionUrlConfigs", []), *document.get("items", [])]:
            if "FunctionUrl" in item:
                item["FunctionUrl"] = self.app_url
            if "apiEndpoint" in item and item.get("apiId") in self.http_api_ids:
                item["apiEndpoint"] = self.app_url.rstrip("/")
        return json.dumps(document).encode()
