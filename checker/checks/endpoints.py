"""HTTP endpoint checks: method, URL or `?action=`, headers, expected status, a JSON Schema for
the body, timeout, and retries with a delay (a fresh deploy may need a few seconds).

Secrets are masked before anything reaches a result: the values of sensitive headers and query
parameters, URL passwords, and any of those values wherever they appear (an app echoing a token
in an error body included).
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jsonschema
import urllib3

from ..checklist import Endpoint
from ..context import CheckContext
from ..results import CheckResult, Status
from .entry_point import discovered_base_url

MASK = "***"
SENSITIVE = re.compile(r"auth|token|secret|key|password|passwd|signature|session|cookie|credential|^code$"
                       r"|^x-amz-security", re.IGNORECASE)
EXCERPT = 200


class Redactor:
    """Collects secret values and masks them in any text."""

    def __init__(self):
        self.secrets: set = set()

    def add(self, value: str) -> None:
        if value and len(value) >= 4:
            self.secrets.add(value)
            if " " in value:  # "Bearer abc": the credential alone may be echoed too
                self.secrets.update(p for p in value.split(" ") if len(p) >= 4 and p.lower() != "bearer")

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def endpoint_url(endpoint: Endpoint, base_url: Optional[str]) -> str:
    if endpoint.url:
        return endpoint.url
    if not base_url:
        raise ValueError("no base URL: set base_url in the checklist environment, pass --base-url, "
                         "or give the function a Function URL / API Gateway entry point")
    if not endpoint.action:
        return base_url
    separator = "&" if urlsplit(base_url).query else "?"
    return f"{base_url}{separator}{urlencode({'action': endpoint.action})}"


def collect_secrets(url: str, headers: dict, redactor: Redactor) -> None:
    parts = urlsplit(url)
    if parts.password:
        redactor.add(parts.password)
    for name, value in parse_qsl(parts.query):
        if SENSITIVE.search(name):
            redactor.add(value)
    for name, value in headers.items():
        if SENSITIVE.search(name):
            redactor.add(value)


def masked_url(url: str) -> str:
    parts = urlsplit(url)
    query = urlencode([(n, MASK if SENSITIVE.search(n) else v) for n, v in parse_qsl(parts.query)], safe="*")
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def attempt(http: urllib3.PoolManager, endpoint: Endpoint, url: str) -> tuple:
    """One request: (ok, found) where found says what came back."""
    body = endpoint.body
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    try:
        response = http.request(endpoint.method, url, headers=endpoint.headers, body=body,
                                timeout=urllib3.Timeout(total=endpoint.timeout), retries=False)
    except urllib3.exceptions.HTTPError as exc:
        return False, f"no answer: {type(exc).__name__}"
    text = response.data.decode("utf-8", "replace")
    excerpt = text[:EXCERPT] + ("..." if len(text) > EXCERPT else "")
    if response.status != endpoint.expect_status:
        return False, f"HTTP {response.status}: {excerpt}"
    if endpoint.schema is None:
        return True, f"HTTP {response.status}"
    try:
        document = json.loads(text)
    except ValueError:
        return False, f"HTTP {response.status}, body is not JSON: {excerpt}"
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(endpoint.schema).iter_errors(document))
    if error is not None:
        return False, f"HTTP {response.status}, body at {error.json_path}: {error.message}"
    return True, f"HTTP {response.status}, body matches the schema"


def check_endpoint(endpoint: Endpoint, base_url: Optional[str], http: Optional[urllib3.PoolManager] = None,
                   sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = lambda m: None) -> CheckResult:
    redactor = Redactor()
    check_id = f"endpoint:{endpoint.name}"
    try:
        url = endpoint_url(endpoint, base_url)
    except ValueError as exc:
        return CheckResult(check_id, "endpoints", Status.ERROR, str(exc))
    collect_secrets(url, endpoint.headers, redactor)
    shown_url = redactor(masked_url(url))
    expected = f"HTTP {endpoint.expect_status}" + (", body matching its JSON Schema" if endpoint.schema else "")
    http = http or urllib3.PoolManager()
    attempts = endpoint.retries + 1
    for number in range(1, attempts + 1):
        ok, found = attempt(http, endpoint, url)
        found = redactor(found)
        if ok:
            tries = f" (attempt {number} of {attempts})" if number > 1 else ""
            return CheckResult(check_id, "endpoints", Status.PASS, f"{endpoint.method} {shown_url}: {found}{tries}",
                               expected=expected, found=found)
        if number < attempts:
            log(f"{check_id}: {found}; retrying in {endpoint.retry_delay:g}s ({number}/{attempts})")
            sleep(endpoint.retry_delay)
    return CheckResult(check_id, "endpoints", Status.FAIL, f"{endpoint.method} {shown_url}: {found}",
                       expected=expected, found=f"{found} (after {attempts} attempt(s))",
                       remediation=f"curl -i -X {endpoint.method} '{shown_url}' and read the function's logs")


def check_endpoints(ctx: CheckContext, log: Callable[[str], None] = lambda m: None) -> list:
    if not ctx.checklist.endpoints:
        return [CheckResult("endpoints", "endpoints", Status.SKIP, "no endpoints in the checklist")]
    base_url = ctx.base_url
    if base_url is None and any(not e.url for e in ctx.checklist.endpoints):
        base_url = discovered_base_url(ctx)
    results = [check_endpoint(endpoint, base_url, log=log) for endpoint in ctx.checklist.endpoints]
    ctx.endpoints_called = any(r.status != Status.ERROR for r in results)
    return results
