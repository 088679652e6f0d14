"""moto's server with IAM authorization that holds at DynamoDB's table level.

moto evaluates identity policies once its IAM authorization is on (`/moto-api/reset-auth`), but
it hands the evaluator the resource "*" for DynamoDB, so a statement naming a table's ARN never
applies: an allow on one table allows nothing, a deny on one table denies nothing. This server
gives the evaluator the request's table ARN (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`, the
first table a batch or a transaction names), which is what AWS authorizes against. Everything
else is moto's own: signatures, access keys, sts:AssumeRole sessions, Allow/Deny evaluation.

    python -m tests.moto_iam_server   # prints the port it listens on, then serves until killed
"""
from __future__ import annotations

import sys
import threading


def table_of(params: dict) -> str:
    if params.get("TableName"):
        return str(params["TableName"])
    for name in (params.get("RequestItems") or {}):
        return str(name)
    for item in params.get("TransactItems") or []:
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("TableName"):
                return str(operation["TableName"])
    return ""


def patch() -> None:
    """DynamoDB authorized at its tables; the other services (Lambda, IAM, STS, streams) not at
    all: the suite proves who may write which table, and moto's signature check of Lambda's
    REST requests fails on valid signatures."""
    from moto.core.responses import BaseResponse
    from moto.dynamodb.responses import DynamoHandler

    def _determine_resource(self) -> str:
        table = table_of(getattr(self, "body", None) if isinstance(getattr(self, "body", None), dict) else {})
        return f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}" if table else "*"
    DynamoHandler._determine_resource = _determine_resource   # type: ignore[attr-defined]
    authorize = BaseResponse._authenticate_and_authorize_normal_action

    def only_dynamodb(self, resource: str = "*") -> None:
        if isinstance(self, DynamoHandler):
            authorize(self, resource)
    BaseResponse._authenticate_and_authorize_normal_action = only_dynamodb   # type: ignore[method-assign]


def main() -> None:
    patch()
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
