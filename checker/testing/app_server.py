"""The app on 127.0.0.1: HTTP requests become Lambda Function URL events for the real handler.

Used by the end-to-end tests, the benchmarks and `checker local`, so that `checker smoke` talks to
the actual runtime, backed by a moto server and the fake Spotify, over real HTTP. With a log
group, what the app logs while serving goes to CloudWatch Logs on that server, as on Lambda.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Optional
from urllib.parse import parse_qsl, urlsplit

import boto3

from spotify_playlist import handler as app

from .http import LocalServer, send


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
        self.send_lock = threading.Lock()   # not `lock`: logging.Handler's own
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
    """The real handler behind an HTTP server. With `log_group`, what the app logs while serving
    goes to that CloudWatch Logs group on `dynamodb_endpoint`'s server, as on Lambda."""

    def __init__(self, environ: dict, dynamodb_endpoint: Optional[str] = None, region: str = "us-east-1",
                 on_event: Optional[Callable[[dict], None]] = None, log_group: Optional[str] = None,
                 port: int = 0):
        self.environ = environ
        self.endpoint = dynamodb_endpoint
        self.region = region
        self.on_event = on_event
        self.shipper: Optional[LogShipper] = None
        if log_group:
            self.ship_logs_to(log_group)
        self.server = LocalServer(self.serve, port)

    def resource(self):
        return boto3.resource("dynamodb", endpoint_url=self.endpoint, region_name=self.region)

    def serve(self, handler, method: str) -> None:
        event = function_url_event(method, handler.path, dict(handler.headers), handler.body().decode())
        if self.on_event:
            self.on_event(event)
        shipper = self.shipper
        if shipper:
            shipper.start_request()
        try:
            result = app.handle(event, None, environ=self.environ, resource_factory=self.resource)
        finally:
            if shipper:
                shipper.end_request()
        headers = dict(result.get("headers", {}))
        send(handler, result["statusCode"], result["body"].encode(), {},
             headers.pop("Content-Type", "application/json"))

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
        return f"{self.server.url}/"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.stop_shipping()
        self.server.stop()
