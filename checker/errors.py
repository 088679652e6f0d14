"""One error type for everything a user can fix, and one line of English for every AWS failure.

The CLI prints `error: <message>` and exits 1 for a CheckerError; no traceback reaches a user.
"""
from __future__ import annotations

import botocore.exceptions as bex
from botocore import xform_name

THROTTLING_CODES = {
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
}


class CheckerError(Exception):
    """A failure the user can act on; its message is the whole story, on one line."""


def describe_aws_error(exc: Exception, action: str | None = None, service: str = "dynamodb") -> str:
    """Turn a botocore/boto3 exception into a single actionable line."""
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
        if code in THROTTLING_CODES:
            return (f"throttled by AWS on {operation} after {attempts + 1} attempts ({code}); "
                    "wait and retry, or pass --retry-mode adaptive / a higher --max-attempts")
        return f"{operation} failed: {code}: {message}"
    if isinstance(exc, bex.BotoCoreError):
        return f"AWS client error: {exc}"
    return str(exc)


def error_code(exc: bex.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def call(client, operation: str, service: str = "dynamodb", missing_ok: bool = False, **params):
    """Call one API operation by its AWS name (`DescribeTimeToLive`); any failure becomes a
    one-line CheckerError naming `service:Operation`. With `missing_ok`, a
    ResourceNotFoundException answers None: "absent" is a finding, not an error."""
    try:
        return getattr(client, xform_name(operation))(**params)
    except bex.ClientError as exc:
        if missing_ok and error_code(exc) == "ResourceNotFoundException":
            return None
        raise CheckerError(describe_aws_error(exc, operation, service)) from exc
    except bex.BotoCoreError as exc:
        raise CheckerError(describe_aws_error(exc, operation, service)) from exc
