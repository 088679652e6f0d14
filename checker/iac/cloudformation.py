"""CloudFormation and SAM templates: `AWS::DynamoDB::Table`, `AWS::DynamoDB::GlobalTable` (its
replica in the environment's region) and `AWS::Serverless::SimpleTable` as CreateTable requests.

YAML is read by cfn-flip's loader (made for the short-form tags `!Ref`, `!Sub`, `!GetAtt`,
`!If`..., a SafeLoader underneath); a SAM template (`Transform: AWS::Serverless-2016-10-31`) is
first translated by aws-sam-translator, AWS's own library, so a SimpleTable is what SAM deploys.
Both are the `iac` extra. Intrinsic functions are evaluated for the environment (parameters,
conditions, mappings, pseudo-parameters); one checker cannot evaluate is a problem naming it.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import CheckerError
from ..text import clip
from .context import TemplateContext

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
NO_VALUE = object()       # AWS::NoValue: the property is left out
# properties CreateTable has no field for and checker does not compare (said nowhere: they are the
# template's business, not the table's shape)
NOT_CARRIED = ("ContributorInsightsSpecification", "KinesisStreamSpecification", "ImportSourceSpecification",
               "ResourcePolicy")


class Unresolvable(Exception):
    """A value checker cannot know from the template and the environment."""


def extra_missing(what: str) -> CheckerError:
    return CheckerError(f"{what} needs the iac extra: pip install 'ddb-deploy-checker[iac]' "
                        "(aws-sam-translator and cfn-flip)")


def load_template(path: Path, text: str) -> dict:
    """The template as plain dicts and lists, short-form tags as their long form."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        from ..inputs import parse_json
        document = parse_json(text)
    else:
        try:
            from cfn_tools import load_yaml
        except ImportError:
            raise extra_missing(f"{path}: a YAML CloudFormation template") from None
        import yaml
        try:
            document = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "$"
            raise CheckerError(f"{path}: {where}: not valid YAML: {clip(str(getattr(exc, 'problem', exc)), 200)}") from None
        except Exception as exc:  # noqa: BLE001 - the loader's own errors on a bad tag ("Bad tag: ...")
            raise CheckerError(f"{path}: not a template cfn-flip can read: {clip(str(exc), 200)}") from None
        document = json.loads(json.dumps(document, default=str))   # its ordered dicts as plain ones
    if isinstance(document, dict) and not isinstance(document.get("Resources"), dict) and \
            isinstance(document.get("resources"), dict) and isinstance(document["resources"].get("Resources"), dict):
        document = document["resources"]     # the Serverless Framework (`serverless print`): its CloudFormation part
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise CheckerError(f"{path}: $.Resources: a CloudFormation template has a Resources map (the Serverless "
                           "Framework's: resources.Resources)")
    return document


def sam_translated(path: Path, document: dict, context: TemplateContext) -> dict:
    transforms = document.get("Transform")
    transforms = transforms if isinstance(transforms, list) else [transforms]
    if SAM_TRANSFORM not in transforms:
        return document
    try:
        import boto3
        from samtranslator.model.exceptions import InvalidDocumentException
        from samtranslator.parser.parser import Parser
        from samtranslator.translator.translator import Translator
    except ImportError:
        raise extra_missing(f"{path}: a SAM template") from None
    import logging
    logging.getLogger("samtranslator").setLevel(logging.ERROR)   # its "unpublished metrics" warnings are not the user's
    session = boto3.session.Session(region_name=context.region or "us-east-1")
    pseudo = {"AWS::Region": context.region or "us-east-1", "AWS::Partition": partition(context.region)}
    if context.account:
        pseudo["AWS::AccountId"] = context.account
    try:
        return Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session).translate(
            sam_template=json.loads(json.dumps(document)), parameter_values={**parameter_values(document, context), **pseudo})
    except InvalidDocumentException as exc:
        causes = "; ".join(str(getattr(c, "message", c)) for c in getattr(exc, "causes", [])) or str(exc)
        raise CheckerError(f"{path}: the SAM transform refused it: {clip(causes, 400)}") from None
    except Exception as exc:  # noqa: BLE001 - the translator's other failures, named
        raise CheckerError(f"{path}: the SAM transform failed: {type(exc).__name__}: {clip(str(exc), 300)}") from None


_DOCUMENTS: dict = {}    # (path, text, what the environment resolves) -> the loaded, translated template


def template_document(path: Path, text: str, context: TemplateContext) -> dict:
    """The template loaded and (SAM) translated once per process for an environment: the specs,
    the function's owner and init read it, and the SAM transform costs a tenth of a second.
    Callers read it, never change it."""
    key = (str(path), text, json.dumps(context.parameters, sort_keys=True, default=str), context.region,
           context.account, context.stack)
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = sam_translated(path, load_template(path, text), context)
    return _DOCUMENTS[key]


