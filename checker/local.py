"""The app on 127.0.0.1: HTTP requests become Lambda Function URL events for the real handler.

Used by the end-to-end tests (and usable by hand) so that `checker smoke` talks to the actual
runtime, backed by a moto server and the fake Spotify, over real HTTP.
"""
from __future__ import annotations

import io
import json
import logging
import threading
import time
import zipfile
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


class LocalStack:
    """moto's server + the fake Spotify + the app, all on 127.0.0.1: an environment to try
    `checker` on without an AWS account. `deploy_function()` creates the Lambda function (its code
    is a stub: the app itself is served by AppServer), its role and a Function URL."""

    def __init__(self, port: int = 0, tracks: int = 120, user: str = "demo", region: str = "us-east-1"):
        from moto.server import ThreadedMotoServer  # a test extra: imported only when asked for
        from spotify_playlist.fake_spotify import FakeSpotify

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.region = region
        self.user = user
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.spotify = FakeSpotify()
        self.tracks = tracks
        self.app: Optional[AppServer] = None

    @property
    def endpoint(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    def __enter__(self):
        self.moto.start()
        self.spotify.start()
        self.spotify.add_user(self.user, self.tracks)
        environ = {"DEFAULT_USER_ID": self.user, "SPOTIFY_API_BASE_URL": self.spotify.api_base,
                   "SPOTIFY_ACCOUNTS_BASE_URL": self.spotify.url,
                   "SPOTIFY_REFRESH_TOKEN": f"refresh-{self.user}"}
        self.app = AppServer(environ, dynamodb_endpoint=self.endpoint, region=self.region).__enter__()
        return self

    def __exit__(self, *exc):
        if self.app:
            self.app.__exit__(*exc)
        self.spotify.stop()
        self.moto.stop()

    def deploy_function(self, function_name: str, tables: list, permissions: list, required_env: tuple) -> None:
        deploy_function(self.endpoint, self.region, function_name, role_policy(tables, permissions, self.region),
                        {name: f"local-{name.lower()}" for name in required_env})


MOTO_ACCOUNT = "123456789012"


def role_policy(tables: list, permissions: list, region: str, account: str = MOTO_ACCOUNT, leave_out=()) -> dict:
    """A policy granting exactly `permissions` on the environment's table names, minus any
    (action, spec table name) in `leave_out`."""
    statements = []
    for permission in permissions:
        name = next((t.name for t in tables if t.spec_name == permission.table), permission.table)
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        actions = [a for a in permission.actions if (a, permission.table) not in leave_out]
        if actions:
            statements.append({"Effect": "Allow", "Action": actions,
                               "Resource": f"{arn}/index/{permission.index}" if permission.index else arn})
    return {"Version": "2012-10-17", "Statement": statements}


def deploy_function(endpoint: str, region: str, function_name: str, policy: dict, variables: dict,
                    function_url: bool = True) -> dict:
    """A Lambda function with a stub handler, a role carrying `policy`, and a Function URL; returns the role."""
    def client(service):
        return boto3.client(service, endpoint_url=endpoint, region_name=region)
    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = iam.create_role(RoleName=f"{function_name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="dynamodb", PolicyDocument=json.dumps(policy))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("stub.py", "def handler(event, context):\n    return {}\n")
    lam = client("lambda")
    lam.create_function(FunctionName=function_name, Runtime="python3.12", Role=role["Arn"], Handler="stub.handler",
                        Code={"ZipFile": code.getvalue()}, Environment={"Variables": variables})
    if function_url:
        lam.create_function_url_config(FunctionName=function_name, AuthType="AWS_IAM")
    return role
