"""What every check reads from: the target, the checklist, and AWS facts fetched once."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .aws import AwsOptions
from .checklist import Checklist
from .errors import CheckerError, call, expect
from .secrets import Redactor

if TYPE_CHECKING:
    from .environment import Environment


@dataclass
class CheckContext:
    aws: AwsOptions
    tables: list
    checklist: Checklist
    function_name: Optional[str]
    base_url: Optional[str]
    since_ms: int
    since_note: str = ""      # how --since was read, when it needs saying (no offset: UTC)
    logs_settle: float = 0.0           # seconds to let CloudWatch ingest before counting
    smoke: bool = False                # a smoke test: its endpoint calls must leave logs behind
    endpoints_called: bool = False     # set once an endpoint check has sent a request
    environment: Optional[Environment] = None   # where the checks look (the migrations check reads its files)
    _clients: dict = field(default_factory=dict)
    _facts: dict = field(default_factory=dict)

    @classmethod
    def of(cls, environment: Environment, function_name: Optional[str] = None, base_url: Optional[str] = None,
           since_ms: int = 0, **options) -> CheckContext:
        """The checks' view of an Environment: its function and base URL unless others are given."""
        return cls(aws=environment.aws, tables=environment.tables,
                   checklist=environment.checklist or Checklist("(no checklist)"),
                   function_name=function_name or environment.function_name,
                   base_url=base_url or environment.base_url, since_ms=since_ms, environment=environment, **options)

    def client(self, service: str, single_attempt: bool = False):
        """One client per service (and one without retries, for calls whose failure has a fallback)."""
        key = (service, single_attempt)
        if key not in self._clients:
            options = dataclasses.replace(self.aws, max_attempts=1) if single_attempt else self.aws
            self._clients[key] = options.client(service)
        return self._clients[key]

    @property
    def function_owner(self) -> str:
        """The template that declares the function (checker/iac): its fixes go into the template."""
        return self.environment.function_owner if self.environment is not None else ""

    def table_name(self, spec_name: str) -> str:
        """The environment's name (prefix/suffix applied) of a spec's TableName."""
        if self.environment is not None:
            return self.environment.table_name(spec_name)
        return next((t.name for t in self.tables if t.spec_name == spec_name), spec_name)

    def fact(self, name: str, compute):
        """A fact about the account that several kinds of check need, looked up once."""
        if name not in self._facts:
            self._facts[name] = compute()
        return self._facts[name]

    def call(self, service: str, operation: str, missing_ok: bool = False, **params):
        """One API call by its AWS name; a failure becomes a one-line CheckerError."""
        return call(self.client(service), operation, iam_prefix(service), missing_ok, **params)

    def redactor(self) -> Redactor:
        """The checklist's ${VAR} values, for text that comes back from AWS or the app."""
        redactor = Redactor()
        redactor.add_variables(self.checklist.variable_values)
        return redactor

    @property
    def logs_expected(self) -> bool:
        """A log group must exist: this smoke test has called the app."""
        return self.smoke and self.endpoints_called

    @functools.cached_property
    def function(self) -> Optional[dict]:
        """GetFunctionConfiguration, or None when the function does not exist."""
        if self.environment is not None:
            return self.environment.function(self.function_name)
        if not self.function_name:
            raise CheckerError("no Lambda function named: set lambda.function_name or the environment's "
                               "function_name in the checklist, or pass --function")
        return expect(call(self.client("lambda"), "GetFunctionConfiguration", "lambda", missing_ok=True,
                           FunctionName=self.function_name), ("FunctionArn", "Role"), "GetFunctionConfiguration",
                      "lambda")


def iam_prefix(service: str) -> str:
    """The IAM action prefix of a boto3 service name (both API Gateway APIs use `apigateway`)."""
    return {"apigatewayv2": "apigateway"}.get(service, service)
