"""HTTP requests as the Lambda events AWS sends a function, and a handler's answer back as HTTP.

Three shapes, as the three entry points send them: a Function URL and an API Gateway HTTP API
send payload format 2.0 (`rawPath`, `requestContext.http`), a REST API sends format 1.0
(`httpMethod`, `path`, `resource`, multi-value maps). An answer is read the way API Gateway and
Function URLs read it: a dict with `statusCode` is a proxy response (`body`, `headers`,
`isBase64Encoded`); for format 2.0, anything else is a 200 whose body is its JSON.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Optional
from urllib.parse import parse_qs, parse_qsl, urlsplit

ENTRY_POINTS = ("function_url", "http_api", "rest_api")
REST_STAGE = "local"           # the REST API's stage on the local stack
REST_PREFIX = "/_user_request_"  # LocalStack's convention: {endpoint}/restapis/{id}/{stage}/_user_request_/{path}


def _text_or_base64(body: bytes) -> tuple:
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def request_id() -> str:
    return f"local-{time.monotonic_ns():x}"


def event_for(kind: str, method: str, target: str, headers: dict, body: bytes, stage: str = "$default") -> dict:
    """The event `kind`'s entry point sends for this request (`target`: path and query)."""
    parts = urlsplit(target)
    path = parts.path or "/"
    if kind == "rest_api":
        return rest_api_event(method, path, parts.query, headers, body, stage)
    return payload_v2_event(method, path, parts.query, headers, body, stage if kind == "http_api" else "$default")


def payload_v2_event(method: str, path: str, query: str, headers: dict, body: bytes, stage: str) -> dict:
    text, encoded = _text_or_base64(body)
    pairs = parse_qsl(query, keep_blank_values=True)
    parameters = {name: ",".join(v for n, v in pairs if n == name) for name, _ in pairs}
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": lowered, "queryStringParameters": parameters or None,
        "cookies": [c.strip() for c in lowered.get("cookie", "").split(";") if c.strip()] or None,
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": lowered.get("user-agent", "")},
                           "domainName": "127.0.0.1", "requestId": request_id(), "routeKey": "$default",
                           "stage": stage, "timeEpoch": int(time.time() * 1000)},
        "body": text or None, "isBase64Encoded": encoded,
    }


def rest_api_event(method: str, path: str, query: str, headers: dict, body: bytes, stage: str) -> dict:
    text, encoded = _text_or_base64(body)
    multi = parse_qs(query, keep_blank_values=True)
    header_map = {str(k): str(v) for k, v in headers.items()}
    return {
        "resource": "/{proxy+}" if path != "/" else "/", "path": path, "httpMethod": method,
        "headers": header_map, "multiValueHeaders": {k: [v] for k, v in header_map.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": {"proxy": path.lstrip("/")} if path != "/" else None, "stageVariables": None,
        "requestContext": {"resourcePath": "/{proxy+}" if path != "/" else "/", "httpMethod": method,
                           "path": f"/{stage}{path}", "stage": stage, "requestId": request_id(),
                           "identity": {"sourceIp": "127.0.0.1", "userAgent": header_map.get("User-Agent", "")},
                           "requestTimeEpoch": int(time.time() * 1000)},
        "body": text or None, "isBase64Encoded": encoded,
    }


def strip_rest_prefix(target: str) -> tuple:
    """(the stage, the app's own path) of `/restapis/{id}/{stage}/_user_request_/x?q`, else
    (None, target) for a request sent to the app directly."""
    if target.startswith("/restapis/") and REST_PREFIX in target:
        head, tail = target.split(REST_PREFIX, 1)
        parts = head.split("/")
        return (parts[3] if len(parts) > 3 else None), (tail if tail.startswith("/") else "/" + tail)
    return None, target


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")      # RFC 9110's token
HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\uffff]*")           # no CR, LF or other control characters


def http_answer(kind: str, answer) -> tuple:
    """(status, headers, body bytes) API Gateway or a Function URL makes of a handler's answer."""
    if isinstance(answer, dict) and "statusCode" in answer:
        try:
            status = int(answer["statusCode"])
            headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
            body = answer.get("body")
            if body is None:
                payload = b""
            elif answer.get("isBase64Encoded"):
                payload = base64.b64decode(str(body), validate=True)
            else:
                payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        except (TypeError, ValueError, AttributeError, binascii.Error):   # a malformed answer: API Gateway's 502
            return bad_gateway()
        if not 100 <= status <= 599 or any(not HEADER_NAME.fullmatch(k) or not HEADER_VALUE.fullmatch(v)
                                           for k, v in headers.items()):
            return bad_gateway()   # never a status line or a second header the handler smuggled in
        return status, headers, payload
    if kind == "rest_api":
        return bad_gateway()  # format 1.0 needs a proxy response: API Gateway answers 502
    return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def bad_gateway(message: str = "Internal server error") -> tuple:
    return 502, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()


def content_type(headers: dict, default: str = "application/json") -> tuple:
    """(the Content-Type, the other headers): the HTTP server writes that one itself."""
    rest = dict(headers)
    found: Optional[str] = None
    for key in list(rest):
        if key.lower() == "content-type":
            found = rest.pop(key)
    return found or default, rest