def partition(region: Optional[str]) -> str:
    region = region or ""
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def parameter_values(document: dict, context: TemplateContext) -> dict:
    """Each parameter as given for the environment, else its Default; absent: not in the result."""
    values = {}
    for name, declared in (document.get("Parameters") or {}).items():
        if name in context.parameters:
            values[name] = context.parameters[name]
        elif isinstance(declared, dict) and "Default" in declared:
            values[name] = declared["Default"]
    return values


class Resolver:
    """The template's intrinsic functions evaluated for one environment."""

    def __init__(self, document: dict, context: TemplateContext):
        self.document, self.context = document, context
        self.parameters = parameter_values(document, context)
        self.declared = document.get("Parameters") or {}
        self.conditions: dict = {}
        self.resources = document.get("Resources") or {}
        self.account: Optional[str] = None       # AWS::AccountId, read once when asked for

    # -- values -------------------------------------------------------------------------------
    def value(self, node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                (name, argument), = node.items()
                if name == "Ref":
                    return self.ref(argument)
                if name.startswith("Fn::") or name == "Condition":
                    return self.function(name, argument)
            resolved = {key: self.value(item) for key, item in node.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(node, list):
            return [item for item in (self.value(element) for element in node) if item is not NO_VALUE]
        return node

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise Unresolvable(f"Ref of {clip(json.dumps(name), 60)}: Ref takes a name")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.declared:
            if name not in self.parameters:
                raise Unresolvable(f"parameter {name} has no Default and environments.{self.context.environment or 'ENV'}"
                                   ".parameters does not give it")
            value = self.parameters[name]
            kind = str((self.declared.get(name) or {}).get("Type", "String"))
            if kind.startswith("List<") or kind == "CommaDelimitedList":
                return value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            return value if kind == "Number" else str(value)
        resource = self.resources.get(name)
        if isinstance(resource, dict) and resource.get("Type") in (*TABLE_TYPES, "AWS::Serverless::SimpleTable"):
            table_name = (resource.get("Properties") or {}).get("TableName")
            if table_name is not None:
                return self.value(table_name)
            raise Unresolvable(f"Ref of {name}, a table whose name CloudFormation generates")
        if resource is not None:
            raise Unresolvable(f"Ref of {name} ({resource.get('Type') if isinstance(resource, dict) else '?'}): "
                               "its value is known only once the stack is deployed")
        raise Unresolvable(f"Ref of {name}: no parameter or resource of that name")

    def pseudo(self, name: str) -> Any:
        context = self.context
        if name == "AWS::AccountId" and self.account is None:
            self.account = context.account_id() or ""
        known: dict = {"AWS::Region": context.region, "AWS::AccountId": self.account or None, "AWS::StackName": context.stack,
                 "AWS::Partition": partition(context.region), "AWS::NotificationARNs": [],
                 "AWS::URLSuffix": "amazonaws.com.cn" if partition(context.region) == "aws-cn" else "amazonaws.com"}
        if known.get(name) is None:
            why = {"AWS::Region": "no region is given (--region or environments.ENV.region)",
                   "AWS::AccountId": "the account is not known (offline, or sts:GetCallerIdentity failed)",
                   "AWS::StackName": "environments.ENV.stack is not set"}.get(name, "checker does not know it")
            raise Unresolvable(f"{name}: {why}")
        return known[name]

    def function(self, name: str, argument: Any) -> Any:  # noqa: C901 - one branch per intrinsic function
        if name == "Fn::Sub":
            return self.sub(argument)
        if name == "Fn::Join":
            if not (isinstance(argument, list) and len(argument) == 2):
                raise Unresolvable("Fn::Join takes [delimiter, [values]]")
            values = self.value(argument[1])
            if not isinstance(values, list):
                raise Unresolvable("Fn::Join's values are not a list")
            return str(self.value(argument[0])).join(str(v) for v in values)
        if name == "Fn::If":
            if not (isinstance(argument, list) and len(argument) == 3):
                raise Unresolvable("Fn::If takes [condition, value if true, value if false]")
            return self.value(argument[1] if self.condition(argument[0]) else argument[2])
        if name == "Fn::Select":
            if not (isinstance(argument, list) and len(argument) == 2):
                raise Unresolvable("Fn::Select takes [index, list]")
            index, values = self.value(argument[0]), self.value(argument[1])
            try:
                return values[int(index)]
            except (ValueError, TypeError, IndexError):
                raise Unresolvable(f"Fn::Select: no item {clip(str(index), 20)}") from None
        if name == "Fn::Split":
            if not (isinstance(argument, list) and len(argument) == 2):
                raise Unresolvable("Fn::Split takes [delimiter, string]")
            return str(self.value(argument[1])).split(str(self.value(argument[0])))
        if name == "Fn::FindInMap":
            if not (isinstance(argument, list) and len(argument) >= 3):
                raise Unresolvable("Fn::FindInMap takes [map, top-level key, second-level key]")
            names = [self.value(a) for a in argument[:3]]
            try:
                return self.value(self.document["Mappings"][names[0]][names[1]][names[2]])
            except (KeyError, TypeError):
                raise Unresolvable(f"Fn::FindInMap: Mappings has no {'.'.join(str(n) for n in names)}") from None
        if name == "Fn::Base64":
            return base64.b64encode(str(self.value(argument)).encode()).decode()
        if name == "Fn::ToJsonString":
            return json.dumps(self.value(argument), separators=(",", ":"))
        if name in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition"):
            return self.evaluate(name, argument)
        if name == "Fn::ImportValue":
            raise Unresolvable("Fn::ImportValue: a value exported by another stack (checker does not read it)")
        if name == "Fn::GetAtt":
            target = ".".join(argument) if isinstance(argument, list) else str(argument)
            raise Unresolvable(f"Fn::GetAtt {clip(target, 80)}: known only once the stack is deployed")
        raise Unresolvable(f"{name} is not evaluated by checker")

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            text, variables = argument[0], {k: self.value(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}
        if not isinstance(text, str):
            raise Unresolvable("Fn::Sub takes a string, or [string, {variables}]")

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                raise Unresolvable(f"Fn::Sub ${{{name}}}: an attribute known only once the stack is deployed")
            value = self.ref(name)
            return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        return re.sub(r"\$\{([^}]*)\}", replace, text)

    # -- conditions -----------------------------------------------------------------------------
    def condition(self, name: Any) -> bool:
        if not isinstance(name, str):
            raise Unresolvable("a condition is named by a string")
        if name not in self.conditions:
            declared = (self.document.get("Conditions") or {})
            if name not in declared:
                raise Unresolvable(f"condition {name} is not declared in Conditions")
            self.conditions[name] = None      # a condition that refers to itself
            self.conditions[name] = bool(self.truth(declared[name]))
        if self.conditions[name] is None:
            raise Unresolvable(f"condition {name} refers to itself")
        return bool(self.conditions[name])

    def truth(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (name, argument), = node.items()
            if name in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition"):
                return self.evaluate(name, argument)
        value = self.value(node)
        if isinstance(value, bool):
            return value
        raise Unresolvable(f"a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition, found "
                           f"{clip(json.dumps(node, default=str), 80)}")

    def evaluate(self, name: str, argument: Any) -> bool:
        if name == "Condition":
            return self.condition(argument)
        if name == "Fn::Equals":
            if not (isinstance(argument, list) and len(argument) == 2):
                raise Unresolvable("Fn::Equals takes [value, value]")
            first, second = (self.value(a) for a in argument)
            return str(first) == str(second) if not isinstance(first, (list, dict)) else first == second
        if not isinstance(argument, list):
            raise Unresolvable(f"{name} takes a list of conditions")
        if name == "Fn::Not":
            if len(argument) != 1:
                raise Unresolvable("Fn::Not takes one condition")
            return not self.truth(argument[0])
        results = [self.truth(a) for a in argument]
        return all(results) if name == "Fn::And" else any(results)


# -- tables ------------------------------------------------------------------------------------------
def cloudformation_specs(path: Path, text: str, context: TemplateContext) -> tuple:
    """([TableSpec], [Problem]) of the template's tables for the environment."""
    from ..specs import Problem
    try:
        document = template_document(path, text, context)
    except CheckerError as exc:
        said = str(exc).removeprefix(f"{path}: ")
        where, _, message = said.partition(": ") if said.startswith(("$", "line ")) else ("$", "", said)
        return [], [Problem(str(path), where, message)]
    resolver = Resolver(document, context)
    specs, problems = [], []
    for logical_id, resource in (document.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") not in TABLE_TYPES:
            continue
        where = f"$.Resources.{logical_id}"
        try:
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue          # not created in this environment
            properties = resolver.value(resource.get("Properties") or {})
            request, wishes = (global_table_request(properties, context) if resource["Type"] == TABLE_TYPES[1]
                               else table_request(properties))
        except Unresolvable as exc:
            problems.append(Problem(str(path), where, f"{exc}{for_environment(context)}; checker does not guess it"))
            continue
        found = table_spec(path, logical_id, request, wishes, where)
        if isinstance(found, list):
            problems += found
        else:
            specs.append(found)
    return specs, problems


def for_environment(context: TemplateContext) -> str:
    return f" (environment {context.environment})" if context.environment else ""


def table_spec(path: Path, logical_id: str, request: dict, wishes: dict, where: str):
    """The TableSpec of one converted resource, or its problems (paths into the template)."""
    from ..model import TableSpec
    from ..specs import Problem, validate_table_request
    generated = "TableName" not in request
    checked = dict(request, TableName=request.get("TableName", f"generated-{logical_id}"[:255]))
    problems = validate_table_request(checked, str(path))
    if problems:
        return [Problem(str(path), p.path.replace("$", f"{where}.Properties", 1), p.message) for p in problems]
    return TableSpec(str(path), checked, logical_id=logical_id, generated_name=generated, wishes=wishes)


def table_request(properties: dict) -> tuple:
    """(the CreateTable request, {ttl_attribute, point_in_time_recovery}) of an AWS::DynamoDB::Table."""
    request = {k: v for k, v in properties.items() if k not in NOT_CARRIED
               and k not in ("TimeToLiveSpecification", "PointInTimeRecoverySpecification")}
    if isinstance(request.get("StreamSpecification"), dict):
        stream = dict(request["StreamSpecification"])
        stream.pop("ResourcePolicy", None)
        request["StreamSpecification"] = {"StreamEnabled": True, **stream}
    if isinstance(request.get("SSESpecification"), dict):
        sse = dict(request["SSESpecification"])
        if "SSEEnabled" in sse:
            sse["Enabled"] = truthy(sse.pop("SSEEnabled"))
        request["SSESpecification"] = sse
    for index in [*request.get("GlobalSecondaryIndexes", []), *request.get("LocalSecondaryIndexes", [])]:
        if isinstance(index, dict):
            index.pop("ContributorInsightsSpecification", None)
    if "DeletionProtectionEnabled" in request:
        request["DeletionProtectionEnabled"] = truthy(request["DeletionProtectionEnabled"])
    numbers(request)
    return request, wishes_of(properties)


def wishes_of(properties: dict) -> dict:
    ttl = properties.get("TimeToLiveSpecification") or {}
    pitr = properties.get("PointInTimeRecoverySpecification") or {}
    return {"ttl_attribute": ttl.get("AttributeName") if isinstance(ttl, dict) and truthy(ttl.get("Enabled")) else None,
            "point_in_time_recovery": isinstance(pitr, dict) and truthy(pitr.get("PointInTimeRecoveryEnabled"))}


def global_table_request(properties: dict, context: TemplateContext) -> tuple:
    """An AWS::DynamoDB::GlobalTable's replica in the environment's region, as a table."""
    replicas = [r for r in properties.get("Replicas") or [] if isinstance(r, dict)]
    replica = next((r for r in replicas if r.get("Region") == context.region), None)
    if replica is None:
        raise Unresolvable(f"no replica in the region {context.region or '(none given)'} (replicas: "
                           f"{', '.join(str(r.get('Region')) for r in replicas) or 'none'})")
    if (properties.get("BillingMode") or "PROVISIONED") != "PAY_PER_REQUEST":
        raise Unresolvable("a provisioned global table's capacity (WriteProvisionedThroughputSettings, autoscaled) "
                           "has no CreateTable equivalent checker could compare")
    table = {k: properties[k] for k in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode",
                                        "LocalSecondaryIndexes", "StreamSpecification", "SSESpecification")
             if k in properties}
    if properties.get("GlobalSecondaryIndexes"):
        table["GlobalSecondaryIndexes"] = [{k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
                                           for index in properties["GlobalSecondaryIndexes"]]
    for key in ("TableClass", "DeletionProtectionEnabled", "Tags"):
        if key in replica:
            table[key] = replica[key]
    request, _ = table_request(table)
    wishes = wishes_of({"TimeToLiveSpecification": properties.get("TimeToLiveSpecification"),
                        "PointInTimeRecoverySpecification": replica.get("PointInTimeRecoverySpecification")})
    return request, wishes


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def numbers(request: dict) -> None:
    """Capacity given as strings ("5", as templates often do) as the integers CreateTable takes."""
    def fix(throughput: Any) -> None:
        if isinstance(throughput, dict):
            for key, value in throughput.items():
                if isinstance(value, str) and value.isdigit():
                    throughput[key] = int(value)
    for key in ("ProvisionedThroughput", "OnDemandThroughput", "WarmThroughput"):
        fix(request.get(key))
        for index in request.get("GlobalSecondaryIndexes") or []:
            if isinstance(index, dict):
                fix(index.get(key))
