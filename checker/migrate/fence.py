"""The fence: for the cut-over, a table stops accepting the app's writes.

An online migration cannot merge two tables written at once: after the switch, invocations that
started before it still write the old table while the switched ones write the new. So the
cut-over first fences the source — an inline policy on the bound function's role that denies
every write action on that table — then drains the stream, verifies, switches, and leaves the
fence up: a straggler gets AccessDenied (an error the app sees and may retry), never a write into
a table about to be abandoned. `rollback` fences the other way.

Why the role and not the table's resource-based policy: the role is what every invocation of
the function writes with, whichever configuration it started with, and an inline policy checker
names itself is one it can remove without touching anything the team wrote (a table's resource
policy is one document: checker would have to rewrite the team's). What it does not cover:
other principals writing to the table (another function, a script, a person); stop those, or
they write into a table that is no longer the app's.

IAM is eventually consistent: a deny takes seconds to hold everywhere. The stream is the
evidence: the cut-over waits until it has been quiet for a while; writes still arriving after a
bounded settle mean the fence does not hold: it is lifted, nothing is switched, and that is said.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AwsError, CheckerError, call

if TYPE_CHECKING:
    from ..environment import Environment

# Every DynamoDB action that writes an item (TransactWriteItems is authorized as its items'
# actions on AWS; moto checks the request's own name: both are named).
WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                 "dynamodb:TransactWriteItems", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate",
                 "dynamodb:PartiQLDelete")
POLICY_PREFIX = "checker-fence-"


@dataclass(frozen=True)
class Fence:
    """A deny of writes on `table_arn` attached to `role` as the inline policy `policy`."""

    role: str
    table: str
    table_arn: str

    @property
    def policy(self) -> str:
        return (POLICY_PREFIX + self.table)[:128]

    def document(self) -> dict:
        return {"Version": "2012-10-17", "Statement": [{
            "Sid": "CheckerMigrationFence", "Effect": "Deny", "Action": list(WRITE_ACTIONS),
            "Resource": [self.table_arn, f"{self.table_arn}/index/*"]}]}

    def describe(self) -> str:
        return f"writes to {self.table} denied to the role {self.role} (inline policy {self.policy})"


def fence_for(environment: Environment, table: str, caller: str) -> Fence:
    """The fence of `table` for the environment's function: its role, the table's ARN. Refused
    when there is no function, or checker itself (`caller`, its ARN) runs as that role: it would
    fence itself out."""
    from ..checks.iam import role_name
    function = environment.function_name
    if not function:
        raise CheckerError("no function to fence: set lambda.function_name or the environment's function_name")
    config = call(environment.aws.client("lambda"), "GetFunctionConfiguration", "lambda", FunctionName=function)
    role = role_name(config["Role"])
    described = call(environment.dynamodb(), "DescribeTable", "dynamodb", TableName=table)["Table"]
    if f":assumed-role/{role}/" in caller:
        raise CheckerError(f"checker runs as {caller}, the role of {function}: a fence on that role would deny "
                           "checker's own writes; run checker with credentials of its own")
    return Fence(role, table, described["TableArn"])


def put_fence(environment: Environment, fence: Fence) -> None:
    """Attach the deny (idempotent: the same document under the same name)."""
    iam = environment.aws.client("iam")
    try:
        call(iam, "PutRolePolicy", "iam", RoleName=fence.role, PolicyName=fence.policy,
             PolicyDocument=json.dumps(fence.document()))
    except AwsError as exc:
        raise CheckerError(f"cannot fence {fence.table} ({exc}): without a fence the app could write the source "
                           "while it is switched away from it; nothing was switched") from None


def lift_fence(environment: Environment, fence: Fence) -> bool:
    """Remove checker's own inline policy (never any other): False when it was not there."""
    iam = environment.aws.client("iam")
    try:
        call(iam, "DeleteRolePolicy", "iam", RoleName=fence.role, PolicyName=fence.policy)
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            return False
        raise
    return True


def fence_of_entry(value) -> Fence | None:
    """The fence a ledger entry records ({"role", "table", "tableArn"}), or None."""
    if not isinstance(value, dict) or not value.get("role") or not value.get("table"):
        return None
    return Fence(str(value["role"]), str(value["table"]), str(value.get("tableArn") or ""))


def fence_record(fence: Fence) -> dict:
    return {"role": fence.role, "table": fence.table, "tableArn": fence.table_arn}
