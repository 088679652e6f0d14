"""The app on 127.0.0.1: HTTP requests become Lambda Function URL events for the real handler.

Used by the end-to-end tests (and usable by hand) so that `checker smoke` talks to the actual
runtime, backed by a moto server and the fake Spotify, over real HTTP.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qsl, urlsplit

import boto3

from spotify_playlist import handler as app


def function_url_event(method: str, path: str, headers: dict, body: str) -> dict:
    parts = urlsplit(path)
    query = dict(parse_qsl(parts.query))
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": parts.path, "rawQueryString": parts.query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": query or None,
        "requestContext": {"http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1"},
                           "domainName": "127.0.0.1", "requestId": f"local-{time.monotonic_ns()}",
                           "routeKey": "$default", "stage": "$default", "timeEpoch": int(time.time() * 1000)},
        "body": body or None, "isBase64Encoded": False,
    }


class AppServer:
    def __init__(self, environ: dict, dynamodb_endpoint: Optional[str] = None, region: str = "us-east-1",
                 on_event: Optional[Callable[[dict], None]] = None):
        self.environ = environ
        server = self

        def cache_factory(user_id, environ):
            resource = boto3.resource("dynamodb", endpoint_url=dynamodb_endpoint, region_name=region)
            return app.build_cache(user_id, environ, resource=resource)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                event = function_url_event(self.command, self.path, dict(self.headers), body)
                if on_event:
                    on_event(event)
                result = app.handle(event, None, environ=server.environ, cache_factory=cache_factory)
                payload = result["body"].encode()
                self.send_response(result["statusCode"])
                for key, value in result.get("headers", {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
