"""What every check reads from: the target, the checklist, and AWS facts fetched once."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional

import botocore.exceptions

from .aws import AwsOptions
from .checklist import Checklist
from .errors import CheckerError, describe_aws_error


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@dataclass
class CheckContext:
    aws: AwsOptions
    tables: list
    checklist: Checklist
    function_name: Optional[str]
    base_url: Optional[str]
    since_ms: int
    command_options: str = ""          # e.g. "--env dev", repeated in remediation commands
    logs_settle: float = 0.0           # seconds to let CloudWatch ingest before counting
    _clients: dict = field(default_factory=dict)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]

    def call(self, service: str, operation: str, **params):
        """One API call; a failure becomes a one-line CheckerError naming service:operation."""
        try:
            return getattr(self.client(service), operation)(**params)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise CheckerError(describe_aws_error(exc, _api_name(operation), iam_prefix(service))) from exc

    @functools.cached_property
    def function(self) -> Optional[dict]:
        """GetFunctionConfiguration, or None when the function does not exist."""
        if not self.function_name:
            raise CheckerError("no Lambda function named: set lambda.function_name or the environment's "
                               "function_name in the checklist, or pass --function")
        try:
            return self.client("lambda").get_function_configuration(FunctionName=self.function_name)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise CheckerError(describe_aws_error(exc, "GetFunctionConfiguration", "lambda")) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise CheckerError(describe_aws_error(exc, "GetFunctionConfiguration", "lambda")) from exc


def iam_prefix(service: str) -> str:
    """The IAM action prefix of a boto3 service name (both API Gateway APIs use `apigateway`)."""
    return {"apigatewayv2": "apigateway"}.get(service, service)


def _api_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))
