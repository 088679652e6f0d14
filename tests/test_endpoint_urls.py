"""Endpoints written relative to the environment's base URL: path, query, action."""
from __future__ import annotations

import boto3
import pytest

from checker.checklist import Endpoint
from checker.checks.endpoints import endpoint_url

REST = "https://abc.execute-api.us-east-1.amazonaws.com/dev/spotify-playlist-dev"


@pytest.mark.parametrize("endpoint, base, expected", [
    (Endpoint("a", action="liked-songs-stats"), REST, f"{REST}?action=liked-songs-stats"),
    (Endpoint("b", path="/liked-songs-stats"), "https://x.lambda-url.us-east-1.on.aws/",
     "https://x.lambda-url.us-east-1.on.aws/liked-songs-stats"),
    (Endpoint("c", path="/api/health"), REST, f"{REST}/api/health"),   # the stage and resource are kept
    (Endpoint("d", path="/x", query={"limit": 5, "full": True}), f"{REST}/?key=k&limit=1",
     f"{REST}/x?key=k&limit=5&full=true"),                             # the base's query kept, the endpoint's wins
    (Endpoint("e", query={"action": "a"}, action="b"), REST, f"{REST}?action=b"),
    (Endpoint("f", url="http://other/"), REST, "http://other/"),
])
def test_endpoint_urls(endpoint, base, expected):
    assert endpoint_url(endpoint, base) == expected


def test_url_excludes_the_relative_forms(cli, project):
    (project / "checklist.yaml").write_text("version: 1\nenvironments: {dev: {}}\nendpoints:\n"
                                            "  - {name: x, url: 'http://a/', path: /b}\n")
    result = cli("validate")
    assert result.exit_code == 1 and "$.endpoints[0]" in result.stdout


@pytest.mark.parametrize("endpoint_url, region, expected", [
    (None, "eu-west-1", "https://abc.execute-api.eu-west-1.amazonaws.com/dev/orders"),
    (None, "cn-north-1", "https://abc.execute-api.cn-north-1.amazonaws.com.cn/dev/orders"),
    ("http://127.0.0.1:4566", "us-east-1", "http://127.0.0.1:4566/restapis/abc/dev/_user_request_/orders"),
])
def test_a_rest_apis_invoke_url_on_aws_and_on_an_emulator(endpoint_url, region, expected):
    from checker.checks.entry_point import rest_invoke_url
    client = boto3.client("apigateway", region_name=region, endpoint_url=endpoint_url)
    assert rest_invoke_url(client, "abc", "dev", "/orders") == expected


def test_a_host_that_does_not_resolve_is_one_line_at_once_and_never_retried():
    """A DNS failure is no 503: no retry helps, and the next endpoint on that host is told at once."""
    from checker.checks.endpoints import check_endpoint
    slept: list = []
    unresolved: set = set()
    first = check_endpoint(Endpoint("a", path="/health", retries=5, retry_delay=30), "http://nosuch.invalid/",
                           sleep=slept.append, unresolved=unresolved)
    assert first.status.value == "fail" and slept == []
    assert first.found == "host nosuch.invalid does not resolve (not retried)"
    assert unresolved == {"nosuch.invalid"}

    class NoRequests:
        def request(self, *args, **kwargs):
            raise AssertionError("a host known not to resolve was asked again")
    second = check_endpoint(Endpoint("b", path="/stats"), "http://nosuch.invalid/", http=NoRequests(),
                            unresolved=unresolved)
    assert "does not resolve" in second.summary


class Answers503:
    """A stand-in for urllib3's pool: every request answered 503, each one counted."""

    def __init__(self):
        self.methods: list = []

    def request(self, method, url, **kwargs):
        self.methods.append(method)

        class Response:
            status = 503

            def read(self, amount):
                return b"warming up"

            def release_conn(self):
                pass
        return Response()


@pytest.mark.parametrize("endpoint, sent", [
    (Endpoint("get", path="/"), 3),                        # idempotent: 2 retries by default
    (Endpoint("delete", method="DELETE", path="/"), 3),
    (Endpoint("post", method="POST", path="/"), 1),        # a retried POST may create a second record
    (Endpoint("patch", method="PATCH", path="/"), 1),
    (Endpoint("post-retried", method="POST", path="/", retries=2), 3),   # unless retries: says so
    (Endpoint("get-once", path="/", retries=0), 1),
])
def test_only_idempotent_methods_are_retried_unless_retries_says_so(endpoint, sent):
    from checker.checks.endpoints import check_endpoint
    http = Answers503()
    result = check_endpoint(endpoint, "http://127.0.0.1:9/", http=http, sleep=lambda seconds: None)
    assert result.status.value == "fail" and http.methods == [endpoint.method] * sent
    assert result.found == f"HTTP 503: warming up (after {sent} attempt(s))"


@pytest.mark.parametrize("entry_point, base, rebased_to", [
    ("https://abc.execute-api.us-east-1.amazonaws.com/dev/spotify-playlist-dev", "http://127.0.0.1:8080",
     "http://127.0.0.1:8080/dev/spotify-playlist-dev"),                   # a REST API: stage and resource kept
    ("http://127.0.0.1:5000/restapis/abc/dev/_user_request_/spotify-playlist-dev", "http://127.0.0.1:8080",
     "http://127.0.0.1:8080/dev/spotify-playlist-dev"),                   # an emulator's form: as on AWS
    ("https://x.lambda-url.us-east-1.on.aws/", "https://staging.example/app", "https://staging.example/app/"),
    (None, "http://127.0.0.1:8080/base", "http://127.0.0.1:8080/base"),  # no entry point found: the base URL
    ("https://abc.execute-api.us-east-1.amazonaws.com/dev/spotify-playlist-dev",
     "https://abc.execute-api.us-east-1.amazonaws.com/dev/spotify-playlist-dev",
     "https://abc.execute-api.us-east-1.amazonaws.com/dev/spotify-playlist-dev"),   # the stage given twice: once
])
def test_a_base_url_overrides_an_entry_point_keeping_its_path(entry_point, base, rebased_to):
    from checker.checks.endpoints import rebased
    assert rebased(entry_point, base) == rebased_to


def test_an_http_apis_listings_are_read_to_their_last_page():
    """An integration on a later page of GetIntegrations is still the function's entry point."""
    from botocore.stub import Stubber

    from checker.aws import AwsOptions
    from checker.checklist import Checklist
    from checker.checks.entry_point import every_item
    from checker.context import CheckContext
    ctx = CheckContext(AwsOptions(region="us-east-1"), [], Checklist("c.yaml"), "f", None, 0)
    client = boto3.client("apigatewayv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("get_integrations", {"Items": [{"IntegrationId": "a"}], "NextToken": "2"}, {"ApiId": "api"})
    stub.add_response("get_integrations", {"Items": [{"IntegrationId": "b"}]}, {"ApiId": "api", "NextToken": "2"})
    ctx._clients[("apigatewayv2", False)] = client
    with stub:
        assert [i["IntegrationId"] for i in every_item(ctx, "GetIntegrations", "api")] == ["a", "b"]
    stub.assert_no_pending_responses()
