"""Table specs: the shipped ones are valid CreateTable input; every validation rule bites."""
from __future__ import annotations

import copy
import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from checker.specs import load_specs, validate_table_request

from .conftest import SPECS, load_spec

TABLES = ["user", "action_history", "track", "liked_songs", "liked_songs_metadata"]


def test_the_five_tables_of_the_design_are_specified():
    assert sorted(s.name for s in load_specs(SPECS)) == sorted(TABLES)


@pytest.mark.parametrize("name", TABLES)
def test_each_spec_is_valid_create_table_input_for_botocore(name):
    model = botocore.session.get_session().get_service_model("dynamodb")
    report = ParamValidator().validate(load_spec(name), model.operation_model("CreateTable").input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("name", TABLES)
def test_each_spec_passes_our_own_rules(name):
    assert validate_table_request(load_spec(name), f"{name}.json") == []


def test_spec_facts_match_the_design():
    liked = load_spec("liked_songs")
    assert liked["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"},
                                  {"AttributeName": "trackId", "KeyType": "RANGE"}]
    (index,) = liked["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "userId-addedAt-index"
    assert index["Projection"] == {"ProjectionType": "ALL"}
    track = load_spec("track")
    assert track["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert track["GlobalSecondaryIndexes"][0]["Projection"]["ProjectionType"] == "KEYS_ONLY"


def problems_of(request):
    return [(p.path, p.message) for p in validate_table_request(request, "t.json")]


def mutated(name, change):
    request = copy.deepcopy(load_spec(name))
    change(request)
    return request


def only_problem(request):
    problems = problems_of(request)
    assert len(problems) == 1, problems
    return problems[0]


def test_undefined_key_attribute():
    request = mutated("user", lambda r: r["KeySchema"].__setitem__(0, {"AttributeName": "uid", "KeyType": "HASH"}))
    problems = problems_of(request)
    assert ("$.KeySchema[0].AttributeName", "key attribute 'uid' is not in AttributeDefinitions") in problems
    assert any(path == "$.AttributeDefinitions[0]" and "'id' is defined but not used" in m for path, m in problems)


def test_undefined_gsi_key_attribute():
    def drop_added_at(r):
        r["AttributeDefinitions"] = [a for a in r["AttributeDefinitions"] if a["AttributeName"] != "addedAt"]
    path, message = only_problem(mutated("liked_songs", drop_added_at))
    assert path == "$.GlobalSecondaryIndexes[0].KeySchema[1].AttributeName"
    assert "'addedAt'" in message


def test_unused_attribute_definition():
    request = mutated("user", lambda r: r["AttributeDefinitions"].append({"AttributeName": "email", "AttributeType": "S"}))
    path, message = only_problem(request)
    assert path == "$.AttributeDefinitions[1]" and "'email'" in message and "not used" in message


def test_attribute_defined_twice():
    request = mutated("user", lambda r: r["AttributeDefinitions"].append({"AttributeName": "id", "AttributeType": "N"}))
    assert only_problem(request) == ("$.AttributeDefinitions[1].AttributeName", "attribute 'id' is defined twice")


def test_duplicate_index_names():
    def twin(r):
        second = copy.deepcopy(r["GlobalSecondaryIndexes"][0])
        r["GlobalSecondaryIndexes"].append(second)
    path, message = only_problem(mutated("track", twin))
    assert path == "$.GlobalSecondaryIndexes[1].IndexName" and "used more than once" in message


def test_index_name_shared_between_lsi_and_gsi():
    def lsi(r):
        r["LocalSecondaryIndexes"] = [{"IndexName": "userId-addedAt-index", "KeySchema": [
            {"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "addedAt", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}]
    path, _ = only_problem(mutated("liked_songs", lsi))
    assert path == "$.GlobalSecondaryIndexes[0].IndexName"


def _gsi(i):
    return {"IndexName": f"gsi-{i:02d}", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}


def test_more_than_20_gsis():
    request = mutated("user", lambda r: r.__setitem__("GlobalSecondaryIndexes", [_gsi(i) for i in range(21)]))
    assert only_problem(request) == ("$.GlobalSecondaryIndexes",
                                     "21 global secondary indexes; DynamoDB allows at most 20")
    request = mutated("user", lambda r: r.__setitem__("GlobalSecondaryIndexes", [_gsi(i) for i in range(20)]))
    assert problems_of(request) == []


def test_more_than_5_lsis():
    def lsis(r):
        r["LocalSecondaryIndexes"] = [{"IndexName": f"lsi-{i}", "KeySchema": [
            {"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "created_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}} for i in range(6)]
    assert only_problem(mutated("action_history", lsis)) == (
        "$.LocalSecondaryIndexes", "6 local secondary indexes; DynamoDB allows at most 5")


def test_lsi_must_share_the_table_hash_key_and_have_a_range_key():
    def lsi(r):
        r["LocalSecondaryIndexes"] = [{"IndexName": "by-created", "KeySchema": [
            {"AttributeName": "created_at", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}]
    paths = [p for p, _ in problems_of(mutated("action_history", lsi))]
    assert "$.LocalSecondaryIndexes[0].KeySchema[0].AttributeName" in paths
    assert "$.LocalSecondaryIndexes[0].KeySchema" in paths


def test_provisioned_table_needs_throughput():
    request = mutated("user", lambda r: r.pop("ProvisionedThroughput"))
    assert only_problem(request)[1].startswith("ProvisionedThroughput is required when BillingMode is PROVISIONED")
    request = mutated("user", lambda r: (r.pop("ProvisionedThroughput"), r.pop("BillingMode")))
    assert "(the default)" in only_problem(request)[1]


def test_provisioned_gsi_needs_throughput():
    request = mutated("track", lambda r: r["GlobalSecondaryIndexes"][0].pop("ProvisionedThroughput"))
    assert only_problem(request)[0] == "$.GlobalSecondaryIndexes[0]"


def test_on_demand_table_must_not_have_throughput():
    request = mutated("track", lambda r: r.__setitem__("BillingMode", "PAY_PER_REQUEST"))
    assert sorted(p for p, _ in problems_of(request)) == [
        "$.GlobalSecondaryIndexes[0].ProvisionedThroughput", "$.ProvisionedThroughput"]


def test_include_projection_needs_non_key_attributes():
    request = mutated("track", lambda r: r["GlobalSecondaryIndexes"][0].__setitem__("Projection", {"ProjectionType": "INCLUDE"}))
    assert only_problem(request) == ("$.GlobalSecondaryIndexes[0].Projection",
                                     "ProjectionType INCLUDE needs NonKeyAttributes")


def test_non_key_attributes_only_with_include():
    request = mutated("track", lambda r: r["GlobalSecondaryIndexes"][0]["Projection"].__setitem__("NonKeyAttributes", ["name"]))
    assert only_problem(request) == ("$.GlobalSecondaryIndexes[0].Projection.NonKeyAttributes",
                                     "only allowed with ProjectionType INCLUDE, not KEYS_ONLY")


def test_projection_type_required():
    request = mutated("track", lambda r: r["GlobalSecondaryIndexes"][0].__setitem__("Projection", {}))
    assert only_problem(request)[0] == "$.GlobalSecondaryIndexes[0].Projection"


def test_key_order_hash_then_range():
    request = mutated("action_history", lambda r: r["KeySchema"].reverse())
    assert sorted(p for p, _ in problems_of(request)) == ["$.KeySchema[0].KeyType", "$.KeySchema[1].KeyType"]


def test_stream_needs_view_type():
    request = mutated("user", lambda r: r.__setitem__("StreamSpecification", {"StreamEnabled": True}))
    assert only_problem(request) == ("$.StreamSpecification", "StreamViewType is required when StreamEnabled is true")


@pytest.mark.parametrize("change, path, words", [
    (lambda r: r.pop("TableName"), "$", "'TableName' is a required property"),
    (lambda r: r.__setitem__("TableName", "x"), "$.TableName", "not a valid name"),
    (lambda r: r.__setitem__("Billing", "PROVISIONED"), "$", "unknown field(s) 'Billing'"),
    (lambda r: r.__setitem__("BillingMode", "ON_DEMAND"), "$.BillingMode", 'expected one of "PROVISIONED"'),
    (lambda r: r["AttributeDefinitions"][0].__setitem__("AttributeType", "STRING"),
     "$.AttributeDefinitions[0].AttributeType", 'found "STRING"'),
    (lambda r: r["ProvisionedThroughput"].__setitem__("ReadCapacityUnits", "1"),
     "$.ProvisionedThroughput.ReadCapacityUnits", "is not of type 'integer'"),
    (lambda r: r["KeySchema"].append({"AttributeName": "id", "KeyType": "RANGE"}) or
     r["KeySchema"].append({"AttributeName": "id", "KeyType": "RANGE"}), "$.KeySchema", "too long"),
])
def test_structure_problems_name_the_path(change, path, words):
    problems = problems_of(mutated("user", change))
    assert any(p == path and words in m for p, m in problems), problems


def test_every_problem_of_a_file_is_reported():
    def many(r):
        r["BillingMode"] = "ON_DEMAND"
        r["AttributeDefinitions"].append({"AttributeName": "email", "AttributeType": "S"})
        r["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "INCLUDE"}
    assert len(problems_of(mutated("track", many))) == 3


def write(directory, name, content):
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def test_cli_validate_reports_every_problem_in_every_file(cli, project):
    specs = project / "table_specs"
    write(specs, "user.json", mutated("user", lambda r: r.pop("ProvisionedThroughput")))
    write(specs, "track.json", '{\n  "TableName": "track",\n  "KeySchema": [\n}')
    result = cli("validate")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "table_specs/track.json: line 4 column 1: malformed JSON: Expecting value" in lines
    assert any(line.startswith("table_specs/user.json: $: ProvisionedThroughput is required") for line in lines)
    assert "Traceback" not in result.output


def test_cli_validate_json(cli, project):
    write(project / "table_specs", "user.json", mutated("user", lambda r: r["KeySchema"][0].__setitem__("KeyType", "RANGE")))
    result, document = cli.json("validate")
    assert result.exit_code == 1
    assert document["valid"] is False
    assert {"file": "table_specs/user.json", "path": "$.KeySchema[0].KeyType",
            "message": "the first key must be the HASH (partition) key"} in document["problems"]


def test_cli_validate_duplicate_table_names(cli, project):
    write(project / "table_specs", "user_copy.json", load_spec("user"))
    result = cli("validate")
    assert result.exit_code == 1
    assert "table_specs/user_copy.json: $.TableName: table 'user' is also defined in table_specs/user.json" in result.stdout


def test_cli_validate_ok_and_missing_directory(cli, project):
    assert cli("validate").exit_code == 0
    result = cli("validate", "--specs", "nowhere")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: nowhere: spec directory not found (pass --specs DIR)"


def test_spec_that_is_not_an_object(cli, project):
    write(project / "table_specs", "user.json", "[1, 2]")
    result = cli("validate")
    assert result.exit_code == 1
    assert "table_specs/user.json: $: [1, 2] is not of type 'object'" in result.stdout


def test_the_spec_schema_accepts_every_field_of_botocores_createtable_model():
    """Walks botocore's CreateTable input shape: a field the installed botocore knows and the
    schema lacks (at any depth the schema closes with additionalProperties: false) fails here."""
    from checker.specs import load_schema
    schema = load_schema("table-spec.schema.json")

    def resolve(node):
        while "$ref" in node:
            node = schema["$defs"][node["$ref"].split("/")[-1]]
        return node

    def missing(shape, node, path):
        node = resolve(node)
        if shape.type_name == "list" and "items" in node:
            return missing(shape.member, node["items"], f"{path}[]")
        if shape.type_name != "structure" or node.get("additionalProperties", True) is not False:
            return []
        found = []
        for name, member in shape.members.items():
            if name not in node["properties"]:
                found.append(f"{path}.{name}")
            else:
                found += missing(member, node["properties"][name], f"{path}.{name}")
        return found

    model = botocore.session.get_session().get_service_model("dynamodb")
    assert missing(model.operation_model("CreateTable").input_shape, schema, "$") == []
