"""HTTP endpoint checks: method, URL or `?action=`, headers, expected status, a JSON Schema for
the body, timeout, and retries with a delay (a fresh deploy may need a few seconds).

Secrets are masked before anything reaches a result: the values of sensitive headers and query
parameters, URL passwords, and any of those values wherever they appear (an app echoing a token
in an error body included).
"""
from __future__ import annotations

import dataclasses
import json
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jsonschema
import urllib3

from ..checklist import Endpoint, url_problem
from ..context import CheckContext
from ..deadline import WATCHDOG
from ..results import CheckResult, Status
from ..secrets import SENSITIVE, Redactor
from ..text import clip
from .entry_point import discovered_base_url, entry_point_urls

EMULATED_REST_PATH = re.compile(r"^/restapis/[^/]+/([^/]+)/_user_request_")   # LocalStack's form of /{stage}
EXCERPT = 200
MAX_BODY = 1_000_000   # bytes of a response read; a larger body is judged on its first megabyte
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NESTING = 200      # a body nested deeper is not parsed (json and jsonschema would recurse past Python's limit)
JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nesting(text: str) -> int:
    """How deeply a JSON text nests, found by scanning (strings skipped), before anything parses it."""
    depth = deepest = 0
    for token in JSON_TOKEN.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif mark in "]}":
            depth -= 1
    return deepest


def endpoint_url(endpoint: Endpoint, base_url: Optional[str], no_base_url: str = "") -> str:
    """The URL an endpoint is requested at: its own `url`, or the base URL with `path` appended
    to the base's path (a stage and resource such as /dev/spotify-playlist-dev are kept: this
    is not RFC 3986 joining) and the base's query, then `query`, then `action` (later ones win)."""
    if endpoint.url:
        return endpoint.url
    if not base_url:
        raise ValueError(no_base_url or "no base URL: set base_url in the checklist environment, pass --base-url, "
                         "or give the function a Function URL / API Gateway entry point")
    parts = urlsplit(base_url)
    path = parts.path
    if endpoint.path:
        path = path.rstrip("/") + endpoint.path
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({str(k): query_value(v) for k, v in endpoint.query.items()})
    if endpoint.action:
        query["action"] = endpoint.action
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), parts.fragment))


