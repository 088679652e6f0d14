"""One error type for everything a user can fix, and the one place where botocore's exceptions
become it: a line of English for every AWS failure, for single calls and paginated ones alike.

The CLI prints `error: <message>` and exits 1 for a CheckerError; no traceback reaches a user.
Code that must act on a particular AWS error (apply backing off on LimitExceededException) reads
`AwsError.code` instead of catching botocore's exceptions itself.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Optional

THROTTLING_CODES = {
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
}


UNSUPPORTED = "UnknownOperationException"  # what DynamoDB emulators answer for an API they lack


class CheckerError(Exception):
    """A failure the user can act on; its message is the whole story, on one line."""


class Interrupted(CheckerError):
    """Ctrl-C during apply: what was sent carries on in AWS; the message names it."""

    def __init__(self, in_flight: list):
        shown = ", ".join(f"{c.table} ({c.action})" for c in in_flight) or "nothing"
        super().__init__(f"interrupted; still in flight on AWS, carrying on there: {shown}")
        self.in_flight = in_flight


def _botocore():
    """botocore's exceptions, imported when an AWS call is made (not by `checker --help`)."""
    return importlib.import_module("botocore.exceptions")


class AwsError(CheckerError):
    """An AWS call that failed: the one-line story, and the error code and AWS's own message for
    callers that decide by them ("" when the call never got an AWS answer)."""

    def __init__(self, message: str, code: str = "", aws_message: str = ""):
        super().__init__(message)
        self.code = code
        self.aws_message = aws_message

    @property
    def unreachable(self) -> bool:
        """AWS cannot be asked any more in this run: the endpoint is unreachable, or the deadline passed."""
        bex = _botocore()
        return self.code in ("DeadlineExceeded", "Unreachable") or isinstance(
            self.__cause__, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError))


