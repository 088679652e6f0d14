"""Table specs read from the template a team deploys with (checker/iac): a SAM template with a
parameter per environment, a condition, a SimpleTable and a table whose name CloudFormation
generates, deployed to a moto server through CloudFormation (the translated template: moto does
not run the SAM transform), then validate, plan and check from it; a template change shows in
the plan; Terraform's `terraform show -json` read likewise."""
from __future__ import annotations

import json

import boto3
import pytest
import yaml

from checker.iac import TemplateContext
from checker.iac.cloudformation import cloudformation_specs, sam_translated

from .conftest import Cli

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Env:
    Type: String
    AllowedValues: [dev, prod]
  ReadUnits:
    Type: Number
    Default: 5
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  LikedSongs:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub '${Env}-liked-songs'
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: userId, AttributeType: S}
        - {AttributeName: trackId, AttributeType: S}
      KeySchema:
        - {AttributeName: userId, KeyType: HASH}
        - {AttributeName: trackId, KeyType: RANGE}
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
      TimeToLiveSpecification: {AttributeName: expiresAt, Enabled: true}
      DeletionProtectionEnabled: !If [IsProd, true, false]
  Metadata:
    Type: AWS::Serverless::SimpleTable
    Properties:
      TableName: !Join ['-', [!Ref Env, liked-songs-metadata]]
      PrimaryKey: {Name: userId, Type: String}
  Audit:
    Type: AWS::DynamoDB::Table
    Condition: IsProd
    Properties:
      TableName: !Sub '${Env}-audit'
      BillingMode: PROVISIONED
      ProvisionedThroughput: {ReadCapacityUnits: !Ref ReadUnits, WriteCapacityUnits: '1'}
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  Sessions:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
"""

CHECKLIST = {
    "version": 1, "default_env": "dev", "specs": "template.yaml",
    "environments": {"dev": {"region": "us-east-1", "parameters": {"Env": "dev"}, "stack": "app-dev"},
                     "prod": {"region": "us-east-1", "parameters": {"Env": "prod"}, "stack": "app-prod"}},
    "tables": {"LikedSongs": {"point_in_time_recovery": False}},
}


@pytest.fixture
def sam_project(tmp_path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump(CHECKLIST, sort_keys=False))
    return tmp_path


def deploy(endpoint: str, project, env: str) -> None:
    """The template as `sam deploy` would send it: translated, then CreateStack."""
    from checker.iac.cloudformation import load_template
    document = load_template(project / "template.yaml", (project / "template.yaml").read_text())
    translated = sam_translated(project / "template.yaml", document, TemplateContext(region="us-east-1"))
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1")
    cloudformation.create_stack(StackName=f"app-{env}", TemplateBody=json.dumps(translated),
                                Parameters=[{"ParameterKey": "Env", "ParameterValue": env}])
    # moto's CloudFormation leaves a table's TimeToLiveSpecification out; AWS's applies it
    boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1").update_time_to_live(
        TableName=f"{env}-liked-songs", TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True})


def test_the_tables_of_a_sam_template_per_environment():
    specs, problems = cloudformation_specs("template.yaml", TEMPLATE, TemplateContext({"Env": "dev"}, "us-east-1",
                                                                                      environment="dev"))
    assert problems == []
    found = {s.logical_id: s for s in specs}
    assert set(found) == {"LikedSongs", "Metadata", "Sessions"}              # Audit: prod only
    liked = found["LikedSongs"].request
    assert liked["TableName"] == "dev-liked-songs" and liked["StreamSpecification"] == {
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"} and liked["DeletionProtectionEnabled"] is False
    assert found["LikedSongs"].wishes["ttl_attribute"] == "expiresAt"
    assert found["Metadata"].request["TableName"] == "dev-liked-songs-metadata"                  # SAM's SimpleTable
    assert found["Metadata"].request["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}]
    assert found["Sessions"].generated_name                                  # CloudFormation names it

    prod, problems = cloudformation_specs("template.yaml", TEMPLATE, TemplateContext({"Env": "prod"}, "us-east-1"))
    audit = next(s for s in prod if s.logical_id == "Audit").request
    assert audit["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 1}   # strings as numbers
    assert next(s for s in prod if s.logical_id == "LikedSongs").request["DeletionProtectionEnabled"] is True


@pytest.mark.parametrize("table_name, said", [
    ("!ImportValue shared-table-name", "Fn::ImportValue: a value exported by another stack"),
    ("!GetAtt Other.Arn", "Fn::GetAtt Other.Arn: known only once the stack is deployed"),
    ("!Sub '${Missing}-x'", "Ref of Missing: no parameter or resource of that name"),
    ("!Sub '${Unset}-x'", "parameter Unset has no Default and environments.dev.parameters does not give it"),
])
def test_a_value_checker_cannot_resolve_is_named_not_guessed(table_name, said):
    template = TEMPLATE.replace("TableName: !Sub '${Env}-liked-songs'", f"TableName: {table_name}").replace(
        "Parameters:\n", "Parameters:\n  Unset: {Type: String}\n")
    specs, problems = cloudformation_specs("template.yaml", template, TemplateContext({"Env": "dev"}, "us-east-1",
                                                                                      environment="dev"))
    assert "LikedSongs" not in {s.logical_id for s in specs}
    [problem] = problems
    assert problem.path == "$.Resources.LikedSongs" and said in problem.message, problem


def test_a_template_table_breaking_dynamodbs_rules_is_named_by_its_resource(sam_project):
    (sam_project / "template.yaml").write_text(TEMPLATE.replace("KeyType: RANGE", "KeyType: SORT"))
    result = Cli(sam_project)("validate")
    assert result.exit_code == 1
    assert "template.yaml: $.Resources.LikedSongs.Properties.KeySchema[1].KeyType" in result.output, result.output


def test_plan_and_check_from_the_template_against_what_cloudformation_deployed(sam_project, endpoint):
    cli = Cli(sam_project)
    assert cli("validate").exit_code == 0
    options = ["--endpoint-url", endpoint]
    # nothing deployed yet: a table CloudFormation names can be found only through its stack
    before = cli("plan", *options)
    assert before.exit_code == 1 and "$.Resources.Sessions: no TableName, and the stack app-dev has no such resource" \
        in before.output and "deploy the template to app-dev first" in before.output, before.output
    deploy(endpoint, sam_project, "dev")
    result, report = cli.json("check", *options, "--only", "tables")
    assert result.exit_code == 0, [(r["summary"], r.get("details")) for r in report["results"] if r["status"] != "pass"]
    names = {r["id"] for r in report["results"]}
    assert {"table:LikedSongs", "table:Metadata", "table:Sessions"} <= names, names   # the generated name found
    assert cli("plan", *options, "--detailed-exitcode").exit_code == 0

    # the template gains an index the stack has not deployed: the plan shows it
    changed = TEMPLATE.replace("      StreamSpecification:", """      GlobalSecondaryIndexes:
        - IndexName: byTrack
          KeySchema: [{AttributeName: trackId, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
      StreamSpecification:""")
    (sam_project / "template.yaml").write_text(changed)
    after = cli("plan", *options, "--detailed-exitcode")
    assert after.exit_code == 2 and "byTrack" in after.output, after.output


TERRAFORM = {
    "format_version": "1.2", "terraform_version": "1.9.0",
    "values": {"root_module": {"resources": [], "child_modules": [{"address": "module.cache", "resources": [{
        "address": "module.cache.aws_dynamodb_table.liked", "mode": "managed", "type": "aws_dynamodb_table",
        "name": "liked", "values": {
            "name": "tf-liked-songs", "billing_mode": "PROVISIONED", "read_capacity": 5, "write_capacity": 5,
            "hash_key": "userId", "range_key": "trackId",
            "attribute": [{"name": "userId", "type": "S"}, {"name": "trackId", "type": "S"}, {"name": "addedAt", "type": "N"}],
            "local_secondary_index": [{"name": "byAddedAt", "range_key": "addedAt", "projection_type": "KEYS_ONLY",
                                       "non_key_attributes": []}],
            "global_secondary_index": [], "stream_enabled": False, "ttl": [{"attribute_name": "", "enabled": False}],
            "point_in_time_recovery": [{"enabled": True}], "tags": {"team": "music"}}}]}]}},
}


def test_a_terraform_state_is_a_spec_source(tmp_path, endpoint):
    (tmp_path / "state.json").write_text(json.dumps(TERRAFORM))
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump({"version": 1, "specs": "state.json",
                                                          "environments": {"dev": {"region": "us-east-1"}}}))
    cli = Cli(tmp_path)
    assert cli("validate").exit_code == 0
    plan = cli("plan", "--env", "dev", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert plan.exit_code == 2 and "tf-liked-songs" in plan.output, plan.output
    held = cli("apply", "--env", "dev", "--endpoint-url", endpoint, "--yes")     # Terraform owns it
    assert held.exit_code == 1 and "state.json (module.cache.aws_dynamodb_table.liked) owns this table" in held.output
    assert cli("apply", "--env", "dev", "--endpoint-url", endpoint, "--yes", "--create").exit_code == 0
    table = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1").describe_table(
        TableName="tf-liked-songs")["Table"]
    assert table["LocalSecondaryIndexes"][0]["IndexName"] == "byAddedAt"
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5


def test_the_plan_names_a_table_the_template_has_and_the_account_lacks(sam_project, endpoint):
    """Every table named by the template: the plan shows each missing one under its live name."""
    template = "\n".join(line for line in TEMPLATE.splitlines() if not line.startswith("  Sessions") and
                         "AttributeDefinitions: [{AttributeName: id" not in line)
    template = template.split("  Sessions:")[0]
    (sam_project / "template.yaml").write_text(template)
    cli = Cli(sam_project)
    before = cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode")
    assert before.exit_code == 2 and "dev-liked-songs" in before.output and "dev-liked-songs-metadata" in before.output, \
        before.output
    assert "[owned by template.yaml (LikedSongs): deploy it]" in before.output
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "tables")
    missing = next(r for r in report["results"] if r["id"] == "table:LikedSongs")
    assert missing["status"] == "fail" and missing["remediation"].startswith("deploy template.yaml (LikedSongs)"), missing
    assert "3 made by deploying the template (or `checker apply" in before.output, before.output
    # apply never creates what the template owns (the stack's next deploy would fail): it says to deploy
    held = cli("apply", "--endpoint-url", endpoint, "--yes")
    assert held.exit_code == 1 and "owns this table: deploy the template" in held.output, held.output
    assert boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1").list_tables()["TableNames"] == []
    # --create: apply makes them anyway (a stand-in without the stack, say)
    made = cli("apply", "--endpoint-url", endpoint, "--yes", "--create")
    assert made.exit_code == 0, made.output
    assert cli("plan", "--endpoint-url", endpoint, "--detailed-exitcode").exit_code == 0


APP_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Env: {Type: String, Default: dev}
Resources:
  LikedSongs:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub '${Env}-liked'
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: userId, AttributeType: S}, {AttributeName: addedAt, AttributeType: N}]
      KeySchema: [{AttributeName: userId, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - {IndexName: byAdded, KeySchema: [{AttributeName: addedAt, KeyType: HASH}], Projection: {ProjectionType: ALL}}
  Users:
    Type: AWS::Serverless::SimpleTable
    Properties:
      TableName: !Sub '${Env}-users'
      PrimaryKey: {Name: id, Type: String}
  App:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub 'app-${Env}'
      Runtime: python3.12
      Handler: index.handler
      InlineCode: "def handler(event, context): return {'statusCode': 200}"
      Environment: {Variables: {LIKED_TABLE: !Ref LikedSongs, USERS_TABLE: !Ref Users, MODE: x}}
      Policies:
        - DynamoDBCrudPolicy: {TableName: !Ref LikedSongs}
        - DynamoDBReadPolicy: {TableName: !Ref Users}
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        Health: {Type: HttpApi, Properties: {Path: /health, Method: get}}
        Item: {Type: HttpApi, Properties: {Path: '/items/{id}', Method: get}}
"""


def test_init_from_a_sam_template_then_check_passes_and_shows_the_drift(tmp_path, endpoint):
    """A team with a SAM template: `init --from` writes the checklist (no spec, no permission by
    hand), and `check` on the environment deployed from it passes; the template moves on, the
    check shows what the deployed environment lacks."""
    from checker.iac.cloudformation import load_template
    (tmp_path / "template.yaml").write_text(APP_TEMPLATE)
    translated = sam_translated(tmp_path / "template.yaml", load_template(tmp_path / "template.yaml", APP_TEMPLATE),
                                TemplateContext(region="us-east-1"))
    boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1").create_stack(
        StackName="app-dev", TemplateBody=json.dumps(translated), Capabilities=["CAPABILITY_IAM"])
    # moto's CloudFormation stores a role's inline policy as Python's repr of it; AWS stores JSON
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    role = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1").get_function_configuration(
        FunctionName="app-dev")["Role"].rsplit("/", 1)[1]
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = next(p["PolicyDocument"] for p in translated["Resources"]["AppRole"]["Properties"]["Policies"]
                        if p["PolicyName"] == name)
        resolved = json.loads(json.dumps(document).replace("${AWS::Partition}", "aws").replace(
            "${AWS::Region}", "us-east-1").replace("${AWS::AccountId}", "123456789012"))
        for statement in resolved["Statement"]:
            statement["Resource"] = [r["Fn::Sub"][0].replace("${tableName}", {"LikedSongs": "dev-liked", "Users": "dev-users"}[
                r["Fn::Sub"][1]["tableName"]["Ref"]]) for r in statement["Resource"]]
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps({"Version": "2012-10-17", **resolved}))

    cli = Cli(tmp_path)
    written = cli("init", "--from", "template.yaml", "--region", "us-east-1")
    assert written.exit_code == 0, written.output
    checklist = yaml.safe_load((tmp_path / "checklist.yaml").read_text())
    assert checklist["specs"] == "template.yaml" and not (tmp_path / "table_specs").exists()
    assert checklist["environments"]["dev"]["function_name"] == "app-dev"
    assert checklist["lambda"] == {"required_env": ["LIKED_TABLE", "MODE", "USERS_TABLE"],
                                   "bindings": {"LIKED_TABLE": "LikedSongs", "USERS_TABLE": "Users"}}
    permissions = {(p["table"], p.get("index")): set(p["actions"]) for p in checklist["iam"]["permissions"]}
    assert "dynamodb:PutItem" in permissions[("LikedSongs", None)] and "dynamodb:PutItem" not in permissions[("Users", None)]
    assert permissions[("LikedSongs", "byAdded")] == {"dynamodb:Query", "dynamodb:Scan"}     # table/NAME/index/*
    assert checklist["entry_point"] == {"require": "any", "public": True}     # a Function URL and the HTTP API
    assert [e["path"] for e in checklist["endpoints"]] == ["/health"]           # /items/{id} needs a value
    assert cli("validate").exit_code == 0

    only = ["check", "--endpoint-url", endpoint, "--only", "tables,lambda,bindings,iam"]
    result, report = cli.json(*only)
    assert result.exit_code == 0, [(r["id"], r["summary"]) for r in report["results"] if r["status"] != "pass"]

    (tmp_path / "template.yaml").write_text(APP_TEMPLATE.replace("      PrimaryKey: {Name: id, Type: String}", """\
      PrimaryKey: {Name: id, Type: String}
      SSESpecification: {SSEEnabled: true}"""))
    result, report = cli.json(*only)
    drift = {r["id"]: r for r in report["results"] if r["status"] != "pass"}
    assert result.exit_code == 1 and set(drift) == {"table:Users"}, drift
    assert drift["table:Users"]["remediation"].startswith("deploy template.yaml (Users)")

    # the function and its role are the template's too: their fixes go through it, never an aws line
    lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1")
    variables = lam.get_function_configuration(FunctionName="app-dev")["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName="app-dev", Environment={"Variables": {**variables, "LIKED_TABLE": "x"}})
    iam.delete_role_policy(RoleName=role, PolicyName="AppRolePolicy0")
    result, report = cli.json("check", "--endpoint-url", endpoint, "--only", "bindings,iam")
    fixes = {r["id"]: r["remediation"] for r in report["results"] if r["status"] == "fail"}
    assert fixes["bindings:LIKED_TABLE"] == ("set LIKED_TABLE to !Ref LikedSongs in the function's Environment in "
                                             "template.yaml (App), then deploy the template (it owns the function and its "
                                             "role: an out-of-band aws command would drift from it)"), fixes
    granted = [fix for key, fix in fixes.items() if key.startswith("iam:")]
    assert granted and all("dynamodb:PutItem" in fix or "in template.yaml (App), then deploy" in fix for fix in granted)
    assert not any(f"aws {service} " in fix for fix in fixes.values() for service in ("iam", "lambda")), fixes


CDK_TEMPLATE = {   # what `cdk synth` writes to cdk.out/AppStack.template.json: no TableName, a generated one
    "Resources": {
        "LikedSongsTable8F3E2A1B": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}],
                           "AttributeDefinitions": [{"AttributeName": "userId", "AttributeType": "S"}],
                           "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}},
            "UpdateReplacePolicy": "Retain", "DeletionPolicy": "Retain",
            "Metadata": {"aws:cdk:path": "AppStack/LikedSongs/Resource"}},
        "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:H4sI"}}},
    "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>",
                                        "Default": "/cdk-bootstrap/hnb659fds/version"}},
}


