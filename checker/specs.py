"""Table specs: load `table_specs/*.json`, validate them, and name them for an environment.

A spec file is exactly a CreateTable request (what `aws dynamodb create-table --cli-input-json`
takes), so the same file serves the AWS CLI, botocore and this tool. Validation runs in two passes:
the JSON Schema says what the structure is, then DynamoDB's own cross-field rules, which a schema
cannot express with a useful message. Every problem is collected, none stops the others.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from .errors import CheckerError
from .inputs import InputError, parse_json, read_text
from .model import TableSpec
from .text import clip

MAX_GSIS = 20
MAX_LSIS = 5
NAME_PATTERN = "^[a-zA-Z0-9_.-]{3,255}$"
NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")   # fullmatch: JSON Schema's `$` lets a final newline through


@dataclass(frozen=True)
class Problem:
    """One validation finding, printed as `FILE: $.json.path: message`."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, "path": self.path, "message": self.message}


class SpecError(CheckerError):
    """Raised with every problem found, so one run shows the user all there is to fix."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_schema(name: str) -> dict:
    return json.loads(resources.files("checker").joinpath("schemas").joinpath(name).read_text("utf-8"))


def read_json(path: Path) -> tuple[Any, list[Problem]]:
    """Parse a JSON file strictly (checker/inputs.py); any problem is a Problem, not an exception."""
    try:
        return parse_json(read_text(path)), []
    except InputError as exc:
        return None, [Problem(str(path), exc.where, exc.message)]


def json_path(parts: Iterable) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problems(document: Any, schema: dict, file: str) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [Problem(file, json_path(e.absolute_path), _schema_message(e)) for e in errors]


def _schema_message(error: jsonschema.ValidationError) -> str:
    """One line, whatever the offending value: a 40 MB array is named, not echoed."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        from .suggest import did_you_mean
        known = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known), key=str)
        named = ", ".join(f"{clip(repr(u), 60)}{did_you_mean(str(u), known)}" for u in unknown[:5])
        return clip(f"unknown field(s) {named}; expected only {', '.join(known)}", 400)
    if error.validator == "pattern" and error.schema.get("pattern") == NAME_PATTERN:
        return invalid_name(error.instance)
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"expected one of {allowed}, found {clip(json.dumps(error.instance), 80)}"
    if error.validator == "type":
        return f"{clip(json.dumps(error.instance, default=str), 80)} is not of type {error.validator_value!r}"
    return clip(error.message)


def invalid_name(name: Any) -> str:
    return f"{clip(json.dumps(name), 80)} is not a valid name: 3 to 255 characters of a-z A-Z 0-9 _ . -"


def validate_table_request(request: Any, file: str, schema: dict | None = None) -> list[Problem]:
    """Every problem with one CreateTable request: structure first, then DynamoDB's rules, then
    botocore's own check of the request (types JSON Schema cannot tell apart, such as 1.0 for an
    integer), so that validate rejects what apply would."""
    problems = schema_problems(request, schema or load_schema("table-spec.schema.json"), file)
    if isinstance(request, dict):
        problems += [Problem(file, path, message) for path, message in dynamodb_rule_violations(request)]
    if not problems:
        for line in botocore_problems(request):
            where = re.search(r"parameter ([\w.\[\]]+)", line)
            problems.append(Problem(file, f"$.{where.group(1)}" if where else "$", clip(line.strip())))
    return problems


@functools.lru_cache(maxsize=1)
def create_table_shape():
    """botocore's CreateTable input shape; loading the DynamoDB model costs ~0.2 s, so once. Read
    from botocore's data files, not through a session: offline validation must not depend on the
    AWS config (AWS_PROFILE naming a missing profile, a malformed config file)."""
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel
    model = ServiceModel(create_loader().load_service_model("dynamodb", "service-2"), "dynamodb")
    return model.operation_model("CreateTable").input_shape


