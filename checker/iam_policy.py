"""Evaluate IAM policy documents for an (action, resource) pair, without AWS.

Used when neither iam:SimulatePrincipalPolicy nor iam:SimulateCustomPolicy is available (moto
implements neither, and a CI role may not be allowed to call them). It follows IAM's core rules
for identity policies: an explicit Deny wins, then any Allow, else an implicit deny;
Action/NotAction and Resource/NotResource with IAM's only wildcards `*` and `?` (anything else,
`[` included, is literal); actions match case-insensitively, resources case-sensitively.

Conditions are not evaluated, and the answer says so instead of guessing: an Allow that holds
only under a condition is CONDITIONAL_ALLOW (not counted as allowed), a Deny under a condition
is CONDITIONAL_DENY (allowed unless the condition holds, not an unconditional deny); each names
the condition keys it could not evaluate.
Permission boundaries, SCPs and session policies are out of scope. (policyuniverse parses
statements and expands actions, but answers "is this internet accessible", not "is this action on
this ARN allowed", so this module does that part.)
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote

ALLOWED = "allowed"
CONDITIONAL_ALLOW = "conditional allow"    # allowed only if conditions checker did not evaluate hold
CONDITIONAL_DENY = "conditional deny"      # allowed unless conditions checker did not evaluate hold
EXPLICIT_DENY = "explicit deny"
IMPLICIT_DENY = "no statement allows it"


@dataclass(frozen=True)
class Decision:
    reason: str              # one of ALLOWED, CONDITIONAL_ALLOW, CONDITIONAL_DENY, EXPLICIT_DENY, IMPLICIT_DENY
    statement: Optional[str] = None   # the Sid (or policy name and index) that decided
    conditions: tuple = ()            # "Operator:key" of conditions not evaluated

    @property
    def allowed(self) -> bool:
        """Certainly allowed. A conditional decision is neither allowed nor denied: it is a warning."""
        return self.reason == ALLOWED

    @property
    def conditional(self) -> bool:
        return self.reason in (CONDITIONAL_ALLOW, CONDITIONAL_DENY)

    @property
    def denied(self) -> bool:
        return self.reason in (EXPLICIT_DENY, IMPLICIT_DENY)


def parse_document(document) -> dict:
    """IAM returns documents URL-encoded as strings through some clients; boto3 usually decodes."""
    if isinstance(document, str):
        text = document if document.lstrip().startswith("{") else unquote(document)
        try:
            return json.loads(text)
        except ValueError as exc:
            from .errors import CheckerError
            from .text import clip
            raise CheckerError(f"a policy document IAM returned is not JSON ({exc}): {clip(text, 80)!r}") from None
    return document


def as_list(value) -> list:
    """A policy field that may be one value or a list of them, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def wildcard_regex(pattern: str) -> str:
    """IAM's wildcards: `*` any run of characters, `?` one character; all else literal."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z"


def _matches(patterns: Iterable[str], value: str, ignore_case: bool) -> bool:
    flags = re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
    return any(re.match(wildcard_regex(str(p)), value, flags) for p in patterns)


def condition_keys(statement: dict) -> tuple:
    """("StringEquals:aws:SourceVpce", ...) for the statement's Condition block."""
    condition = statement.get("Condition") or {}
    if not isinstance(condition, dict):
        return ("Condition",)
    return tuple(f"{operator}:{key}" for operator, keys in condition.items()
                 for key in (keys if isinstance(keys, dict) else {"?": None}))


# IAM's condition operators on strings and ARNs (ArnEquals takes wildcards as ArnLike does):
# (how a value is compared, negated)
_OPERATORS = {"stringequals": ("exact", False), "stringnotequals": ("exact", True),
              "stringequalsignorecase": ("caseless", False), "stringnotequalsignorecase": ("caseless", True),
              "stringlike": ("glob", False), "stringnotlike": ("glob", True),
              "arnequals": ("glob", False), "arnlike": ("glob", False),
              "arnnotequals": ("glob", True), "arnnotlike": ("glob", True)}


def condition_holds(condition, context: dict) -> Optional[bool]:
    """Whether a statement's Condition block holds for a request with these context keys
    ({"aws:SourceArn": ..., ...}, keys compared case-insensitively as IAM does), or None when it
    uses an operator this module does not evaluate (`ForAnyValue:`, dates, numbers, IP ranges).
    A key the request does not carry fails a positive operator and satisfies a negated one, as
    in IAM; `...IfExists` and `Null` are followed."""
    if not condition:
        return True
    if not isinstance(condition, dict):
        return None
    given = {str(k).lower(): str(v) for k, v in context.items()}
    for operator, keys in condition.items():
        if not isinstance(keys, dict):
            return None
        name = str(operator).lower()
        if_exists = name.endswith("ifexists")
        name = name.removesuffix("ifexists")
        for key, wanted in keys.items():
            value = given.get(str(key).lower())
            patterns = [str(w) for w in as_list(wanted)]
            if name == "null":
                if (value is None) != (patterns[:1] == ["true"]):
                    return False
                continue
            if name not in _OPERATORS:
                return None
            how, negated = _OPERATORS[name]
            if value is None:
                if not (if_exists or negated):
                    return False
                continue
            if how == "glob":
                matched = _matches(patterns, value, ignore_case=False)
            else:
                matched = any(p == value if how == "exact" else p.lower() == value.lower() for p in patterns)
            if matched == negated:
                return False
    return True


