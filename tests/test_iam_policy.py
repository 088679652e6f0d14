"""The policy evaluator used where iam:SimulatePrincipalPolicy is unavailable."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from checker.iam_policy import broad_grants, evaluate

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/liked_songs"
INDEX = f"{TABLE}/index/userId-addedAt-index"


def policy(*statements):
    return [("inline", {"Version": "2012-10-17", "Statement": list(statements)})]


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_exact_allow_and_implicit_deny():
    documents = policy(allow("dynamodb:Query", TABLE))
    assert evaluate(documents, "dynamodb:Query", TABLE).allowed
    assert not evaluate(documents, "dynamodb:Query", INDEX).allowed
    assert evaluate(documents, "dynamodb:PutItem", TABLE).reason == "no statement allows it"


def test_wildcards_and_action_case():
    documents = policy(allow(["dynamodb:Get*", "DynamoDB:query"], f"{TABLE}*"))
    assert evaluate(documents, "dynamodb:GetItem", TABLE).allowed
    assert evaluate(documents, "dynamodb:Query", INDEX).allowed
    assert not evaluate(documents, "dynamodb:PutItem", TABLE).allowed
    assert evaluate(policy(allow("dynamodb:?etItem", TABLE)), "dynamodb:GetItem", TABLE).allowed


def test_resources_are_case_sensitive():
    assert not evaluate(policy(allow("dynamodb:Query", TABLE.upper())), "dynamodb:Query", TABLE).allowed


def test_explicit_deny_beats_allow_whatever_the_order():
    deny = {"Sid": "NoWrites", "Effect": "Deny", "Action": "dynamodb:*Item", "Resource": "*"}
    for statements in ([allow("dynamodb:*", "*"), deny], [deny, allow("dynamodb:*", "*")]):
        decision = evaluate(policy(*statements), "dynamodb:PutItem", TABLE)
        assert (decision.allowed, decision.reason, decision.statement) == (False, "explicit deny", "NoWrites")
    assert evaluate(policy(allow("dynamodb:*", "*"), deny), "dynamodb:Query", TABLE).allowed


def test_not_action_and_not_resource():
    documents = policy({"Effect": "Allow", "NotAction": "dynamodb:DeleteTable", "Resource": TABLE})
    assert evaluate(documents, "dynamodb:Query", TABLE).allowed
    assert not evaluate(documents, "dynamodb:DeleteTable", TABLE).allowed
    documents = policy({"Effect": "Allow", "Action": "dynamodb:Query", "NotResource": INDEX})
    assert evaluate(documents, "dynamodb:Query", TABLE).allowed
    assert not evaluate(documents, "dynamodb:Query", INDEX).allowed


def test_statements_across_several_policies_and_encoded_documents():
    documents = [("a", json.dumps({"Statement": allow("dynamodb:Query", TABLE)})),
                 ("b", quote(json.dumps({"Statement": [allow("dynamodb:PutItem", TABLE)]})))]
    assert evaluate(documents, "dynamodb:Query", TABLE).allowed
    decision = evaluate(documents, "dynamodb:PutItem", TABLE)
    assert decision.allowed and decision.statement == "b[0]"


def test_a_conditional_allow_is_not_counted_as_allowed_and_names_its_condition():
    documents = policy(allow("dynamodb:Query", TABLE, Condition={"Bool": {"aws:SecureTransport": "true"}}))
    decision = evaluate(documents, "dynamodb:Query", TABLE)
    assert (decision.allowed, decision.denied, decision.reason) == (False, False, "conditional allow")
    assert decision.conditions == ("Bool:aws:SecureTransport",)
    # an unconditional Allow beside it decides
    documents.append(("other", {"Statement": [allow("dynamodb:Query", TABLE)]}))
    assert evaluate(documents, "dynamodb:Query", TABLE).allowed


def test_a_conditional_deny_is_not_an_unconditional_deny():
    deny = {"Sid": "OnlyFromVpc", "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}
    decision = evaluate(policy(allow("dynamodb:Query", TABLE), deny), "dynamodb:Query", TABLE)
    assert (decision.reason, decision.statement, decision.conditions) == (
        "conditional deny", "OnlyFromVpc", ("StringNotEquals:aws:SourceVpce",))
    assert not decision.allowed and not decision.denied
    # with nothing allowing it, it stays an implicit deny
    assert evaluate(policy(deny), "dynamodb:Query", TABLE).reason == "no statement allows it"
    # an unconditional Deny still wins over everything
    hard = {"Effect": "Deny", "Action": "dynamodb:Query", "Resource": TABLE}
    assert evaluate(policy(allow("dynamodb:Query", TABLE), deny, hard), "dynamodb:Query", TABLE).reason == \
        "explicit deny"


def test_brackets_are_literal_iam_knows_only_star_and_question_mark():
    documents = policy(allow("dynamodb:[GP]etItem", TABLE))
    assert not evaluate(documents, "dynamodb:GetItem", TABLE).allowed
    assert evaluate(documents, "dynamodb:[GP]etItem", TABLE).allowed
    assert evaluate(policy(allow("dynamodb:Query", "arn:aws:dynamodb:*:*:table/liked_songs.v2")),
                    "dynamodb:Query", "arn:aws:dynamodb:r:1:table/liked_songs.v2").allowed
    assert not evaluate(policy(allow("dynamodb:Query", "arn:aws:dynamodb:*:*:table/liked_songs.v2")),
                        "dynamodb:Query", "arn:aws:dynamodb:r:1:table/liked_songsXv2").allowed


def test_broad_grants():
    assert broad_grants(policy(allow("dynamodb:Query", TABLE))) == []
    assert broad_grants(policy(allow("dynamodb:*", TABLE))) == ["inline[0]: Action dynamodb:*"]
    assert broad_grants(policy(allow("dynamodb:Query", "*"))) == ['inline[0]: Resource "*"']
    assert broad_grants(policy(allow("*", "*"), allow("s3:GetObject", "*"))) == [
        "inline[0]: Action *", 'inline[0]: Resource "*"']
    assert broad_grants(policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": TABLE})) == [
        "inline[0]: NotAction allows everything else"]


def test_every_botocore_operation_is_an_iam_action_or_names_the_actions_it_needs():
    """The checked-in list follows AWS's reference; botocore's models say which operations exist."""
    import botocore.session

    from checker.iam_actions import ACTIONS, OPERATIONS_AUTHORIZED_BY
    session = botocore.session.get_session()
    operations = {op for service in ("dynamodb", "dynamodbstreams")
                  for op in session.get_service_model(service).operation_names}
    assert operations - ACTIONS == set(OPERATIONS_AUTHORIZED_BY)
    assert all(set(needed) <= ACTIONS for needed in OPERATIONS_AUTHORIZED_BY.values())


@pytest.mark.parametrize("entry, message", [
    ("{table: user, actions: [dynamodb:GetItm]}",
     "$.iam.permissions[0].actions[0]: dynamodb:GetItm is not a DynamoDB IAM action (did you mean dynamodb:GetItem?)"),
    ("{table: track, index: by-custmer, actions: [dynamodb:Query]}",
     "$.iam.permissions[0].index: table track has no index 'by-custmer' (its indexes: status-id-index)"),
    ("{table: user, actions: [dynamodb:TransactWriteItems]}",
     "dynamodb:TransactWriteItems is an API operation, not an IAM action: it is authorized by dynamodb:PutItem, "
     "dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:ConditionCheckItem"),
    ("{table: usr, actions: [dynamodb:GetItem]}",
     "$.iam.permissions[0].table: no table spec has TableName 'usr' (did you mean user?)"),
])
def test_permissions_are_validated_offline(cli, project, entry, message):
    (project / "checklist.yaml").write_text(f"version: 1\nenvironments: {{dev: {{}}}}\niam:\n  permissions:\n    - {entry}\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert message in result.stdout
    assert cli("iam-policy", "--env", "dev", "--account-id", "123456789012", "--region", "us-east-1").exit_code == 1


def test_stream_actions_are_granted_on_the_stream_arn():
    from checker.checklist import Permission
    from checker.iam_policy import required_pairs
    pairs = required_pairs([Permission("user", ("dynamodb:GetRecords", "dynamodb:GetItem"))], [], "us-east-1", "1")
    assert [r for _, _, r in pairs] == ["arn:aws:dynamodb:us-east-1:1:table/user/stream/*",
                                       "arn:aws:dynamodb:us-east-1:1:table/user"]


SOURCE = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/GET/liked-songs"


@pytest.mark.parametrize("condition, holds", [
    (None, True),
    ({"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/*"}}, True),   # moto's spelling
    ({"ArnLike": {"aws:sourcearn": "arn:aws:execute-api:us-east-1:123456789012:other/*"}}, False),
    ({"ArnLike": {"AWS:SourceArn": "<the execute-api ARN>"}}, False),   # a pasted placeholder allows nothing
    ({"ArnEquals": {"aws:SourceArn": SOURCE}}, True),
    ({"ArnNotLike": {"aws:SourceArn": "arn:aws:execute-api:*:*:abc123/*"}}, False),
    ({"StringEquals": {"AWS:SourceAccount": "123456789012"}}, True),
    ({"StringEquals": {"AWS:SourceAccount": "999999999999"}}, False),
    ({"StringEquals": {"AWS:SourceAccount": ["1", "123456789012"]},
      "ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/*"}}, True),
    ({"StringEquals": {"aws:PrincipalOrgID": "o-123"}}, False),          # a key the request does not carry
    ({"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-123"}}, True),
    ({"StringNotEquals": {"aws:PrincipalOrgID": "o-123"}}, True),
    ({"Null": {"aws:SourceArn": "false"}}, True),
    ({"Null": {"aws:SourceArn": "true"}}, False),
    ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, None),   # not evaluated: said, never guessed
    ({"ForAnyValue:StringLike": {"aws:SourceArn": "*"}}, None),
])
def test_a_condition_is_evaluated_as_iam_does_or_said_to_be_unevaluated(condition, holds):
    from checker.iam_policy import condition_holds
    assert condition_holds(condition, {"aws:SourceArn": SOURCE, "aws:SourceAccount": "123456789012"}) is holds
