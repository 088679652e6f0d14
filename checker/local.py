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

from .iam_check import least_privilege_policy


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


class LogShipper(logging.Handler):
    """The app's log lines, as Lambda would send them, into a CloudWatch Logs group (of the moto
    server): only the lines logged by the threads serving this app's requests are taken, so two
    local apps in one process never mix their logs."""

    def __init__(self, logs_client, log_group: str):
        super().__init__(logging.INFO)
        self.setFormatter(app.JsonLineFormatter())
        self.client = logs_client
        self.log_group = log_group
        self.stream = f"local/[$LATEST]{time.time_ns():x}"
        self.local = threading.local()
        self.lock = threading.Lock()
        self.created = False

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is not None:
            lines.append({"timestamp": int(record.created * 1000), "message": self.format(record)})

    def start_request(self) -> None:
        self.local.lines = []

    def end_request(self) -> None:
        """Send the lines of the request that just ended, in order, as one PutLogEvents."""
        lines, self.local.lines = getattr(self.local, "lines", None), None
        if not lines:
            return
        with self.lock:
            if not self.created:
                for create in (lambda: self.client.create_log_group(logGroupName=self.log_group),
                               lambda: self.client.create_log_stream(logGroupName=self.log_group,
                                                                     logStreamName=self.stream)):
                    try:
                        create()
                    except self.client.exceptions.ResourceAlreadyExistsException:
                        pass
                self.created = True
            self.client.put_log_events(logGroupName=self.log_group, logStreamName=self.stream, logEvents=lines)


class AppServer:
    """The real handler behind an HTTP server. With `log_group`, what the app logs while serving
    goes to that CloudWatch Logs group on `dynamodb_endpoint`'s server, as on Lambda."""

    def __init__(self, environ: dict, dynamodb_endpoint: Optional[str] = None, region: str = "us-east-1",
                 on_event: Optional[Callable[[dict], None]] = None, log_group: Optional[str] = None):
        self.environ = environ
        self.endpoint = dynamodb_endpoint
        self.region = region
        self.shipper: Optional[LogShipper] = None
        if log_group:
            self.ship_logs_to(log_group)
        server = self

        def resource_factory():
            return boto3.resource("dynamodb", endpoint_url=dynamodb_endpoint, region_name=region)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                event = function_url_event(self.command, self.path, dict(self.headers), body)
                if on_event:
                    on_event(event)
                shipper = server.shipper
                if shipper:
                    shipper.start_request()
                try:
                    result = app.handle(event, None, environ=server.environ, resource_factory=resource_factory)
                finally:
                    if shipper:
                        shipper.end_request()
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

    def ship_logs_to(self, log_group: str) -> None:
        logs = boto3.client("logs", endpoint_url=self.endpoint, region_name=self.region)
        self.stop_shipping()
        self.shipper = LogShipper(logs, log_group)
        package_logger = logging.getLogger("spotify_playlist")
        package_logger.addHandler(self.shipper)
        if package_logger.level == logging.NOTSET or package_logger.level > logging.INFO:
            package_logger.setLevel(logging.INFO)  # as LOG_LEVEL's default on Lambda

    def stop_shipping(self) -> None:
        if self.shipper:
            logging.getLogger("spotify_playlist").removeHandler(self.shipper)
            self.shipper = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_shipping()
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
        self.app = AppServer(self.app_settings(), dynamodb_endpoint=self.endpoint, region=self.region).__enter__()
        return self

    def __exit__(self, *exc):
        if self.app:
            self.app.__exit__(*exc)
        self.spotify.stop()
        self.moto.stop()

    def app_settings(self) -> dict:
        """Every setting the app's health asks for, pointing at the fake Spotify (fake values)."""
        return {"DEFAULT_USER_ID": self.user, "SPOTIFY_API_BASE_URL": self.spotify.api_base,
                "SPOTIFY_ACCOUNTS_BASE_URL": self.spotify.url, "SPOTIFY_REFRESH_TOKEN": f"refresh-{self.user}",
                "SPOTIFY_CLIENT_ID": "local-client-id", "SPOTIFY_CLIENT_SECRET": "local-client-secret"}

    def deploy_function(self, function_name: str, tables: list, permissions: list, required_env: tuple,
                        bindings: Optional[dict] = None) -> None:
        """The function, configured as the app is served: the checklist's required variables,
        the app's settings and each bound table's name in this environment. From now on the app
        serves with that configuration and logs to the function's log group."""
        variables = {name: f"local-{name.lower()}" for name in required_env}
        variables.update(self.app_settings())
        variables.update(binding_variables(bindings or {}, tables))
        deploy_function(self.endpoint, self.region, function_name, role_policy(tables, permissions, self.region),
                        variables)
        assert self.app is not None
        self.app.environ = variables
        self.app.ship_logs_to(f"/aws/lambda/{function_name}")


def binding_variables(bindings: dict, tables: list) -> dict:
    """{variable: the environment's name of the spec table it is bound to}."""
    names = {t.spec_name: t.name for t in tables}
    return {variable: names.get(spec_name, spec_name) for variable, spec_name in bindings.items()}


MOTO_ACCOUNT = "123456789012"


def role_policy(tables: list, permissions: list, region: str, account: str = MOTO_ACCOUNT, leave_out=()) -> dict:
    """The least-privilege policy of the checklist's permissions, minus any (action, spec table)
    in `leave_out` (tests take one away to see the IAM check fail)."""
    return least_privilege_policy(permissions, tables, region, account, leave_out)


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