def describe_aws_error(exc: Exception, action: str | None = None, service: str = "dynamodb") -> str:
    """Turn a botocore/boto3 exception into a single actionable line."""
    bex = _botocore()
    from botocore.parsers import ResponseParserError
    if isinstance(exc, bex.NoCredentialsError):
        return ("no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "pass --profile, or run `aws configure`")
    if isinstance(exc, bex.ProfileNotFound):
        return f"AWS profile not found: {exc.kwargs.get('profile')} (see ~/.aws/config)"
    if isinstance(exc, bex.NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION"
    if isinstance(exc, bex.EndpointConnectionError):
        return f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url')}: check --endpoint-url, --region and the network"
    if isinstance(exc, (bex.ConnectTimeoutError, bex.ReadTimeoutError)):
        return f"timed out talking to {exc.kwargs.get('endpoint_url')}: the endpoint is slow or unreachable"
    if isinstance(exc, bex.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = error.get("Message", "")
        operation = action or getattr(exc, "operation_name", "") or "request"
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                    "UnrecognizedClientException", "InvalidSignatureException",
                    "ExpiredTokenException"):
            return f"access denied for {service}:{operation} ({code}): {message}".rstrip(": ")
        if code == UNSUPPORTED:
            return (f"{operation} failed: this endpoint does not implement {service}:{operation} ({code}); "
                    "an emulator may lack it, AWS has it")
        if code in THROTTLING_CODES:
            return (f"throttled by AWS on {operation} after {attempts + 1} attempts ({code}); "
                    "wait and retry, or pass --retry-mode adaptive / a higher --max-attempts")
        return f"{operation} failed: {code}: {message}".rstrip(": ")
    if isinstance(exc, ResponseParserError):
        return (f"{action or 'request'}: the endpoint's answer is not what the {service} API promises "
                "(is --endpoint-url an AWS endpoint?)")
    if isinstance(exc, bex.BotoCoreError):
        text = str(exc)
        return f"AWS client error: {text if len(text) <= 500 else text[:500] + f'... ({len(text)} characters)'}"
    return str(exc)


def error_code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, _botocore().ClientError) else ""


def aws_failures() -> tuple:
    from botocore.parsers import ResponseParserError
    bex = _botocore()
    return bex.ClientError, bex.BotoCoreError, ResponseParserError


def translate(exc: Exception, operation: Optional[str], service: str) -> AwsError:
    """The AwsError for a botocore exception (chain it: `raise translate(...) from exc`)."""
    code = error_code(exc)
    aws_message = exc.response.get("Error", {}).get("Message", "") if code else ""  # type: ignore[attr-defined]
    from .text import escape_controls
    return AwsError(escape_controls(describe_aws_error(exc, operation, service)), code, aws_message)


def call(client, operation: str, service: str = "dynamodb", missing_ok: bool = False, **params):
    """Call one API operation by its AWS name (`DescribeTimeToLive`); any failure becomes a
    one-line AwsError naming `service:Operation`. With `missing_ok`, a
    ResourceNotFoundException answers None: "absent" is a finding, not an error."""
    from botocore import xform_name
    try:
        response = getattr(client, xform_name(operation))(**params)
    except aws_failures() as exc:
        if missing_ok and error_code(exc) == "ResourceNotFoundException":
            return None
        raise lost(client, translate(exc, operation, service), exc) from exc
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        raise unparsable(operation, service) from exc
    return promised(client, operation, service, response)


def unparsable(operation: str, service: str) -> AwsError:
    """botocore's parser fell over the answer (`"KeySchema": "abc"` where a list belongs): the
    answer is not what the API promises."""
    return AwsError(f"{service}:{operation}: the answer cannot be read as the API's: not what the API promises "
                    "(is --endpoint-url an AWS endpoint?)", "MalformedResponse")


def promised(client, operation: str, service: str, response):
    """The response, when its types are those the API promises (see answers.py); else one line."""
    from .answers import answer_problem
    model = getattr(getattr(client, "meta", None), "service_model", None)
    if model is None:
        return response   # a stand-in client without botocore's model (the wait tests' simulated table)
    problem = answer_problem(response, model.operation_model(operation))
    if problem:
        raise AwsError(f"{service}:{operation}: {problem}: not what the API promises (is --endpoint-url an AWS "
                       "endpoint?)", "MalformedResponse")
    return response


def lost(client, error: AwsError, cause: Exception) -> AwsError:
    """`error`, told to the client's deadline (see deadline.Deadline.guard): when it means the
    endpoint cannot be reached (after botocore's retries), the run's later calls to it fail at
    once; when the deadline passed meanwhile (its watchdog shut the connection), the error says so."""
    error.__cause__ = cause
    events = getattr(getattr(client, "meta", None), "events", None)
    replacement = events.emit_until_response("checker-call-failed", error=error)[1] if events else None
    return replacement or error


def pages(client, operation: str, service: str = "dynamodb", **params) -> Iterator[dict]:
    """The pages of a paginated operation (by its AWS name), failures translated as `call`'s."""
    from botocore import xform_name
    iterator = iter(client.get_paginator(xform_name(operation)).paginate(**params))
    while True:
        try:
            page = next(iterator)
        except StopIteration:
            return
        except aws_failures() as exc:
            raise lost(client, translate(exc, operation, service), exc) from exc
        except (AttributeError, TypeError, KeyError, IndexError) as exc:
            raise unparsable(operation, service) from exc
        yield promised(client, operation, service, page)


def expect(response: Optional[dict], keys: tuple, operation: str, service: str) -> Optional[dict]:
    """The response, if it has what the API promises; an endpoint that is not AWS but answers 200
    (an HTML page, `{}`) is an AwsError here, never an empty finding that passes a check."""
    if response is None:
        return None
    missing = [key for key in keys if not _has(response, key)]
    if missing:
        raise AwsError(f"{service}:{operation}: the answer has no {', '.join(missing)}: not what the API "
                       "promises (is --endpoint-url an AWS endpoint?)", "MalformedResponse")
    return response


def _has(document, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(document, dict) or part not in document:
            return False
        document = document[part]
    return True

