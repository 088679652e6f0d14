"""The `lambda` and `bindings` checks: the function exists, its required environment variables are
set, and the variables that name tables hold this environment's table names.

Environment variable VALUES are never read into a result: only names and whether each is set.
"""
from __future__ import annotations

from ..checklist import TABLE_NAME
from ..context import CheckContext
from ..fixes import SKELETON, aws_command, in_template, migrate_command, placeholder, set_variables
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
                            remediation="deploy the function (e.g. `serverless deploy`), then run",
                            checker_command="check")]
    variables = (config.get("Environment") or {}).get("Variables") or {}
    return ([function_result(ctx, config)]
            + [required_variable(ctx, name, variables) for name in ctx.checklist.required_env]
            + [variable_rule(ctx, name, rule, variables) for name, rule in ctx.checklist.env_rules.items()])


def function_result(ctx: CheckContext, config: dict) -> CheckResult:
    """State Active and the last update not Failed, always; handler and runtime when stated."""
    wanted = {"State": "Active"}
    wanted.update({field: value for field, value in (("Handler", ctx.checklist.handler),
                                                      ("Runtime", ctx.checklist.runtime)) if value})
    found = {field: config.get(field) for field in ("State", "LastUpdateStatus", "Handler", "Runtime")}
    wrong = [f"{field} is {found[field] or 'not given'}, expected {value}" for field, value in wanted.items()
             if found[field] != value]
    if found["LastUpdateStatus"] == "Failed":
        wrong.append(f"the last update failed ({config.get('LastUpdateStatusReason') or 'no reason given'})")
    shown = ", ".join(f"{k} {v}" for k, v in found.items() if v)
    expected = ", ".join(f"{k} {v}" for k, v in wanted.items()) + ", last update not Failed"
    if wrong:
        return CheckResult("lambda:function", "lambda", Status.FAIL, f"function {ctx.function_name}: {'; '.join(wrong)}",
                           expected=expected, found=shown,
                           remediation="read why: " + aws_command(ctx.aws, "lambda", "get-function-configuration",
                                                                 "--function-name", ctx.function_name or ""))
    return CheckResult("lambda:function", "lambda", Status.PASS, f"function {ctx.function_name} exists",
                       expected=expected, found=shown)


def required_variable(ctx: CheckContext, name: str, variables: dict) -> CheckResult:
    present = name in variables
    empty = present and not str(variables[name]).strip()
    status = Status.PASS if present and not empty else Status.FAIL
    found = "set" if status == Status.PASS else ("set but empty" if empty else "not set")
    return CheckResult(
        f"lambda:env:{name}", "lambda", status, f"environment variable {name} is {found}",
        expected="set and non-empty (value not shown)", found=found,
        remediation="" if status == Status.PASS else
        in_template(ctx.function_owner, f"give the function's Environment.Variables {name}") if ctx.function_owner else
        f"{SKELETON} (the other variables kept): "
        + set_variables(ctx.aws, ctx.function_name or "", {name: placeholder(f"the value of {name}")}))


def variable_rule(ctx: CheckContext, name: str, rule: dict, variables: dict) -> CheckResult:
    """`absent: true` or `not_in: [...]`, compared without ever showing the value."""
    check_id = f"lambda:env-rule:{name}"
    if rule.get("absent"):
        expected, broken = "not set", name in variables
        found = "set (value not shown)" if broken else "not set"
    else:
        forbidden = [str(v) for v in rule.get("not_in") or ()]
        expected = f"not one of {', '.join(forbidden)} (its value is never shown)"
        broken = name in variables and str(variables[name]) in forbidden
        found = ("set to a forbidden value" if broken else "set to an allowed value") if name in variables else "not set"
    status = Status.FAIL if broken else Status.PASS
    return CheckResult(check_id, "lambda", status, f"environment variable {name} is {found}",
                       expected=expected, found=found,
                       remediation="" if not broken else
                       f"remove {name} from the function's variables or give it another value, in the deploy "
                       "that sets them (UpdateFunctionConfiguration replaces them all: keep the others)")


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
        if value is None:
            found, said = "not set", f"{variable} is not set"
        elif TABLE_NAME.fullmatch(value) and spec_name in value:   # another environment's name of the table
            found, said = repr(value), f"{variable} is {value!r}"
        else:   # not a name of this table: it may be anything, a secret included
            found = "a value that is not a name of this table (not shown)"
            said = f"{variable} holds a value that is not this environment's name of {spec_name} (not shown)"
        results.append(CheckResult(
            check_id, "bindings", Status.FAIL,
            f"{said}, but this environment's {spec_name} table is {expected}",
            expected=f"{variable}={expected}", found=found,
            **binding_fix(ctx, variable, spec_name, expected)))
    return results


def binding_fix(ctx: CheckContext, variable: str, spec_name: str, live_name: str) -> dict:
    """The command that binds the variable to the table, the other variables kept; for the
    target of a pending migration (which may not exist yet) the migration, which switches it."""
    table = next((t for t in ctx.tables if t.spec_name == spec_name), None)
    if table is not None and table.migrate_from:
        return {"remediation": f"{live_name} is the target of a migration from {table.migrate_from}, which switches "
                               f"{variable} once the copy is proven: run",
                "checker_command": migrate_command(table)}
    if ctx.function_owner:
        return {"remediation": in_template(ctx.function_owner,
                                           f"set {variable} to !Ref {spec_name} in the function's Environment")}
    return {"remediation": "the other variables kept: "
                           + set_variables(ctx.aws, ctx.function_name or "", {variable: live_name})}
