"""The `lambda` and `bindings` checks: the function exists, its required environment variables are
set, and the variables that name tables hold this environment's table names.

Environment variable VALUES are never read into a result: only names and whether each is set.
"""
from __future__ import annotations

from ..context import CheckContext
from ..results import CheckResult, Status


def function_missing(ctx: CheckContext, kind: str) -> CheckResult:
    """A check that needs the function could not look: an error, never a skip that reads as green."""
    return CheckResult(f"{kind}:function", kind, Status.ERROR, f"not checked: function {ctx.function_name} does not exist",
                       remediation="deploy the function first")


def check_function(ctx: CheckContext, log=None) -> list:
    config = ctx.function
    if config is None:
        return [CheckResult("lambda:function", "lambda", Status.FAIL, f"function {ctx.function_name} does not exist",
                            expected=f"Lambda function {ctx.function_name} in {ctx.aws.region or 'the default region'}",
                            found="ResourceNotFoundException",
                            remediation="deploy the function (e.g. `serverless deploy`), then run `checker check` again")]
    results = [CheckResult("lambda:function", "lambda", Status.PASS, f"function {ctx.function_name} exists",
                           found=f"{config.get('Runtime', 'container image')}, state {config.get('State', 'unknown')}")]
    variables = (config.get("Environment") or {}).get("Variables") or {}
    for name in ctx.checklist.required_env:
        present = name in variables
        empty = present and not str(variables[name]).strip()
        status = Status.PASS if present and not empty else Status.FAIL
        found = "set" if status == Status.PASS else ("set but empty" if empty else "not set")
        results.append(CheckResult(
            f"lambda:env:{name}", "lambda", status, f"environment variable {name} is {found}",
            expected="set and non-empty (value not shown)", found=found,
            remediation="" if status == Status.PASS else
            f"aws lambda update-function-configuration --function-name {ctx.function_name} "
            f"--environment 'Variables={{...existing...,{name}=<value>}}' (keep the other variables)"))
    return results


def check_bindings(ctx: CheckContext, log=None) -> list:
    """Each bound variable must hold the environment's name of its table. Table names are not
    secrets, so these values (and only these) are read and shown."""
    if not ctx.checklist.bindings:
        return [CheckResult("bindings", "bindings", Status.SKIP, "no table bindings in the checklist (lambda.bindings)")]
    config = ctx.function
    if config is None:
        return [function_missing(ctx, "bindings")]
    variables = (config.get("Environment") or {}).get("Variables") or {}
    results = []
    for variable, spec_name in ctx.checklist.bindings.items():
        expected = ctx.table_name(spec_name)
        value = variables.get(variable)
        check_id = f"bindings:{variable}"
        if value == expected:
            results.append(CheckResult(check_id, "bindings", Status.PASS, f"{variable} names table {expected}",
                                       expected=expected, found=value))
            continue
        found = "not set" if value is None else repr(value)
        results.append(CheckResult(
            check_id, "bindings", Status.FAIL,
            f"{variable} is {found}, but this environment's {spec_name} table is {expected}",
            expected=f"{variable}={expected}", found=found,
            remediation=f"aws lambda update-function-configuration --function-name {ctx.function_name} "
                        f"--environment 'Variables={{...existing...,{variable}={expected}}}' (keep the other variables)"))
    return results
