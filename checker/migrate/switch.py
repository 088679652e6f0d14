"""The switch: point the function's bound variables from one table to another, only once its role
is proven allowed on the new table whatever it is allowed on the old, as a read-modify-write of
its whole Environment guarded by its RevisionId, then wait for the update to finish."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

from ..context import CheckContext
from ..errors import AwsError, CheckerError, call
from ..poll import REAL, Backoff, Clock, Deadline, Outcome, poll

if TYPE_CHECKING:
    from ..environment import Environment

# What an app may do on a table: the switch proves each one allowed on the source is allowed on the target.
DATA_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable")
INDEX_ACTIONS = ("dynamodb:Query", "dynamodb:Scan")
UPDATE_WAIT_SECONDS = 120
UPDATE_POLLS = Backoff(0.2, 5.0)


def bound_variables(environment: Environment, spec_name: str) -> list:
    """The function's variables the checklist binds to a spec's table."""
    return [v for v, spec in environment.bindings.items() if spec == spec_name]


def bound_to(environment: Environment, variables: list, table: str) -> bool:
    """Every one of `variables` of the function names `table` now (a switch already made: a run
    killed after it finds it so)."""
    if not variables or not environment.function_name:
        return False
    config = call(environment.aws.client("lambda"), "GetFunctionConfiguration", "lambda",
                  FunctionName=environment.function_name)
    current = (config.get("Environment") or {}).get("Variables") or {}
    return bool(variables) and all(current.get(v) == table for v in variables)


def prove_role(environment: Environment, config: dict, source_arn: str, target_arn: str, target_indexes: list) -> list:
    """The actions the function's role has on the source (table and indexes) that it lacks on the
    target (table and each of its indexes): [(action, resource)]. A conditional answer counts as
    lacking: it was not proven."""
    from ..checks.iam import evaluate_role
    ctx = CheckContext.of(environment)
    source_pairs = [(None, a, source_arn) for a in DATA_ACTIONS] + [(None, a, f"{source_arn}/index/*") for a in INDEX_ACTIONS]
    allowed = evaluate_role(ctx, config["Role"], source_pairs, None).decisions
    on_table = sorted({a for (a, r), d in allowed.items() if d.allowed and r == source_arn})
    # an index the target adds is what the app will Query: whatever index action the role has on the
    # source (its table or its indexes), it needs on every index of the target
    on_indexes = sorted({a for (a, r), d in allowed.items() if d.allowed and a in INDEX_ACTIONS})
    target_pairs = [(None, a, target_arn) for a in on_table] + [
        (None, a, f"{target_arn}/index/{index}") for index in target_indexes for a in on_indexes]
    if not target_pairs:
        return []
    decisions = evaluate_role(ctx, config["Role"], target_pairs, None).decisions
    return [(a, r) for _, a, r in target_pairs if not decisions.get((a, r)) or not decisions[(a, r)].allowed]


def switch_binding(environment: Environment, variables: list, old_name: str, new_name: str, new_table, warnings: list,
                   echo: Callable[[str], None], proven: bool = False) -> bool:
    """Point `variables` of the function from `old_name` to `new_name`: False when they already
    name it. Refuses (CheckerError) when a variable names something else, when the role is not
    proven allowed on the new table (`proven`: by `require_role` before a fence changed what the
    role may do), or when the configuration changed underneath."""
    function = environment.function_name
    if not function:
        raise CheckerError("no function to switch: set lambda.function_name or the environment's function_name")
    lam = environment.aws.client("lambda")
    config = call(lam, "GetFunctionConfiguration", "lambda", FunctionName=function)
    current = dict((config.get("Environment") or {}).get("Variables") or {})
    if all(current.get(v) == new_name for v in variables):
        return False
    others = [v for v in variables if current.get(v) not in (old_name, new_name)]
    if others:
        found = ", ".join(f"{v}={current.get(v)!r}" if current.get(v) is not None else f"{v} unset" for v in others)
        raise CheckerError(f"{function}: {found}; expected {old_name} (or {new_name}); not switched: someone changed "
                           "the binding, look before running again")
    if not proven:
        require_role(environment, config, old_name, new_name, new_table)
    updated = dict(current, **{v: new_name for v in variables})
    params: dict = {"FunctionName": function, "Environment": {"Variables": updated}}
    if config.get("RevisionId"):
        params["RevisionId"] = config["RevisionId"]
    else:
        warnings.append(f"{function}: the endpoint gives no RevisionId: the switch could not be guarded against a "
                        "concurrent change of the configuration")
    try:
        call(lam, "UpdateFunctionConfiguration", "lambda", **params)
    except AwsError as exc:
        if exc.code == "PreconditionFailedException":
            raise CheckerError(f"{function}: its configuration changed while checker switched it (RevisionId "
                               f"{config.get('RevisionId')} is no longer current); nothing switched: run again") from None
        raise
    echo(f"{function}: {', '.join(variables)} -> {new_name}; waiting for the update to finish")
    wait_updated(lam, function, warnings)
    return True


def require_role(environment: Environment, config: Optional[dict], old_name: str, new_name: str, new_table) -> None:
    """The function's role may do on `new_name` (and each index of `new_table`) what it may do on
    `old_name`, else a CheckerError with the put-role-policy that fixes it. Proven before any
    fence: a fence denies writes on the old table, and the role would then seem to need less."""
    from ..checks.iam import role_name
    function = environment.function_name
    if config is None:
        config = call(environment.aws.client("lambda"), "GetFunctionConfiguration", "lambda", FunctionName=function)
    source_arn = config["FunctionArn"].split(":function:")[0].replace(":lambda:", ":dynamodb:") + f":table/{old_name}"
    target_arn = source_arn.rsplit("/", 1)[0] + f"/{new_name}"
    lacking = prove_role(environment, config, source_arn, target_arn, list(new_table.spec.index_names)
                         if new_table is not None else [])
    if lacking:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": sorted({a for a, _ in lacking}),
                                                          "Resource": sorted({r for _, r in lacking})}]}
        raise CheckerError(f"{function}: its role {role_name(config['Role'])} may not do on {new_name} what it does on "
                           f"{old_name} ({', '.join(sorted({a for a, _ in lacking}))}); not switched. Fix: aws iam "
                           f"put-role-policy --role-name {role_name(config['Role'])} --policy-name checker-{new_name} "
                           f"--policy-document '{json.dumps(policy, separators=(',', ':'))}'")


def wait_updated(lam, function: str, warnings: list, clock: Clock = REAL) -> None:
    """Until LastUpdateStatus is Successful (Failed: an error); a backend that gives none: a warning."""
    def read() -> dict:
        return call(lam, "GetFunctionConfiguration", "lambda", FunctionName=function)

    def failed(config: dict) -> Optional[str]:
        return str(config.get("LastUpdateStatusReason", "")) if config.get("LastUpdateStatus") == "Failed" else None
    waited = poll(read, lambda config: config.get("LastUpdateStatus") in (None, "Successful"), UPDATE_POLLS,
                  Deadline(UPDATE_WAIT_SECONDS, clock=clock), lost=failed, clock=clock)
    config = waited.value or {}
    if waited.outcome is Outcome.LOST:
        raise CheckerError(f"{function}: the configuration update failed: {waited.why}")
    if not waited.done:
        raise CheckerError(f"{function}: the configuration update is still {config.get('LastUpdateStatus')} after "
                           f"{UPDATE_WAIT_SECONDS} s")
    if config.get("LastUpdateStatus") is None:
        warnings.append(f"{function}: the endpoint reports no LastUpdateStatus: the update's end was not seen")
