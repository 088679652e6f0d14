"""The deployment checklist (`checklist.yaml`): environments and per-table wishes.

Loaded with yaml.safe_load, checked against checker/schemas/checklist.schema.json, then `${VAR}`
is expanded from the process environment (an undefined variable is an error naming where it is
used, never a silent empty string).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import CheckerError
from .specs import Problem, SpecError, json_path, load_schema, schema_problems

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Environment:
    name: str
    region: Optional[str] = None
    table_prefix: str = ""
    table_suffix: str = ""
    function_name: Optional[str] = None
    base_url: Optional[str] = None


@dataclass(frozen=True)
class TableWishes:
    ttl_attribute: Optional[str] = None
    point_in_time_recovery: bool = False


@dataclass(frozen=True)
class Checklist:
    file: str
    environments: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)

    def environment(self, name: str) -> Environment:
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise CheckerError(f"{self.file}: $.environments: no environment {name!r} (known: {known})")
        return self.environments[name]

    def wishes(self, table_name: str) -> TableWishes:
        return self.tables.get(table_name, TableWishes())


def expand_variables(value: Any, file: str, path: tuple = (), environ=os.environ) -> tuple[Any, list[Problem]]:
    """Replace ${VAR} in every string of a YAML document; each undefined variable is a Problem."""
    problems: list[Problem] = []
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key], found = expand_variables(item, file, path + (key,), environ)
            problems += found
        return out, problems
    if isinstance(value, list):
        out_list = []
        for i, item in enumerate(value):
            expanded, found = expand_variables(item, file, path + (i,), environ)
            out_list.append(expanded)
            problems += found
        return out_list, problems
    if isinstance(value, str):
        def replace(match):
            name = match.group(1)
            if name not in environ:
                problems.append(Problem(file, json_path(path), f"environment variable {name} is not set"))
                return match.group(0)
            return environ[name]
        return VARIABLE.sub(replace, value), problems
    return value, problems


def read_checklist_document(path: Path) -> tuple[Any, list[Problem]]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        return None, [Problem(str(path), "$", f"cannot read file: {exc.strerror}")]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "$"
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(str(path), where, f"malformed YAML: {reason}")]


def checklist_problems(path: Path, table_names: Optional[set] = None, environ=os.environ) -> tuple[Optional[Checklist], list[Problem]]:
    document, problems = read_checklist_document(path)
    if problems:
        return None, problems
    file = str(path)
    problems = schema_problems(document, load_schema("checklist.schema.json"), file)
    if problems:
        return None, problems
    document, problems = expand_variables(document, file, environ=environ)
    if table_names is not None:
        for name in document.get("tables") or {}:
            if name not in table_names:
                problems.append(Problem(file, f"$.tables.{name}",
                                        f"no table spec has TableName {name!r} (known: {', '.join(sorted(table_names))})"))
    if problems:
        return None, problems
    environments = {name: Environment(name=name, **values)
                    for name, values in document["environments"].items()}
    tables = {name: TableWishes(**(values or {})) for name, values in (document.get("tables") or {}).items()}
    return Checklist(file, environments, tables), []


def load_checklist(path: Path, table_names: Optional[set] = None) -> Checklist:
    checklist, problems = checklist_problems(path, table_names)
    if problems:
        raise SpecError(problems)
    return checklist