def test_a_cdk_synthesized_template_with_generated_names_through_its_stack(tmp_path, endpoint):
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "AppStack.template.json").write_text(json.dumps(CDK_TEMPLATE))
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "specs": "cdk.out/AppStack.template.json",
        "environments": {"dev": {"region": "us-east-1", "stack": "AppStack"}}}))
    cli = Cli(tmp_path)
    assert cli("validate").exit_code == 0
    deployable = {"Resources": {k: v for k, v in CDK_TEMPLATE["Resources"].items() if k != "CDKMetadata"}}
    boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1").create_stack(
        StackName="AppStack", TemplateBody=json.dumps(deployable))
    result, report = cli.json("check", "--env", "dev", "--endpoint-url", endpoint, "--only", "tables")
    assert result.exit_code == 0, report
    [table] = report["results"]
    assert table["id"] == "table:LikedSongsTable8F3E2A1B" and "AppStack-LikedSongsTable" in table["summary"], table


def test_the_serverless_frameworks_resources_are_read(tmp_path):
    printed = {"service": "app", "provider": {"name": "aws", "runtime": "nodejs20.x"},
               "resources": {"Resources": {"Liked": {"Type": "AWS::DynamoDB::Table", "Properties": {
                   "TableName": "app-liked", "BillingMode": "PAY_PER_REQUEST",
                   "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}}}}}
    specs, problems = cloudformation_specs("serverless.yml", yaml.safe_dump(printed), TemplateContext())
    assert problems == [] and [s.request["TableName"] for s in specs] == ["app-liked"]


def test_aws_account_id_is_read_from_the_environments_credentials_when_a_template_asks(tmp_path, endpoint):
    """Offline (validate) a stand-in account checks the names' shape; plan reads the real one
    (sts:GetCallerIdentity)."""
    template = TEMPLATE.replace("TableName: !Sub '${Env}-liked-songs'", "TableName: !Sub '${Env}-${AWS::AccountId}-songs'")
    template = template.split("  Sessions:")[0]
    (tmp_path / "template.yaml").write_text(template)
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump(CHECKLIST, sort_keys=False))
    cli = Cli(tmp_path)
    assert cli("validate").exit_code == 0
    planned = cli("plan", "--endpoint-url", endpoint)
    assert planned.exit_code == 0 and "dev-123456789012-songs" in planned.output, planned.output


def test_init_from_a_terraform_state(tmp_path):
    """`terraform show -json` of a state: the function, its bindings to the state's tables, its
    role's aws_iam_role_policy grants (table/NAME/index/* as each index's Query/Scan), the URL."""
    state = json.loads(json.dumps(TERRAFORM))
    liked = state["values"]["root_module"]["child_modules"][0]["resources"][0]["values"]
    liked["global_secondary_index"] = [{"name": "byAddedAt2", "hash_key": "addedAt", "range_key": "",
                                        "projection_type": "ALL", "non_key_attributes": [],
                                        "read_capacity": 1, "write_capacity": 1}]
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/tf-liked-songs"
    state["values"]["root_module"]["resources"] = [
        {"address": "aws_lambda_function.app", "mode": "managed", "type": "aws_lambda_function", "name": "app",
         "values": {"function_name": "tf-app", "role": "arn:aws:iam::123456789012:role/tf-app-role",
                    "environment": [{"variables": {"LIKED_TABLE": "tf-liked-songs", "STAGE": "dev"}}]}},
        {"address": "aws_iam_role_policy.app", "mode": "managed", "type": "aws_iam_role_policy", "name": "app",
         "values": {"name": "dynamodb", "role": "tf-app-role", "policy": json.dumps({"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
              "Resource": [arn, f"{arn}/index/*"]}]})}},
        {"address": "aws_lambda_function_url.app", "mode": "managed", "type": "aws_lambda_function_url", "name": "app",
         "values": {"function_name": "tf-app", "authorization_type": "NONE"}}]
    (tmp_path / "state.json").write_text(json.dumps(state))
    cli = Cli(tmp_path)
    written = cli("init", "--from", "state.json", "--region", "us-east-1")
    assert written.exit_code == 0, written.output
    checklist = yaml.safe_load((tmp_path / "checklist.yaml").read_text())
    table = "module.cache.aws_dynamodb_table.liked"
    assert checklist["environments"]["dev"]["function_name"] == "tf-app" and checklist["specs"] == "state.json"
    assert checklist["lambda"] == {"required_env": ["LIKED_TABLE", "STAGE"], "bindings": {"LIKED_TABLE": table}}
    assert {(p["table"], p.get("index")): p["actions"] for p in checklist["iam"]["permissions"]} == {
        (table, None): ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
        (table, "byAddedAt"): ["dynamodb:Query"], (table, "byAddedAt2"): ["dynamodb:Query"]}
    assert checklist["entry_point"] == {"require": "function_url", "public": True}
    assert cli("validate").exit_code == 0


def test_an_entry_points_missing_permission_on_a_template_function_goes_into_the_template():
    from checker.aws import AwsOptions
    from checker.checks.entry_point import EntryPoint, permission_fixes
    from checker.context import CheckContext
    from checker.environment import Environment
    ctx = CheckContext.of(Environment(AwsOptions(region="us-east-1"), function_owner="template.yaml (App)"),
                          function_name="app-dev")
    [fix] = permission_fixes(ctx, EntryPoint("function_url", "app-dev", "https://x.lambda-url.us-east-1.on.aws/",
                                             auth="NONE"), [])
    assert fix.startswith("let the function url invoke the function (SAM: its event or FunctionUrlConfig; "
                          "CloudFormation: an AWS::Lambda::Permission) in template.yaml (App), then deploy")


def test_a_migrations_target_the_template_owns_is_created_by_its_deploy_not_by_migrate(tmp_path, endpoint):
    template = TEMPLATE.split("  Metadata:")[0] + TEMPLATE.split("  Metadata:")[0].split("Resources:\n")[1].replace(
        "LikedSongs:", "LikedSongsV2:", 1).replace("-liked-songs'", "-liked-songs-v2'")
    (tmp_path / "template.yaml").write_text(template)
    checklist = dict(CHECKLIST, tables={"LikedSongsV2": {"migrate_from": "LikedSongs"}})
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump(checklist, sort_keys=False))
    cli = Cli(tmp_path)
    assert cli("validate").exit_code == 0
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    dynamodb.create_table(TableName="dev-liked-songs", BillingMode="PAY_PER_REQUEST",      # the source, as deployed
                          AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("userId", "trackId")],
                          KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"},
                                     {"AttributeName": "trackId", "KeyType": "RANGE"}])
    plan = cli("plan", "--endpoint-url", endpoint)
    assert "migrate-table dev-liked-songs -> dev-liked-songs-v2" in plan.output, plan.output
    done = cli("migrate", "--endpoint-url", endpoint, "--offline", "--yes")
    assert done.exit_code == 1 and "owns this table: deploy the template" in done.output, done.output


