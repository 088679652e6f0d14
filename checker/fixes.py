"""Fix lines that run as printed: `aws ...` commands carrying the run's region, profile and
endpoint, every value quoted for a POSIX shell, and the read-modify-write of a function's
variables that prints none of them.

A value only the user knows (a secret variable, an item's attributes) is a visibly marked
placeholder `<...>` in a line that says it is a skeleton; everything checker knows is filled in.
"""
from __future__ import annotations

import hashlib
import json
import shlex
from typing import Optional

from .aws import AwsOptions
from .secrets import masked_url

SKELETON = "a skeleton: replace each <...> first, then run"


def placeholder(what: str) -> str:
    return f"<{what}>"


def aws_command(aws: Optional[AwsOptions], service: str, operation: str, *arguments: str) -> str:
    """`aws SERVICE OPERATION ARGS` acting where the run did (--region, --profile, --endpoint-url:
    the profile or endpoint of a local stack would otherwise be lost on paste). A role the run
    assumed (role_arn) has no AWS CLI flag: the user's profile for it is theirs to pick."""
    words = ["aws", service, operation, *arguments]
    if aws is not None:
        for flag, value in (("--region", aws.region), ("--profile", aws.profile),
                            ("--endpoint-url", masked_url(aws.endpoint_url) if aws.endpoint_url else None)):
            if value:
                words += [flag, value]
    return " ".join(shlex.quote(word) for word in words)


def set_variables(aws: Optional[AwsOptions], function_name: str, variables: dict) -> str:
    """Set these variables of the function and keep the others: UpdateFunctionConfiguration
    replaces the whole environment, so the current one is read and merged (a JMESPath `merge`
    in the AWS CLI's own --query), never printed; then the update is waited for (a second
    update before it ends is refused with ResourceConflictException)."""
    literal = json.dumps(variables, separators=(",", ":")).replace("`", "\\`")
    query = f"{{Variables: merge(Environment.Variables || `{{}}`, `{literal}`)}}"
    read = aws_command(aws, "lambda", "get-function-configuration", "--function-name", function_name,
                       "--query", query, "--output", "json")
    update = aws_command(aws, "lambda", "update-function-configuration", "--function-name", function_name,
                         "--query", "LastUpdateStatus", "--output", "text")
    wait = aws_command(aws, "lambda", "wait", "function-updated", "--function-name", function_name)
    return f'{update} --environment "$({read})" && {wait}'


def statement_id(prefix: str, *parts: str) -> str:
    """A resource-policy statement id of its own for what it allows ([A-Za-z0-9_-], at most 100):
    a second fix never collides with the first."""
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def migrate_command(table) -> str:
    """The checker command (options aside) that runs the migration making this ExpectedTable:
    online when it catches up from a stream, else --offline (the app's writes to the source
    refused while it copies: what the operator chose by not declaring `catch_up: stream`)."""
    return "migrate" if table.catch_up == "stream" else "migrate --offline"


def in_template(owner: str, change: str) -> str:
    """The fix of something a template owns (checker/iac): the change made in the template, then
    its deploy; an `aws` line would make the function or its role drift from the template."""
    return f"{change} in {owner}, then deploy the template (it owns the function and its role: an out-of-band aws " \
           "command would drift from it)"
