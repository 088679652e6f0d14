"""The IAM check's order of evaluation, with botocore's Stubber standing for the IAM simulator
(moto implements neither simulate call): SimulatePrincipalPolicy, else SimulateCustomPolicy with
the role's documents, else checker's own evaluator; conditions are warnings, never passes."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from checker.aws import AwsOptions
from checker.checklist import Checklist, Permission
from checker.checks.iam import check_iam
from checker.context import CheckContext
from checker.iam_policy import least_privilege_policy
from checker.model import ExpectedTable, TableSpec

from .conftest import REGION, load_spec

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app-role"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/liked_songs_metadata"
PERMISSION = Permission("liked_songs_metadata", ("dynamodb:GetItem", "dynamodb:PutItem"))
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Meta", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": TABLE_ARN}]}


def result(action, decision, missing=()):
    return {"EvalActionName": action, "EvalResourceName": TABLE_ARN, "EvalDecision": decision,
            "MatchedStatements": [{"SourcePolicyId": "Meta"}], "MissingContextValues": list(missing)}


class Iam:
    """Two stubbed IAM clients, as the check asks for them: one single-attempt (the simulators),
    one with retries (reading the role's policies)."""

    def __init__(self):
        self.simulator = boto3.client("iam", region_name=REGION)
        self.reader = boto3.client("iam", region_name=REGION)
        self.simulator_stub = Stubber(self.simulator)
        self.reader_stub = Stubber(self.reader)

    def role_documents(self, document=POLICY):
        self.reader_stub.add_response("list_role_policies", {"PolicyNames": ["inline"], "IsTruncated": False})
        self.reader_stub.add_response("get_role_policy", {"RoleName": "app-role", "PolicyName": "inline",
                                                          "PolicyDocument": json.dumps(document)})
        self.reader_stub.add_response("list_attached_role_policies", {"AttachedPolicies": [], "IsTruncated": False})

    def context(self, warn_broad_grants=False):
        table = ExpectedTable(TableSpec("m.json", load_spec("liked_songs_metadata")), spec_name="liked_songs_metadata")
        ctx = CheckContext(aws=AwsOptions(region=REGION), tables=[table],
                           checklist=Checklist("checklist.yaml", permissions=(PERMISSION,),
                                               warn_broad_grants=warn_broad_grants),
                           function_name="app", base_url=None, since_ms=0)
        ctx._clients[("iam", True)] = self.simulator
        ctx._clients[("iam", False)] = self.reader
        ctx.__dict__["function"] = {"Role": ROLE_ARN,
                                    "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:app"}
        return ctx

    def run(self, **kwargs):
        with self.simulator_stub, self.reader_stub:
            results = check_iam(self.context(**kwargs))
            self.simulator_stub.assert_no_pending_responses()
            self.reader_stub.assert_no_pending_responses()
        return results


@pytest.fixture
def iam():
    return Iam()


def test_the_principal_simulator_decides_first(iam):
    iam.simulator_stub.add_response(
        "simulate_principal_policy",
        {"EvaluationResults": [result("dynamodb:GetItem", "allowed"), result("dynamodb:PutItem", "allowed")]},
        {"PolicySourceArn": ROLE_ARN, "ActionNames": ["dynamodb:GetItem", "dynamodb:PutItem"],
         "ResourceArns": [TABLE_ARN]})
    (outcome,) = iam.run()
    assert outcome.status == "pass" and outcome.found.endswith("[iam:SimulatePrincipalPolicy]")


def test_refused_principal_simulation_falls_back_to_the_custom_simulator_with_the_roles_documents(iam):
    iam.simulator_stub.add_client_error("simulate_principal_policy", "AccessDenied", http_status_code=403)
    iam.role_documents()
    iam.simulator_stub.add_response(
        "simulate_custom_policy",
        {"EvaluationResults": [result("dynamodb:GetItem", "allowed"), result("dynamodb:PutItem", "implicitDeny")]},
        {"PolicyInputList": [json.dumps(POLICY)], "ActionNames": ["dynamodb:GetItem", "dynamodb:PutItem"],
         "ResourceArns": [TABLE_ARN]})
    (outcome,) = iam.run()
    assert outcome.status == "fail"
    assert f"dynamodb:PutItem on {TABLE_ARN} (no statement allows it" in outcome.found
    assert outcome.found.endswith("[iam:SimulateCustomPolicy with the role's 1 policies "
                                  "(SimulatePrincipalPolicy: AccessDenied)]")


def test_a_simulator_answer_that_needs_context_is_a_warning_naming_the_keys(iam):
    iam.simulator_stub.add_response("simulate_principal_policy", {"EvaluationResults": [
        result("dynamodb:GetItem", "allowed"), result("dynamodb:PutItem", "allowed", ["aws:SourceVpce"])]})
    (outcome,) = iam.run()
    assert outcome.status == "warn"
    assert f"dynamodb:PutItem on {TABLE_ARN} (conditional allow in Meta on aws:SourceVpce)" in outcome.found


def test_with_no_simulator_the_local_evaluator_warns_on_conditions(iam):
    conditional = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Meta", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": TABLE_ARN},
        {"Sid": "OnlyVpc", "Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}]}
    iam.simulator_stub.add_client_error("simulate_principal_policy", "NotImplemented", http_status_code=501)
    iam.role_documents(conditional)
    iam.simulator_stub.add_client_error("simulate_custom_policy", "AccessDenied", http_status_code=403)
    outcomes = iam.run(warn_broad_grants=True)
    assert [o.id for o in outcomes] == ["iam:liked_songs_metadata", "iam:broad-grants"]
    assert outcomes[0].status == "warn"
    assert ("dynamodb:PutItem on " + TABLE_ARN + " (conditional deny in OnlyVpc on StringNotEquals:aws:SourceVpce)"
            in outcomes[0].found)
    assert ("conditions not evaluated (SimulatePrincipalPolicy: NotImplemented; SimulateCustomPolicy: AccessDenied)"
            in outcomes[0].found)
    assert outcomes[1].status == "pass"  # a Deny on "*" grants nothing: not a broad grant


def test_least_privilege_policy_names_each_table_and_index_arn():
    tables = [ExpectedTable(TableSpec("l.json", load_spec("liked_songs")).for_environment("", "-prod"),
                            spec_name="liked_songs")]
    permissions = [Permission("liked_songs", ("dynamodb:Query", "dynamodb:BatchWriteItem")),
                   Permission("liked_songs", ("dynamodb:Query",), index="userId-addedAt-index")]
    policy = least_privilege_policy(permissions, tables, REGION, ACCOUNT)
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/liked_songs-prod"
    assert policy["Statement"] == [
        {"Sid": "LikedSongsProd", "Effect": "Allow", "Action": ["dynamodb:BatchWriteItem", "dynamodb:Query"],
         "Resource": arn},
        {"Sid": "LikedSongsProdIndexUserIdAddedAtIndex", "Effect": "Allow", "Action": ["dynamodb:Query"],
         "Resource": f"{arn}/index/userId-addedAt-index"}]
