"""The `iam` check: does the function's role allow the DynamoDB actions the app uses, on each
table and index ARN? And the least-privilege policy that would make it so (`checker iam-policy`).

Who decides, in this order, and the result says which:
1. iam:SimulatePrincipalPolicy on the role (AWS evaluates everything it knows of the role);
2. where that is refused or not implemented, iam:SimulateCustomPolicy with the role's own policy
   documents (identity policies only);
3. else checker's own evaluator (checker/iam_policy.py), which does not evaluate conditions.

A decision that depends on a condition nobody evaluated is a warning naming the condition, never
a pass; a conditional Deny is reported as such, not as an unconditional deny.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

from .. import iam_policy
from ..context import CheckContext
from ..errors import AwsError, pages
from ..fixes import aws_command, in_template, statement_id
from ..iam_policy import (
    ALLOWED,
    CONDITIONAL_ALLOW,
    CONDITIONAL_DENY,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Decision,
    as_list,
    required_pairs,
)
from ..results import CheckResult, Status
from .function import function_missing

SIMULATOR_FAILURES = (AwsError, NotImplementedError)


def role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def role_policies(ctx: CheckContext, role: str) -> list:
    """(policy name, document) of every inline and attached managed policy of the role."""
    iam = ctx.client("iam")
    documents = []
    for page in pages(iam, "ListRolePolicies", "iam", RoleName=role):
        for name in page["PolicyNames"]:
            documents.append((name, ctx.call("iam", "GetRolePolicy", RoleName=role, PolicyName=name)["PolicyDocument"]))
    for page in pages(iam, "ListAttachedRolePolicies", "iam", RoleName=role):
        for attached in page["AttachedPolicies"]:
            policy = ctx.call("iam", "GetPolicy", PolicyArn=attached["PolicyArn"])["Policy"]
            version = ctx.call("iam", "GetPolicyVersion", PolicyArn=attached["PolicyArn"],
                               VersionId=policy["DefaultVersionId"])["PolicyVersion"]
            documents.append((attached["PolicyName"], version["Document"]))
    return documents


def simulator_decision(result: dict) -> Decision:
    """One EvaluationResult of the IAM policy simulator as a Decision. Context keys the simulator
    was not given make its answer depend on conditions: said, not guessed."""
    missing = tuple(result.get("MissingContextValues") or ())
    statement = next((s.get("SourcePolicyId") for s in result.get("MatchedStatements") or []), None)
    verdict = result.get("EvalDecision")
    if verdict == "allowed":
        return Decision(CONDITIONAL_ALLOW if missing else ALLOWED, statement, missing)
    if verdict == "explicitDeny":
        return Decision(CONDITIONAL_DENY if missing else EXPLICIT_DENY, statement, missing)
    return Decision(CONDITIONAL_ALLOW if missing else IMPLICIT_DENY, statement, missing)


def simulate(iam, operation: str, pairs: list, **source) -> dict:
    """{(action, resource): Decision} from one of the simulator's operations, one call per ARN."""
    decisions = {}
    for resource in sorted({r for _, _, r in pairs}):
        actions = sorted({a for _, a, r in pairs if r == resource})
        for page in pages(iam, operation, "iam", ActionNames=actions, ResourceArns=[resource], **source):
            for result in page["EvaluationResults"]:
                decisions[(result["EvalActionName"], resource)] = simulator_decision(result)
    return decisions


def failure_reason(exc: Exception) -> str:
    if isinstance(exc, AwsError) and exc.code:
        return exc.code
    return "no usable answer (not implemented by this endpoint?)"


@dataclass(frozen=True)
class Evaluation:
    decisions: dict      # (action, resource) -> Decision
    method: str          # who decided, and why not the ones before


def evaluate_role(ctx: CheckContext, role_arn: str, pairs: list, documents: Optional[list]) -> Evaluation:
    # One attempt only: where a simulator is missing or refused, the next way answers at once
    # instead of after botocore's retries of a 500.
    iam = ctx.client("iam", single_attempt=True)
    tried = []
    try:
        return Evaluation(simulate(iam, "SimulatePrincipalPolicy", pairs, PolicySourceArn=role_arn),
                          "iam:SimulatePrincipalPolicy")
    except SIMULATOR_FAILURES as exc:
        tried.append(f"SimulatePrincipalPolicy: {failure_reason(exc)}")
    if documents is None:
        documents = role_policies(ctx, role_name(role_arn))
    policy_inputs = [json.dumps(iam_policy.parse_document(d)) for _, d in documents]
    if policy_inputs:
        try:
            decisions = simulate(iam, "SimulateCustomPolicy", pairs, PolicyInputList=policy_inputs)
            return Evaluation(decisions, f"iam:SimulateCustomPolicy with the role's {len(documents)} "
                                         f"policies ({'; '.join(tried)})")
        except SIMULATOR_FAILURES as exc:
            tried.append(f"SimulateCustomPolicy: {failure_reason(exc)}")
    decisions = {(a, r): iam_policy.evaluate(documents, a, r) for _, a, r in pairs}
    return Evaluation(decisions, f"the role's policies, evaluated by checker, conditions not evaluated "
                                 f"({'; '.join(tried)})")