def botocore_problems(request: dict) -> list:
    """What botocore's ParamValidator says of a CreateTable request, a line a problem."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(request, create_table_shape())
    if not report.has_errors():
        return []
    message = str(ParamValidationError(report=report.generate_report()))
    return [line for line in message.splitlines()[1:] if line.strip()] or [message]


def _dicts(value: Any) -> Iterator[tuple[int, dict]]:
    """Enumerate the well-formed entries of a list; the schema pass has reported the others."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _key_schema_problems(key_schema: Any, path: str) -> Iterator[tuple[str, str]]:
    entries = list(_dicts(key_schema))
    if entries and entries[0][1].get("KeyType") != "HASH":
        yield f"{path}[0].KeyType", "the first key must be the HASH (partition) key"
    if len(entries) == 2 and entries[1][1].get("KeyType") != "RANGE":
        yield f"{path}[1].KeyType", "the second key must be the RANGE (sort) key"


def _key_attributes(request: dict) -> Iterator[tuple[str, Any]]:
    """(json path, attribute name) of every key attribute of the table and its indexes."""
    for i, key in _dicts(request.get("KeySchema")):
        yield f"$.KeySchema[{i}].AttributeName", key.get("AttributeName")
    for field in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
        for i, index in _dicts(request.get(field)):
            for j, key in _dicts(index.get("KeySchema")):
                yield f"$.{field}[{i}].KeySchema[{j}].AttributeName", key.get("AttributeName")


def dynamodb_rule_violations(request: dict) -> Iterator[tuple[str, str]]:
    """The rules CreateTable enforces beyond structure, as (json path, message)."""
    # Names of the wrong type (a list, an object) were reported by the schema pass; the rules below
    # look only at string names, so they never hash or compare what is not a name.
    if isinstance(request.get("TableName"), str) and not NAME.fullmatch(request["TableName"]):
        yield "$.TableName", invalid_name(request["TableName"])
    yield from _definition_problems(request)
    yield from _key_schema_problems(request.get("KeySchema"), "$.KeySchema")
    gsis = list(_dicts(request.get("GlobalSecondaryIndexes")))
    lsis = list(_dicts(request.get("LocalSecondaryIndexes")))
    yield from _index_problems(request, gsis, lsis)
    stream = request.get("StreamSpecification")
    if isinstance(stream, dict) and stream.get("StreamEnabled") is True and "StreamViewType" not in stream:
        yield "$.StreamSpecification", "StreamViewType is required when StreamEnabled is true"
    yield from _billing_problems(request, gsis)


def _definition_problems(request: dict) -> Iterator[tuple[str, str]]:
    """Every key attribute defined, once; every definition used by a key."""
    defined: dict[Any, int] = {}
    for i, attribute in _dicts(request.get("AttributeDefinitions")):
        name = attribute.get("AttributeName")
        if not isinstance(name, str):
            continue
        if name in defined:
            yield f"$.AttributeDefinitions[{i}].AttributeName", f"attribute {name!r} is defined twice"
        defined.setdefault(name, i)
    used = set()
    for path, name in _key_attributes(request):
        if not isinstance(name, str):
            continue
        used.add(name)
        if name not in defined:
            yield path, f"key attribute {name!r} is not in AttributeDefinitions"
    for name, i in defined.items():
        if isinstance(name, str) and name not in used:
            yield (f"$.AttributeDefinitions[{i}]",
                   f"attribute {name!r} is defined but not used by any key schema (DynamoDB rejects unused definitions)")


def _index_problems(request: dict, gsis: list, lsis: list) -> Iterator[tuple[str, str]]:
    if len(gsis) > MAX_GSIS:
        yield "$.GlobalSecondaryIndexes", f"{len(gsis)} global secondary indexes; DynamoDB allows at most {MAX_GSIS}"
    if len(lsis) > MAX_LSIS:
        yield "$.LocalSecondaryIndexes", f"{len(lsis)} local secondary indexes; DynamoDB allows at most {MAX_LSIS}"
    seen_index_names: set = set()
    table_keys = [k for _, k in _dicts(request.get("KeySchema"))]
    table_hash = table_keys[0].get("AttributeName") if table_keys else None
    for field, indexes in (("LocalSecondaryIndexes", lsis), ("GlobalSecondaryIndexes", gsis)):
        for i, index in indexes:
            path = f"$.{field}[{i}]"
            name = index.get("IndexName")
            if isinstance(name, str):
                if not NAME.fullmatch(name):
                    yield f"{path}.IndexName", invalid_name(name)
                if name in seen_index_names:
                    yield f"{path}.IndexName", f"index name {name!r} is used more than once"
                seen_index_names.add(name)
            yield from _key_schema_problems(index.get("KeySchema"), f"{path}.KeySchema")
            yield from _projection_problems(index.get("Projection"), f"{path}.Projection")
            if field == "LocalSecondaryIndexes":
                yield from _lsi_problems(index, path, table_hash, len(table_keys))


