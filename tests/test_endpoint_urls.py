"""Endpoints written relative to the environment's base URL: path, query, action."""
from __future__ import annotations

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
