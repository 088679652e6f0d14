"""The app on 127.0.0.1: HTTP requests become the Lambda events of its entry point (a Function URL,
an API Gateway HTTP API or REST API) for the real handler.

Used by the end-to-end tests, the benchmarks and `checker local`, so that `checker smoke` talks to
the actual runtime (the bundled one, or a user's handler), backed by a moto server, over real HTTP.
With a log group, what the app logs while serving goes to CloudWatch Logs on that server, as on
Lambda.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Optional

import boto3

from .apps import DEFAULT_TIMEOUT
from .events import content_type, event_for, http_answer, strip_rest_prefix
from .http import LocalServer, send


def used_mb() -> int:
    """The peak resident memory of the local stack's own process, for REPORT's "Max Memory Used"
    (Lambda reports its execution environment's; a user's handler runs in a worker of its own,
    which this does not measure)."""
    import resource
    return max(1, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)   # kilobytes on Linux


class LogShipper(logging.Handler):
    """The app's log lines, as Lambda would send them, into a CloudWatch Logs group (of the moto
    server): only the lines logged by the threads serving this app's requests are taken, so two
    local apps in one process never mix their logs."""

    def __init__(self, logs_client, log_group: str, formatter: logging.Formatter):
        super().__init__(logging.INFO)
        self.setFormatter(formatter)
        self.client = logs_client
        self.log_group = log_group
        self.stream = f"local/[$LATEST]{time.time_ns():x}"
        self.local = threading.local()
        self.send_lock = threading.Lock()   # not `lock`: logging.Handler's own
        self.created = False

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is not None:
            lines.append({"timestamp": int(record.created * 1000), "message": self.format(record)})

    def start_request(self, request_id: str) -> None:
        """Lambda's START line opens every invocation's lines, whatever the handler logs."""
        self.local.lines = [self.platform_line(f"START RequestId: {request_id} Version: $LATEST")]
        self.local.started = time.monotonic()

    @staticmethod
    def platform_line(message: str) -> dict:
        return {"timestamp": int(time.time() * 1000), "message": message}

    def end_request(self, request_id: str, memory_mb: int = 128) -> None:
        """Send the lines of the request that just ended, in order, as one PutLogEvents, closed by
        Lambda's END and REPORT lines (a handler that logs nothing still leaves these three, as
        on Lambda: a smoke test's "no log group after the calls" is about the function, not it)."""
        lines, self.local.lines = getattr(self.local, "lines", None), None
        if lines is None:
            return
        duration = (time.monotonic() - getattr(self.local, "started", time.monotonic())) * 1000
        lines += [self.platform_line(f"END RequestId: {request_id}"),
                  self.platform_line(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                                     f"Billed Duration: {max(1, math.ceil(duration))} ms\tMemory Size: {memory_mb} MB\t"
                                     f"Max Memory Used: {used_mb()} MB")]
        with self.send_lock:
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
    """An app behind an HTTP server, sent the events of `entry_point`'s kind. `app` is one of
    `apps.py` (default: the bundled spotify-playlist runtime). With `log_group`, what the app
    logs while serving goes to that CloudWatch Logs group on `dynamodb_endpoint`'s server."""

    def __init__(self, environ: dict, dynamodb_endpoint: Optional[str] = None, region: str = "us-east-1",
                 on_event: Optional[Callable[[dict], None]] = None, log_group: Optional[str] = None,
                 port: int = 0, app=None, entry_point: str = "function_url", function_name: str = "local"):
        if app is None:
            from .apps import SpotifyApp
            app = SpotifyApp()
        self.app = app
        self.environ = environ
        self.endpoint = dynamodb_endpoint
        self.region = region
        self.on_event = on_event
        self.entry_point = entry_point
        self.function_name = function_name
        self.shipper: Optional[LogShipper] = None
        self.follows: Optional[str] = None   # a deployed function whose configuration each request reads
        self.timeout = DEFAULT_TIMEOUT        # the function's Timeout, once read from its configuration
        self.api_id: Optional[str] = None     # the API Gateway API in front of it (the stack's), for its ARN
        self.guarded = False                  # the stack deployed the entry point: its resource policy applies
        self.credentials: dict = {}           # the function's role's (the stack's STS session), else the stack's
        self._lambda = None
        self._clients: dict = {}              # the check context's clients, kept across requests
        if log_group:
            self.ship_logs_to(log_group)
        self.server = LocalServer(self.serve, port)

    def aws_settings(self) -> dict:
        """Where a handler's own AWS calls go: the local stack, with its fake credentials."""
        import os
        settings = {name: os.environ.get(name, "") for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                                "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")}
        if self.endpoint:
            settings["AWS_ENDPOINT_URL"] = self.endpoint
        settings["AWS_REGION"] = settings["AWS_DEFAULT_REGION"] = self.region
        settings.update(self.credentials)   # the function's role, assumed, when the stack deployed it
        return settings

    def resource(self):
        return boto3.resource("dynamodb", endpoint_url=self.endpoint, region_name=self.region)

    def follow(self, function_name: str) -> None:
        """Each request reads the function's variables first, as a new Lambda instance does after
        UpdateFunctionConfiguration: a switched binding reaches the next invocation."""
        self.follows = function_name

    def refresh_variables(self) -> Optional[dict]:
        """The followed function's configuration, its variables and Timeout taken (None: no
        function followed, or the local AWS could not say)."""
        if not self.follows:
            return None
        try:
            config = self.lambda_client().get_function_configuration(FunctionName=self.follows)
        except Exception:  # noqa: BLE001 - the local AWS busy or gone: the instance keeps what it had
            return None
        self.environ = dict((config.get("Environment") or {}).get("Variables") or {})   # a removed one is gone
        if isinstance(config.get("Timeout"), (int, float)) and config["Timeout"] > 0:
            self.timeout = float(config["Timeout"])
        return config

    def lambda_client(self):
        if self._lambda is None:
            self._lambda = boto3.client("lambda", endpoint_url=self.endpoint, region_name=self.region)
        return self._lambda

    def check_context(self):
        """The checks' view of the followed function on the local AWS (its GetPolicy read once
        per request, as the check reads it)."""
        from ..aws import AwsOptions
        from ..checklist import Checklist
        from ..context import CheckContext
        return CheckContext(AwsOptions(region=self.region, endpoint_url=self.endpoint), [], Checklist("(local)"),
                            self.follows, None, 0, _clients=self._clients)

    def refusal(self, event: dict, config: Optional[dict]) -> Optional[tuple]:
        """(status, body) AWS answers instead of invoking the followed function when its resource
        policy does not let this entry point call it: a Function URL 403, API Gateway 500 (it
        was not allowed to invoke the function). None: invoke (a condition checker cannot
        evaluate is given the benefit of the doubt, and said in `check`)."""
        if config is None or not self.guarded or (self.entry_point != "function_url" and not self.api_id):
            return None
        from ..checks.entry_point import API_GATEWAY, FUNCTION_URL_ACTIONS, policy_statements
        from ..errors import CheckerError
        from ..iam_policy import api_gateway_context, resource_policy_allows
        try:
            statements = policy_statements(self.check_context())   # read as the entry-point check reads it
        except CheckerError:   # the local AWS could not say: do not refuse on a guess
            return None
        if self.entry_point == "function_url":
            context = {"lambda:FunctionUrlAuthType": "NONE", "lambda:InvokedViaFunctionUrl": "true"}
            if all(resource_policy_allows(statements, action, ("*",), context) is not False
                   for action in FUNCTION_URL_ACTIONS):
                return None
            return 403, {"Message": "Forbidden"}
        account = str(config.get("FunctionArn", "")).split(":")[4:5] or ["000000000000"]
        context = event.get("requestContext") or {}
        route = f"{context.get('httpMethod')}{context.get('resourcePath')}" if self.entry_point == "rest_api" \
            else str(context.get("routeKey") or "$default")
        source = f"arn:aws:execute-api:{self.region}:{account[0]}:{self.api_id}/{context.get('stage')}/{route}"
        if resource_policy_allows(statements, "lambda:InvokeFunction", API_GATEWAY, api_gateway_context(source)) \
                is not False:
            return None
        return 500, {"message": "Internal server error"}

    def serve(self, handler, method: str) -> None:
        config = self.refresh_variables()
        stage, target = strip_rest_prefix(handler.path)
        event = event_for(self.entry_point, method, target, dict(handler.headers), handler.body(),
                          stage or ("local" if self.entry_point == "rest_api" else "$default"))
        refused = self.refusal(event, config)
        if refused is not None:
            status, body = refused
            send(handler, status, json.dumps(body).encode(), {}, "application/json")
            return
        if self.on_event:
            self.on_event(event)
        shipper = self.shipper
        request_id = str(event.get("requestContext", {}).get("requestId", "local"))
        if shipper:
            shipper.start_request(request_id)
        try:
            answer = self.app.invoke(event, dict(self.environ), self.resource, self.function_name,
                                     aws=self.aws_settings(), timeout=self.timeout)
        finally:
            if shipper:
                shipper.end_request(request_id)
        status, headers, payload = http_answer(self.entry_point, answer)
        kind, headers = content_type(headers)
        send(handler, status, payload, headers, kind)

    def ship_logs_to(self, log_group: str) -> None:
        logs = boto3.client("logs", endpoint_url=self.endpoint, region_name=self.region)
        self.stop_shipping()
        self.shipper = LogShipper(logs, log_group, self.app.formatter())
        app_logger = logging.getLogger(self.app.logger_name)
        app_logger.addHandler(self.shipper)
        if app_logger.level == logging.NOTSET or app_logger.level > logging.INFO:
            app_logger.setLevel(logging.INFO)  # as LOG_LEVEL's default on Lambda

    def stop_shipping(self) -> None:
        if self.shipper:
            logging.getLogger(self.app.logger_name).removeHandler(self.shipper)
            self.shipper = None

    @property
    def url(self) -> str:
        return f"{self.server.url}/"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.stop_shipping()
        self.server.stop()
        close = getattr(self.app, "close", None)
        if close is not None:
            close()   # a user's handler: its execution environments, and what they forked