@pytest.mark.parametrize("name, text, said", [
    ("t.json", json.dumps({"format_version": "1", "values": {"root_module": {"resources": [
        {"type": "aws_dynamodb_table", "address": "aws_dynamodb_table.x", "values": {"name": "x1x", "attribute": "zz"}}]}}}),
     "$.aws_dynamodb_table.x: not an aws_dynamodb_table's values as terraform show -json writes them"),
    ("t.json", json.dumps({"format_version": "1", "values": {"root_module": {"resources": "nope"}}}),
     "$: declares no DynamoDB table"),
    ("t.yaml", "Resources: {Bucket: {Type: AWS::S3::Bucket}}", "$: declares no DynamoDB table"),
    ("t.yaml", "Resources: []", "$.Resources: a CloudFormation template has a Resources map"),
    ("t.yaml", '!!python/object/apply:os.system ["echo pwned"]', "line 1: not valid YAML"),
])
def test_a_template_checker_cannot_read_is_one_line_naming_where(tmp_path, name, text, said):
    (tmp_path / name).write_text(text)
    (tmp_path / "checklist.yaml").write_text(f"version: 1\nspecs: {name}\nenvironments:\n  dev: {{region: us-east-1}}\n")
    result = Cli(tmp_path)("validate")
    assert result.exit_code == 1 and f"{name}: {said}" in result.output, result.output
    assert "bug in checker" not in result.output and "Traceback" not in result.output