def _strings(value) -> list:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def grants(statement: dict, action: str, principals: tuple) -> bool:
    """A resource policy's Allow statement names this action (IAM's wildcards) for one of these
    principals (`*`, a service's name), whatever its Principal's shape (`"*"`, `{"Service": ...}`)."""
    if statement.get("Effect", "Allow") != "Allow":
        return False
    if not _matches(_strings(statement.get("Action")), action, ignore_case=True):
        return False
    return any(p in principals for p in _strings(statement.get("Principal")))


def api_gateway_context(source_arn: str) -> dict:
    """The condition keys of API Gateway's call to Lambda from this execute-api ARN."""
    parts = source_arn.split(":")
    return {"aws:SourceArn": source_arn, "aws:SourceAccount": parts[4] if len(parts) > 5 else ""}


def resource_policy_allows(statements: list, action: str, principals: tuple, context: dict) -> Optional[bool]:
    """Whether a Lambda function's resource policy lets these principals call `action` with these
    condition keys: True, False, or None when only a statement whose condition this module does
    not evaluate could (Lambda's resource policies hold Allow statements only)."""
    verdicts = [condition_holds(s.get("Condition"), context) for s in statements if grants(s, action, principals)]
    return True if True in verdicts else None if None in verdicts else False


def statements(documents: Iterable[tuple]) -> list:
    """(label, statement) for every statement of every (policy name, document)."""
    out = []
    for name, document in documents:
        for i, statement in enumerate(as_list(parse_document(document).get("Statement"))):
            out.append((statement.get("Sid") or f"{name}[{i}]", statement))
    return out


def applies(statement: dict, action: str, resource: str) -> bool:
    if "Action" in statement:
        action_ok = _matches(as_list(statement["Action"]), action, ignore_case=True)
    else:
        action_ok = not _matches(as_list(statement.get("NotAction")), action, ignore_case=True)
    if "Resource" in statement:
        resource_ok = _matches(as_list(statement["Resource"]), resource, ignore_case=False)
    else:
        resource_ok = not _matches(as_list(statement.get("NotResource")), resource, ignore_case=False)
    return action_ok and resource_ok


def evaluate(documents: Iterable[tuple], action: str, resource: str) -> Decision:
    allow = conditional_allow = conditional_deny = None
    for label, statement in statements(documents):
        if not applies(statement, action, resource):
            continue
        conditions = condition_keys(statement)
        if statement.get("Effect") == "Deny":
            if not conditions:
                return Decision(EXPLICIT_DENY, label)
            conditional_deny = conditional_deny or Decision(CONDITIONAL_DENY, label, conditions)
        elif statement.get("Effect") == "Allow":
            if not conditions:
                allow = allow or Decision(ALLOWED, label)
            else:
                conditional_allow = conditional_allow or Decision(CONDITIONAL_ALLOW, label, conditions)
    if allow and conditional_deny:
        return conditional_deny
    return allow or conditional_allow or Decision(IMPLICIT_DENY)


def broad_grants(documents: Iterable[tuple], service: str = "dynamodb") -> list:
    """Allow statements granting every action of the service, or on every resource."""
    found = []
    for label, statement in statements(documents):
        if statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement.get("Action"))
        touches_service = ("NotAction" in statement
                           or any(a == "*" or a.lower().startswith(f"{service}:") for a in actions))
        if not touches_service:
            continue
        if "NotAction" in statement:
            found.append(f"{label}: NotAction allows everything else")
        wide_actions = [a for a in actions if a == "*" or a.lower() == f"{service}:*"]
        if wide_actions:
            found.append(f"{label}: Action {', '.join(wide_actions)}")
        if "*" in as_list(statement.get("Resource")) or "NotResource" in statement:
            found.append(f"{label}: Resource \"*\"" if "Resource" in statement else f"{label}: NotResource")
    return found


# -- the policy the checklist means ------------------------------------------------------

def table_arn(region: str, account: str, table: str, index: Optional[str] = None) -> str:
    arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def environment_table_name(tables: list, spec_name: str) -> str:
    """The environment's name (prefix/suffix applied) of a spec's TableName."""
    return next((t.name for t in tables if t.spec_name == spec_name), spec_name)


def required_pairs(permissions, tables: list, region: str, account: str) -> list:
    """(permission, action, resource ARN) for everything the checklist says the app uses."""
    pairs = []
    for permission in permissions:
        arn = table_arn(region, account, environment_table_name(tables, permission.table), permission.index)
        pairs += [(permission, action, f"{arn}/stream/*" if is_stream_action(action) else arn)
                  for action in permission.actions]
    return pairs


def is_stream_action(action: str) -> bool:
    from .iam_actions import STREAM_ACTIONS
    return action.split(":", 1)[-1] in STREAM_ACTIONS


def least_privilege_policy(permissions, tables: list, region: str, account: str, leave_out=()) -> dict:
    """The identity policy granting exactly the checklist's permissions on this environment's
    table and index ARNs (minus any (action, spec table) in `leave_out`), one statement an ARN."""
    by_arn: dict = {}
    for permission, action, arn in required_pairs(permissions, tables, region, account):
        if (action, permission.table) not in leave_out and action not in by_arn.setdefault(arn, []):
            by_arn[arn].append(action)
    statements = [{"Sid": _sid(arn), "Effect": "Allow", "Action": sorted(actions), "Resource": arn}
                  for arn, actions in by_arn.items() if actions]
    return {"Version": "2012-10-17", "Statement": statements}


def _sid(arn: str) -> str:
    """A statement id from a table/index ARN: IAM allows only letters and digits."""
    name = arn.split(":table/", 1)[1]
    return "".join(part[:1].upper() + part[1:] for part in name.replace("/index/", " index ").replace("-", " ")
                   .replace("_", " ").replace(".", " ").split())