def describe(action: str, resource: str, decision: Decision) -> str:
    where = f" in {decision.statement}" if decision.statement else ""
    conditions = f" on {', '.join(decision.conditions)}" if decision.conditions else ""
    return f"{action} on {resource} ({decision.reason}{where}{conditions})"


def following_bindings(ctx: CheckContext, config: dict) -> list:
    """The checklist's permissions, each on the table the app uses now: a permission on a table
    migration's source moves to its target once the function's bound variables name the target
    (the migration switched; the source is fenced, and checking it would check what the app no
    longer uses)."""
    import dataclasses
    variables = (config.get("Environment") or {}).get("Variables") or {}
    moved: dict = {}
    for table in ctx.tables:
        bound = [v for v, spec in ctx.checklist.bindings.items() if spec == table.spec_name]
        if table.migrate_from and bound and all(variables.get(v) == table.name for v in bound):
            moved[table.migrate_from] = table.spec_name
    return [dataclasses.replace(p, table=moved[ctx.table_name(p.table)]) if ctx.table_name(p.table) in moved else p
            for p in ctx.checklist.permissions]


def check_iam(ctx: CheckContext, log=None) -> list:
    if ctx.function is None:
        return [function_missing(ctx, "iam")]
    config = ctx.function
    role_arn = config["Role"]
    role = role_name(role_arn)
    arn_parts = config["FunctionArn"].split(":")
    region, account = arn_parts[3], arn_parts[4]
    permissions = following_bindings(ctx, config)
    pairs = required_pairs(permissions, ctx.tables, region, account)
    documents = role_policies(ctx, role) if ctx.checklist.warn_broad_grants else None
    evaluation = evaluate_role(ctx, role_arn, pairs, documents)
    results = []
    for permission in permissions:
        mine = [(a, r, evaluation.decisions.get((a, r), Decision(IMPLICIT_DENY))) for p, a, r in pairs
                if p is permission]
        table = ctx.table_name(permission.table) + (
            f" index {permission.index}" if permission.index else "")
        check_id = f"iam:{permission.label}"
        denied = [(a, r, d) for a, r, d in mine if d.denied]
        unsure = [(a, r, d) for a, r, d in mine if d.conditional]
        if denied:
            policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": sorted({a for a, _, _ in denied}),
                "Resource": sorted({r for _, r, _ in denied})}]}
            results.append(CheckResult(
                check_id, "iam", Status.FAIL, f"role {role} lacks {len(denied)} permission(s) on {table}",
                expected=", ".join(permission.actions) + f" on {table}",
                found="denied: " + "; ".join(describe(a, r, d) for a, r, d in denied + unsure)
                      + f" [{evaluation.method}]",
                remediation=grant_fix(ctx, role, permission.label, policy)))
        elif unsure:
            results.append(CheckResult(
                check_id, "iam", Status.WARN, f"role {role} may use {table} only if conditions hold that were not evaluated",
                expected=", ".join(permission.actions) + f" on {table}, unconditionally",
                found="; ".join(describe(a, r, d) for a, r, d in unsure) + f" [{evaluation.method}]",
                remediation="check the named conditions hold for the function's requests"))
        else:
            results.append(CheckResult(check_id, "iam", Status.PASS, f"role {role} may use {table}",
                                       found=f"{len(mine)} action/resource pairs allowed [{evaluation.method}]"))
    if documents is not None:
        results.append(broad_grants_result(role, documents))
    return results


def broad_grants_result(role: str, documents: list) -> CheckResult:
    broad = iam_policy.broad_grants(documents)
    return CheckResult(
        "iam:broad-grants", "iam", Status.WARN if broad else Status.PASS,
        f"role {role} has grants broader than needed" if broad else f"role {role} grants no wildcard DynamoDB access",
        expected="DynamoDB actions listed one by one, on the table and index ARNs",
        found="; ".join(broad) or "none",
        remediation="replace dynamodb:* and Resource \"*\" with the actions and ARNs the app uses, which this "
                    "prints" if broad else "", checker_command="iam-policy" if broad else "")


def grant_fix(ctx: CheckContext, role: str, label: str, policy: dict) -> str:
    """PutRolePolicy of exactly the missing grants, as an inline policy named for them: a
    policy of the same name is replaced, so the name carries a digest of its document and a
    second fix never takes away what the first one granted."""
    if ctx.function_owner:
        actions = sorted({a for s in policy.get("Statement", []) for a in as_list(s.get("Action"))})
        return in_template(ctx.function_owner, f"grant {', '.join(actions)} ({label}) to the function's role (a policy "
                                               "statement, or a SAM policy template such as DynamoDBCrudPolicy)")
    document = json.dumps(policy, separators=(",", ":"))
    name = statement_id(f"checker-{re.sub(r'[^A-Za-z0-9+=,.@_-]', '-', label)}"[:100], document)
    return aws_command(ctx.aws, "iam", "put-role-policy", "--role-name", role, "--policy-name", name,
                       "--policy-document", document)