def query_value(value) -> str:
    """YAML's true is `true` in a URL, as the app would write it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def clean_headers(headers: dict) -> dict:
    """Header values as HTTP can carry them: surrounding whitespace and line ends (a CI secret's
    trailing newline) removed; ValueError naming the header when a control character remains."""
    cleaned = {}
    for name, value in headers.items():
        value = str(value).strip()
        if CONTROL.search(value) or CONTROL.search(str(name)):
            raise ValueError(f"header {clip(name, 60)} holds a control character (a line break inside a "
                             "secret?): its value cannot be sent")
        cleaned[str(name)] = value
    return cleaned


class Unresolvable(Exception):
    """The URL's host name does not resolve: no retry helps, and every endpoint on that host is
    told at once (`unresolved` hosts are kept for the run)."""


def does_not_resolve(exc: Exception) -> bool:
    name_error = getattr(urllib3.exceptions, "NameResolutionError", None)   # urllib3 2
    if name_error is not None and isinstance(exc, name_error):
        return True
    cause = exc.__cause__ or exc.__context__
    return isinstance(exc, urllib3.exceptions.NewConnectionError) and isinstance(cause, socket.gaierror)


def attempt(http: urllib3.PoolManager, endpoint: Endpoint, url: str, headers: dict, redactor: Redactor) -> tuple:
    """One request: (ok, found, the HTTP status or None) where found says what came back, secrets
    masked. Raises Unresolvable when the host name does not resolve."""
    body = endpoint.body
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    # `timeout` bounds the whole request (connect, headers, body): urllib3's timeouts are per
    # read, so the watchdog shuts the socket when it passes, however slowly the peer drips
    with WATCHDOG.within(endpoint.timeout) as deadline:
        try:
            response = http.request(endpoint.method, url, headers=headers, body=body,
                                    timeout=urllib3.Timeout(total=endpoint.timeout), retries=False,
                                    preload_content=False)
            data = response.read(MAX_BODY + 1)
            response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if does_not_resolve(exc):
                raise Unresolvable(urlsplit(url).hostname or "") from None
            failure: Optional[str] = f"no answer: {type(exc).__name__}"
        else:
            failure = None
        if time.monotonic() >= deadline - 0.05:  # cut off by the watchdog, with or without an exception
            return False, f"no whole answer within its timeout of {endpoint.timeout:g}s", None
        if failure:
            return False, failure, None
    text = data[:MAX_BODY].decode("utf-8", "replace")
    excerpt = redactor.excerpt(text, EXCERPT)
    if response.status != endpoint.expect_status:
        return False, f"HTTP {response.status}: {excerpt}", response.status
    if endpoint.schema is None:
        return True, f"HTTP {response.status}", response.status
    if nesting(text) > MAX_NESTING:
        return (False, f"HTTP {response.status}, body nested deeper than {MAX_NESTING} levels: not checked against "
                "the schema", response.status)
    try:
        document = json.loads(text)
    except ValueError:
        return False, f"HTTP {response.status}, body is not JSON: {excerpt}", response.status
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(endpoint.schema).iter_errors(document))
    if error is not None:
        if any(SENSITIVE.search(str(part)) for part in error.absolute_path):
            return (False, f"HTTP {response.status}, body at {error.json_path}: does not match the schema (value not "
                    "shown)", response.status)
        shown = redactor.remote(f"HTTP {response.status}, body at {error.json_path}: {clip(error.message)}")
        return False, shown, response.status
    return True, f"HTTP {response.status}, body matches the schema", response.status


def check_endpoint(endpoint: Endpoint, base_url: Optional[str], http: Optional[urllib3.PoolManager] = None,
                   sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = lambda m: None,
                   no_base_url: str = "", secrets: Iterable[str] = (), unresolved: Optional[set] = None) -> CheckResult:
    """`secrets`: the checklist's ${VAR} values, masked wherever they come back; `unresolved`:
    the host names found not to resolve earlier in the run (added to)."""
    redactor = Redactor()
    redactor.add_headers(endpoint.headers)
    redactor.add_variables(secrets)
    check_id = f"endpoint:{endpoint.name}"
    try:
        url = endpoint_url(endpoint, base_url, no_base_url)
        redactor.add_url(url)
        if problem := url_problem(url):  # redactor.url takes any user name and password off first
            raise ValueError(f"{endpoint.method} {redactor.url(url)}: {problem}")
        urllib3.util.parse_url(url)
        headers = clean_headers(endpoint.headers)
    except (ValueError, urllib3.exceptions.LocationParseError) as exc:
        return CheckResult(check_id, "endpoints", Status.ERROR, redactor(clip(str(exc))))
    shown_url = redactor.url(url)
    expected = f"HTTP {endpoint.expect_status}" + (", body matching its JSON Schema" if endpoint.schema else "")
    attempts = endpoint.tries
    unresolved = set() if unresolved is None else unresolved
    host_name = urlsplit(url).hostname or ""
    for number in range(1, attempts + 1):
        try:
            if host_name in unresolved:
                raise Unresolvable(host_name)
            # a pool per attempt: its sockets are watched with this attempt's deadline
            ok, found, status = attempt(http or urllib3.PoolManager(), endpoint, url, headers, redactor)
        except Unresolvable as exc:
            unresolved.add(str(exc))
            host = redactor(clip(str(exc), 120))
            return CheckResult(check_id, "endpoints", Status.FAIL, f"{endpoint.method} {shown_url}: host {host} does not "
                               "resolve (DNS)", expected=expected, found=f"host {host} does not resolve (not retried)",
                               remediation="check the URL (base_url, --base-url, or the entry point's), or the "
                                           "network's DNS; on a local stack the AWS host names do not resolve")
        if ok:
            tries = f" (attempt {number} of {attempts})" if number > 1 else ""
            return CheckResult(check_id, "endpoints", Status.PASS, f"{endpoint.method} {shown_url}: {found}{tries}",
                               expected=expected, found=found)
        if number < attempts:
            log(f"{check_id}: {found}; retrying in {endpoint.retry_delay:g}s ({number}/{attempts})")
            sleep(endpoint.retry_delay)
    return CheckResult(check_id, "endpoints", Status.FAIL, f"{endpoint.method} {shown_url}: {found}",
                       expected=expected, found=f"{found} (after {attempts} attempt(s))",
                       remediation=f"curl -i -X {endpoint.method} '{shown_url}' and read the function's logs",
                       answered=status)


def rebased(entry_point_url: Optional[str], base_url: str) -> str:
    """An entry point's URL moved under `base_url` (--base-url, or the environment's base_url):
    its scheme and host replaced, its path (a REST API's stage) kept after the base's own path,
    so one checklist checks a stand-in of the app (a local stack, a proxy, a staging domain)."""
    if not entry_point_url:
        return base_url
    found, base = urlsplit(entry_point_url), urlsplit(base_url)
    path = EMULATED_REST_PATH.sub(r"/\1", found.path)   # an emulator's invoke URL: the stage and resource, as on AWS
    joined = base.path.rstrip("/")
    if not (path.rstrip("/") and joined.endswith(path.rstrip("/"))):    # a base URL that already holds the stage
        joined += path
    return urlunsplit((base.scheme, base.netloc, joined, found.query, ""))


def check_endpoints(ctx: CheckContext, log: Callable[[str], None] = lambda m: None) -> list:
    if not ctx.checklist.endpoints:
        return [CheckResult("endpoints", "endpoints", Status.SKIP, "no endpoints in the checklist")]
    base_url, no_base_url = ctx.base_url, ""
    if base_url is None and any(not e.url and not e.entry_point for e in ctx.checklist.endpoints):
        base_url, no_base_url = discovered_base_url(ctx)
    urls = entry_point_urls(ctx) if any(e.entry_point for e in ctx.checklist.endpoints) else {}
    results = []
    unresolved: set = set()
    for endpoint in ctx.checklist.endpoints:
        base, why = base_url, no_base_url
        if endpoint.entry_point and not endpoint.url and ctx.base_url:
            base = rebased(urls.get(endpoint.entry_point), ctx.base_url)   # a stand-in: the base URL wins
        elif endpoint.entry_point and not endpoint.url:
            base = urls.get(endpoint.entry_point)
            why = "" if base else (f"no base URL: the function has no {endpoint.entry_point.replace('_', ' ')} "
                                   "entry point with a URL checker can tell (one stage)")
        started = time.monotonic()
        try:
            result = check_endpoint(endpoint, base, log=log, no_base_url=why, secrets=ctx.checklist.variable_values,
                                    unresolved=unresolved)
        except Exception as exc:  # noqa: BLE001 - one endpoint's surprise is its own error; the others still run
            from . import unexpected
            result = unexpected(f"endpoint:{endpoint.name}", "endpoints", exc)
        results.append(dataclasses.replace(result, seconds=max(time.monotonic() - started, 1e-6)))
    ctx.endpoints_called = any(r.status != Status.ERROR for r in results)
    return results
