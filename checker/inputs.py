"""Reading a user's files without trusting them: bounded in time and memory, every problem one line.

A spec or checklist must be a regular file (a FIFO or /dev/zero would block or never end), of at
most MAX_BYTES, UTF-8. JSON and YAML are parsed strictly: a key given twice is an error (a silent
"last one wins" hides a mistake), NaN and Infinity are not numbers here, nesting is bounded, and a
YAML document may not expand itself through aliases (a "billion laughs" file is 1 KB).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_ALIASES = 100
JSON_TYPES = (dict, list, str, int, float, bool, type(None))
# what YAML makes of some unquoted scalars and tags, which no request can carry
NOT_JSON = {datetime.date: "a YAML date", datetime.datetime: "a YAML timestamp", bytes: "YAML binary (!!binary)",
            set: "a YAML set (!!set)"}


class InputError(ValueError):
    """Why a file cannot be read as a document: (where, message)."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where
        self.message = message


def read_text(path: Path) -> str:
    """The text of a regular file of at most MAX_BYTES; InputError otherwise."""
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError("$", "not a regular file")
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError("$", f"cannot read file: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise InputError("$", f"larger than {MAX_BYTES // 1000} KB: not a spec or checklist")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("$", f"not UTF-8 text (byte {exc.start})") from None


def _no_duplicates(pairs: list) -> dict:
    document: dict = {}
    for key, value in pairs:
        if key in document:
            raise InputError(f"$.{key}", f"key {key!r} is given twice")
        document[key] = value
    return document


def _no_constant(name: str):
    raise InputError("$", f"{name} is not a number checker accepts")


def parse_json(text: str) -> Any:
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {exc.lineno} column {exc.colno}", f"malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError("$", f"nested too deeply (more than {MAX_DEPTH} levels)") from None
    check_shape(document)
    return document


class StrictLoader(yaml.SafeLoader):
    """yaml.safe_load, plus: no duplicate keys, keys are strings, a bounded number of aliases."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise InputError(f"line {mark.line + 1} column {mark.column + 1}",
                                 f"more than {MAX_ALIASES} YAML aliases: not a checklist")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        """A mapping's own keys must be strings and given once; YAML merge keys (`<<: *base`)
        are standard and work: the keys merged in are overridden by the mapping's own."""
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            where = f"line {key_node.start_mark.line + 1} column {key_node.start_mark.column + 1}"
            if not isinstance(key, str):
                raise InputError(where, f"key {key!r} must be a string (quote it)")
            if key in seen:
                raise InputError(where, f"key {key!r} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    try:
        document = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "$"
        reason = getattr(exc, "problem", None) or str(exc)
        raise InputError(where, f"malformed YAML: {reason}") from None
    except RecursionError:
        raise InputError("$", f"nested too deeply (more than {MAX_DEPTH} levels)") from None
    check_shape(document)
    return document


def check_shape(document: Any) -> None:
    """Bounded depth and size, finite numbers: walked without recursion, shared nodes counted
    each time they are reached (so an expanding document stops here, not in the validator)."""
    stack = [(document, 1, "$")]
    nodes = 0
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InputError("$", f"more than {MAX_NODES} values: not a spec or checklist")
        if depth > MAX_DEPTH:
            raise InputError(path, f"nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(path, f"{value} is not a number checker accepts")
        if not isinstance(value, JSON_TYPES):
            raise InputError(path, f"{NOT_JSON.get(type(value), 'a ' + type(value).__name__)} is not a JSON value "
                                   "(checker sends JSON): quote it")
        if isinstance(value, dict):
            stack += [(item, depth + 1, f"{path}.{key}") for key, item in value.items()]
        elif isinstance(value, list):
            stack += [(item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value)]