def test_a_short_logical_id_is_a_name_only_the_checklist_uses(tmp_path):
    (tmp_path / "t.yaml").write_text("Resources: {Db: {Type: AWS::DynamoDB::Table, Properties: {TableName: dev-db, "
                                     "BillingMode: PAY_PER_REQUEST, AttributeDefinitions: [{AttributeName: id, "
                                     "AttributeType: S}], KeySchema: [{AttributeName: id, KeyType: HASH}]}}}")
    (tmp_path / "checklist.yaml").write_text("version: 1\nspecs: t.yaml\nenvironments:\n  dev: {region: us-east-1, "
                                             "table_prefix: p-}\nlambda: {bindings: {DB_TABLE: Db}}\n")
    result = Cli(tmp_path)("validate")
    assert result.exit_code == 0, result.output


TABLE_ONLY = ("Resources: {Db: {Type: AWS::DynamoDB::Table, Properties: {TableName: dev-db, BillingMode: PAY_PER_REQUEST, "
              "AttributeDefinitions: [{AttributeName: id, AttributeType: S}], KeySchema: [{AttributeName: id, KeyType: HASH}]}}")


@pytest.mark.parametrize("rest, said", [
    ("}", "declares no AWS::Lambda::Function"),
    (", F: {Type: AWS::Lambda::Function, Properties: {Environment: {Variables: [1]}}}}",
     "its function, role or policies are not what a deployable template holds"),
    (", F: {Type: AWS::Lambda::Function, Properties: {Role: {'Fn::GetAtt': [R, Arn]}}}, R: {Type: AWS::IAM::Role, "
     "Properties: {Policies: [7]}}}", "its function, role or policies are not what a deployable template holds"),
])
def test_init_from_a_template_it_cannot_read_writes_nothing_and_says_why(tmp_path, rest, said):
    (tmp_path / "t.yaml").write_text(TABLE_ONLY + rest)
    result = Cli(tmp_path)("init", "--from", "t.yaml")
    assert result.exit_code == 1 and said in result.output and "bug in checker" not in result.output, result.output
    assert not (tmp_path / "checklist.yaml").exists()