def _billing_problems(request: dict, gsis: list) -> Iterator[tuple[str, str]]:
    """ProvisionedThroughput exactly when billing is PROVISIONED, on the table and every GSI."""
    billing = request.get("BillingMode", "PROVISIONED")
    if billing not in ("PROVISIONED", "PAY_PER_REQUEST"):
        return  # the schema pass reported it; throughput rules depend on a valid mode
    provisioned = billing == "PROVISIONED"
    if provisioned and "ProvisionedThroughput" not in request:
        yield "$", "ProvisionedThroughput is required when BillingMode is PROVISIONED (the default)"
    if not provisioned and "ProvisionedThroughput" in request:
        yield "$.ProvisionedThroughput", f"must not be set when BillingMode is {billing}"
    for i, index in gsis:
        if provisioned and "ProvisionedThroughput" not in index:
            yield (f"$.GlobalSecondaryIndexes[{i}]",
                   "ProvisionedThroughput is required on every GSI when BillingMode is PROVISIONED")
        if not provisioned and "ProvisionedThroughput" in index:
            yield f"$.GlobalSecondaryIndexes[{i}].ProvisionedThroughput", f"must not be set when BillingMode is {billing}"


def _projection_problems(projection: Any, path: str) -> Iterator[tuple[str, str]]:
    if not isinstance(projection, dict):
        return
    kind = projection.get("ProjectionType")
    if kind is None:
        yield path, "ProjectionType is required (ALL, KEYS_ONLY or INCLUDE)"
    elif kind == "INCLUDE" and not projection.get("NonKeyAttributes"):
        yield path, "ProjectionType INCLUDE needs NonKeyAttributes"
    elif kind != "INCLUDE" and "NonKeyAttributes" in projection:
        yield f"{path}.NonKeyAttributes", f"only allowed with ProjectionType INCLUDE, not {kind}"


def _lsi_problems(index: dict, path: str, table_hash: Any, table_key_count: int) -> Iterator[tuple[str, str]]:
    if table_key_count != 2:
        yield path, "a local secondary index needs a table with a composite (HASH and RANGE) key"
    keys = [k for _, k in _dicts(index.get("KeySchema"))]
    if keys and keys[0].get("AttributeName") != table_hash:
        yield f"{path}.KeySchema[0].AttributeName", f"a local secondary index must use the table's HASH key {table_hash!r}"
    if len(keys) != 2:
        yield f"{path}.KeySchema", "a local secondary index needs a RANGE key"


def validate_spec_files(paths: list[Path]) -> tuple[list[TableSpec], list[Problem]]:
    """Validate each file; table names must be unique across the set."""
    schema = load_schema("table-spec.schema.json")
    specs: list[TableSpec] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in paths:
        document, read_problems = read_json(path)
        if read_problems:
            problems += read_problems
            continue
        file_problems = validate_table_request(document, str(path), schema)
        problems += file_problems
        if file_problems:
            continue
        name = document["TableName"]
        if name in seen:
            problems.append(Problem(str(path), "$.TableName", f"table {name!r} is also defined in {seen[name]}"))
            continue
        seen[name] = str(path)
        specs.append(TableSpec(str(path), document))
    return specs, problems


def spec_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    try:
        found = directory.is_dir()
    except (OSError, ValueError):   # a name too long for the file system, a NUL byte
        found = False
    if not found:
        raise CheckerError(f"{clip(str(directory), 200)}: spec directory not found (pass --specs DIR)")
    files = sorted(directory.glob("*.json"))
    if not files:
        raise CheckerError(f"{directory}: no *.json table specs in this directory")
    return files


def load_specs(directory: str | Path) -> list[TableSpec]:
    """All specs of a directory, or SpecError listing every problem in every file."""
    specs, problems = validate_spec_files(spec_files(directory))
    if problems:
        raise SpecError(problems)
    return specs
