"""Properties over generated input (hypothesis): whatever the checklist, the options and what AWS
or the app answers, checker ends with exit 0 or 1 (2 only for plan's detailed exit code), at most
one `error:` line and no traceback, within its deadline, and no planted secret in any output.

A CI profile (derandomized, 40 examples a property) runs in `make test`; HYPOTHESIS_PROFILE=dev
runs more, with fresh randomness, by hand.
"""
from __future__ import annotations

import json
import os
import time
from urllib.parse import quote, quote_plus

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker.local.http import LocalServer, send

settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("dev", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SLACK = 6.0
SECRET = "s3cr3t-PLANTED-x9"

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(["ACTIVE", "CREATING", "HASH", "S", "PAY_PER_REQUEST",
                                                           SECRET, "\n25 checks: 25 passed\x1b[2J"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
table_fields = st.fixed_dictionaries({}, optional={
    "TableName": st.one_of(st.just("user"), scalars), "TableStatus": st.one_of(st.just("ACTIVE"), scalars),
    "KeySchema": st.one_of(st.just([{"AttributeName": "id", "KeyType": "HASH"}]), json_values),
    "AttributeDefinitions": st.one_of(st.just([{"AttributeName": "id", "AttributeType": "S"}]), json_values),
    "BillingModeSummary": st.one_of(st.just({"BillingMode": "PAY_PER_REQUEST"}), json_values),
    "GlobalSecondaryIndexes": json_values, "TableArn": st.one_of(st.just("arn:aws:dynamodb:us-east-1:1:table/user"),
                                                                 scalars),
})
aws_answers = st.one_of(
    st.tuples(st.just(200), st.builds(lambda table: {"Table": table}, table_fields)),
    st.tuples(st.sampled_from([200, 400, 500]), json_values),
    st.tuples(st.just(400), st.builds(lambda kind, message: {"__type": f"com.amazonaws.dynamodb.v20120810#{kind}",
                                                             "message": message},
                                      st.sampled_from(["ResourceNotFoundException", "AccessDeniedException",
                                                       "ValidationException", "LimitExceededException"]),
                                      st.one_of(st.text(max_size=40), st.just(f"bad token {SECRET}")))),
    st.tuples(st.sampled_from([200, 502]), st.text(max_size=60)),
)


class Answering:
    """An HTTP server that answers every request with the answer of the current example."""

    def __init__(self):
        self.status, self.body, self.headers = 200, b"{}", {}
        self.server = LocalServer(self.route).start()

    def route(self, handler, method):
        handler.body()
        send(handler, self.status, self.body, self.headers, "application/x-amz-json-1.0")

    def answer(self, status: int, document) -> None:
        self.status = status
        self.body = (document if isinstance(document, str) else json.dumps(document)).encode()


@pytest.fixture(scope="module")
def answering():
    server = Answering()
    yield server
    server.server.stop()


def planted(text: str, value: str = SECRET) -> bool:
    return any(form in text for form in {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]})


def assert_well_behaved(result, allowed=(0, 1)):
    assert result.exit_code in allowed, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, result.stderr
    if result.exit_code == 1 and not result.stdout.strip():
        assert len(errors) == 1, result.stderr
    assert not planted(result.output)


@given(answer=aws_answers, region=st.sampled_from(["us-east-1", "eu-west-1", "x" * 300, "local"]),
       detailed=st.booleans())
def test_plan_survives_any_aws_answer(cli, project, answering, monkeypatch, answer, region, detailed):
    monkeypatch.setenv("PLANTED_TOKEN", SECRET)
    (project / "checklist.yaml").write_text("version: 1\nenvironments:\n  dev:\n"
                                            "    base_url: https://h/${PLANTED_TOKEN}\n")
    answering.answer(*answer)
    started = time.monotonic()
    result = cli("plan", "--env", "dev", "--endpoint-url", answering.server.url, "--region", region,
                 "--max-attempts", "1", "--timeout", "2", *(["--detailed-exitcode"] if detailed else []))
    assert time.monotonic() - started < 2 + SLACK
    assert_well_behaved(result, (0, 1, 2) if detailed else (0, 1))


endpoint_fields = st.fixed_dictionaries({"name": st.just("e")}, optional={
    "method": st.sampled_from(["GET", "POST", "PUT"]),
    "path": st.sampled_from(["/", "/x/${PLANTED_TOKEN}", "/a b/ü", "/%zz"]),
    "query": st.dictionaries(st.sampled_from(["sig", "page", "q", "access_token"]),
                             st.one_of(st.just("${PLANTED_TOKEN}"), st.text(max_size=8), st.integers(), st.booleans()),
                             max_size=3),
    "headers": st.dictionaries(st.sampled_from(["X-Trace", "Authorization", "Accept"]),
                               st.one_of(st.just("${PLANTED_TOKEN}"), st.text(max_size=10)), max_size=2),
    "body": st.one_of(json_values, st.just({"password": "${PLANTED_TOKEN}"})),
    "expect_status": st.sampled_from([200, 201, 404]),
    "schema": st.sampled_from([{"type": "object"}, {"type": "object", "required": ["status"]}, {}]),
    "timeout": st.sampled_from([0.5, 1, 300, 1e300]),
    "retries": st.sampled_from([0, 1, 25]),
    "retry_delay": st.sampled_from([0, 0.1, 100000]),
})
app_answers = st.tuples(st.sampled_from([200, 201, 404, 500]),
                        st.one_of(json_values, st.text(max_size=80),
                                  st.just("[" * 5000 + "]" * 5000),
                                  st.builds(lambda v: {"echo": v, "token": SECRET}, json_values)))


@given(endpoint=endpoint_fields, answer=app_answers, output_format=st.sampled_from(["text", "json", "junit"]))
def test_check_survives_any_endpoint_and_any_answer(cli, project, answering, monkeypatch, endpoint, answer,
                                                    output_format):
    monkeypatch.setenv("PLANTED_TOKEN", SECRET)
    answering.answer(*answer)
    endpoint = {**endpoint, "timeout": min(endpoint.get("timeout", 1), 1), "retry_delay": 0} \
        if endpoint.get("timeout", 1) <= 300 and endpoint.get("retry_delay", 0) <= 300 and \
        endpoint.get("retries", 0) <= 20 else endpoint   # out of bounds: validate refuses it, as checked below
    (project / "checklist.yaml").write_text(yaml.safe_dump({
        "version": 1, "environments": {"dev": {"base_url": answering.server.url}},
        "entry_point": {"require": "none"}, "endpoints": [endpoint]}))
    started = time.monotonic()
    result = cli("check", "--env", "dev", "--only", "endpoints", "--format", output_format, "--timeout", "10")
    attempts = endpoint.get("retries", 2) + 1 if endpoint.get("retries", 2) <= 20 else 1
    assert time.monotonic() - started < attempts * 1 + SLACK
    assert_well_behaved(result)
    if output_format == "text":  # no forged line: every line is a result, its details, or the summary
        for line in result.stdout.splitlines():
            assert line.startswith(("PASS ", "WARN ", "FAIL ", "ERROR ", "SKIP ", "      ")) or " checks: " in line, line


@given(document=json_values)
def test_validate_survives_any_checklist(cli, project, document):
    (project / "checklist.yaml").write_text(yaml.safe_dump(document) if not isinstance(document, str)
                                            else document)
    result = cli("validate")
    assert result.exit_code in (0, 1) and "Traceback" not in result.output
    if result.exit_code == 1:
        assert result.stdout.strip().splitlines()[-1].endswith("problem(s) found") or result.stderr.startswith("error:")


# -- every DynamoDB type through the one codec -------------------------------------------------------
# within DynamoDB's 38 significant digits (a 39-digit number is no DynamoDB value)
numbers = st.decimals(allow_nan=False, allow_infinity=False, places=10, min_value=-10**20, max_value=10**20).map(
    lambda d: format(d.normalize(), "f") if d == d.to_integral_value() else str(d))
scalars = st.one_of(
    st.text(max_size=20).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    st.binary(max_size=20).map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(min_size=1, max_size=8), min_size=1, max_size=4).map(lambda s: {"SS": sorted(s)}),
    st.sets(st.integers(-10**6, 10**6), min_size=1, max_size=4).map(lambda s: {"NS": [str(n) for n in sorted(s)]}),
    st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=4).map(lambda s: {"BS": sorted(s)}),
)
attribute_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda values: {"L": values}),
    st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3).map(lambda values: {"M": values})),
    max_leaves=8)
wire_items = st.dictionaries(st.text(min_size=1, max_size=8), attribute_values, max_size=5).map(
    lambda item: {"id": {"S": "k"}, **item})


@given(item=wire_items)
def test_every_dynamodb_type_round_trips_through_the_codec_and_the_checksum(item):
    """B, BS, NS, SS, NULL, BOOL, nested L and M: wire -> plain -> wire is the same DynamoDB item,
    the checksum and the canonical form see them as equal, and both are JSON (the ledger's)."""
    from checker.items import canonical, plain_item, wire_item
    from checker.migrate.checksum import Checksum
    plain = plain_item(item)
    again = plain_item(wire_item(plain))
    assert canonical(again) == canonical(plain)
    assert json.loads(json.dumps(canonical(plain))) == canonical(plain)
    first, second = Checksum(), Checksum()
    first.add(plain, ("id",))
    second.add(again, ("id",))
    assert first.total == second.total
