"""Evaluate IAM policy documents for an (action, resource) pair, without AWS.

Used when iam:SimulatePrincipalPolicy is not available (moto does not implement it, and a CI
role may not be allowed to call it). It follows IAM's core rules for identity policies: an
explicit Deny wins, then any Allow, else an implicit deny; Action/NotAction and
Resource/NotResource with `*` and `?` wildcards; actions match case-insensitively, resources
case-sensitively. Conditions are not evaluated: a conditional Allow is reported as such.
Permission boundaries, SCPs and session policies are out of scope. (policyuniverse parses
statements and expands actions, but answers "is this internet accessible", not "is this action on
this ARN allowed", so this module does that part.)
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Iterable, Optional
from urllib.parse import unquote


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str              # "allowed", "explicit deny", "no statement allows it"
    statement: Optional[str] = None   # the Sid (or policy name and index) that decided
    conditional: bool = False


def parse_document(document) -> dict:
    """IAM returns documents URL-encoded as strings through some clients; boto3 usually decodes."""
    if isinstance(document, str):
        text = document if document.lstrip().startswith("{") else unquote(document)
        return json.loads(text)
    return document


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches(patterns: Iterable[str], value: str, ignore_case: bool) -> bool:
    for pattern in patterns:
        regex = fnmatch.translate(pattern)  # '*' and '?' as IAM means them; no [] in ARNs/actions
        if re.match(regex, value, re.IGNORECASE if ignore_case else 0):
            return True
    return False


def statements(documents: Iterable[tuple]) -> list:
    """(label, statement) for every statement of every (policy name, document)."""
    out = []
    for name, document in documents:
        for i, statement in enumerate(_as_list(parse_document(document).get("Statement"))):
            out.append((statement.get("Sid") or f"{name}[{i}]", statement))
    return out


def applies(statement: dict, action: str, resource: str) -> bool:
    if "Action" in statement:
        action_ok = _matches(_as_list(statement["Action"]), action, ignore_case=True)
    else:
        action_ok = not _matches(_as_list(statement.get("NotAction")), action, ignore_case=True)
    if "Resource" in statement:
        resource_ok = _matches(_as_list(statement["Resource"]), resource, ignore_case=False)
    else:
        resource_ok = not _matches(_as_list(statement.get("NotResource")), resource, ignore_case=False)
    return action_ok and resource_ok


def evaluate(documents: Iterable[tuple], action: str, resource: str) -> Decision:
    allow = None
    for label, statement in statements(documents):
        if not applies(statement, action, resource):
            continue
        if statement.get("Effect") == "Deny":
            return Decision(False, "explicit deny", label)
        if statement.get("Effect") == "Allow" and (allow is None or allow.conditional):
            allow = Decision(True, "allowed", label, conditional=bool(statement.get("Condition")))
    return allow or Decision(False, "no statement allows it")


def broad_grants(documents: Iterable[tuple], service: str = "dynamodb") -> list:
    """Allow statements granting every action of the service, or on every resource."""
    found = []
    for label, statement in statements(documents):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        touches_service = ("NotAction" in statement
                           or any(a == "*" or a.lower().startswith(f"{service}:") for a in actions))
        if not touches_service:
            continue
        if "NotAction" in statement:
            found.append(f"{label}: NotAction allows everything else")
        wide_actions = [a for a in actions if a == "*" or a.lower() == f"{service}:*"]
        if wide_actions:
            found.append(f"{label}: Action {', '.join(wide_actions)}")
        if "*" in _as_list(statement.get("Resource")) or "NotResource" in statement:
            found.append(f"{label}: Resource \"*\"" if "Resource" in statement else f"{label}: NotResource")
    return found
