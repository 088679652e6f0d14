"""Is an AWS answer what the API promises? botocore parses whatever JSON or XML comes back into
the operation's output shape without checking types: an endpoint answering `"KeySchema": "abc"`
gives a str where every reader expects a list, and the failure would surface far away as a
TypeError. Every answer `errors.call` and `errors.pages` return is checked against the output
shape of botocore's own service model first; only types are compared (AWS's answers break the
input-side ranges botocore's ParamValidator enforces, such as NumberOfDecreasesToday 0)."""
from __future__ import annotations

import datetime
from typing import Any, Optional

PYTHON_TYPES: dict[str, Any] = {
    "structure": dict, "map": dict, "list": list, "string": str, "blob": (bytes, bytearray),
    "boolean": bool, "integer": int, "long": int, "float": (int, float), "double": (int, float),
    "timestamp": (datetime.datetime, str, int, float),
}
# strings botocore's own handlers decode after parsing (json_decode_policies: IAM's policy documents)
DECODED_BY_BOTOCORE = {"policyDocumentType"}
MAX_DEPTH = 64   # no AWS answer checker reads nests deeper: a deeper one is not what the API promises


def type_problem(value: Any, shape, path: str = "", depth: int = 0) -> Optional[str]:
    """Where the first value of the wrong type is and what it is, or None."""
    if value is None:
        return None
    if depth > MAX_DEPTH:
        return f"{path or 'the answer'} is nested deeper than {MAX_DEPTH} levels"
    expected = PYTHON_TYPES.get(shape.type_name)
    if expected is None or (shape.name in DECODED_BY_BOTOCORE and isinstance(value, (dict, list))):
        return None
    if not isinstance(value, expected) or (shape.type_name in ("integer", "long") and isinstance(value, bool)):
        return f"{path or 'the answer'} is {_kind(value)}, not {_article(shape.type_name)}"
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value and (problem := type_problem(value[name], member, _join(path, name), depth + 1)):
                return problem
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            if problem := type_problem(item, shape.member, f"{path}[{i}]", depth + 1):
                return problem
    elif shape.type_name == "map":
        for key, item in value.items():
            if problem := type_problem(item, shape.value, _join(path, str(key)[:40]), depth + 1):
                return problem
    return None


def answer_problem(response: Any, operation_model) -> Optional[str]:
    shape = operation_model.output_shape
    if shape is None or not isinstance(response, dict):
        return None
    answer = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return type_problem(answer, shape)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)


def _article(type_name: str) -> str:
    word = {"structure": "object", "map": "object", "string": "string", "list": "list", "blob": "blob"}.get(type_name,
                                                                                                    type_name)
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"
