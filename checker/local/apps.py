"""The apps `checker local` can serve: the bundled spotify-playlist runtime, or any Python Lambda
handler named as Lambda names it (`MODULE.FUNCTION`, or `MODULE:FUNCTION` as uvicorn does).

A user's handler runs as on Lambda: one request at a time, with the function's environment
variables in `os.environ` (and AWS_ENDPOINT_URL pointing boto3 at the local stack), a context
object, its `print` lines and log records (Lambda's text format) and an uncaught exception
(`[ERROR] Type: message` and the traceback) going to the function's log group, and a 502 for the
caller when it raises, as API Gateway and Function URLs answer.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import CheckerError

FUNCTION_ERROR = {"statusCode": 502, "headers": {"Content-Type": "application/json"},
                  "body": '{"message": "Internal server error"}'}
LOG = logging.getLogger("checker.local.app")  # the uncaught exceptions of a user's handler


class LambdaTextFormatter(logging.Formatter):
    """The Python runtime's text lines: `[ERROR]\t2026-12-02T10:00:00.123Z\t<request id>\tmessage`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        text = record.getMessage()
        if getattr(record, "printed", False):
            return text  # a print() line: Lambda ships it as it is
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return f"[{record.levelname}]\t{stamp}\t{getattr(record, 'aws_request_id', '')}\t{text}"


@dataclass
class LambdaContext:
    """What a handler may read of Lambda's context object."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 128
    timeout_seconds: float = 30.0
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self):
        self.deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class SpotifyApp:
    """The bundled runtime, called as the tests call it: its own environ and DynamoDB resource,
    so several can serve in one process."""

    name = "spotify"
    logger_name = "spotify_playlist"

    def __init__(self):
        from spotify_playlist import handler  # only when this app is served
        self.handler = handler

    def formatter(self) -> logging.Formatter:
        return self.handler.JsonLineFormatter()

    def invoke(self, event: dict, environ: dict, resource_factory: Callable, function_name: str):
        return self.handler.handle(event, None, environ=environ, resource_factory=resource_factory)


class HandlerApp:
    """A user's `handler(event, context)`, one invocation at a time (as one Lambda instance runs)."""

    logger_name = ""   # the root logger: whatever the app logs
    lock = threading.Lock()

    def __init__(self, name: str, function: Callable):
        self.name = name
        self.function = function

    def formatter(self) -> logging.Formatter:
        return LambdaTextFormatter()

    def invoke(self, event: dict, environ: dict, resource_factory: Callable, function_name: str):
        context = LambdaContext(function_name, event.get("requestContext", {}).get("requestId", "local"),
                                log_group_name=f"/aws/lambda/{function_name}")
        with self.lock:
            os.environ.update({k: str(v) for k, v in environ.items()})
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    return self.function(event, context)
            except Exception as exc:
                LOG.error("%s: %s", type(exc).__name__, exc, exc_info=True)
                return FUNCTION_ERROR  # what API Gateway and Function URLs answer when the function fails
            finally:
                for line in printed.getvalue().splitlines():
                    LOG.warning(line, extra={"printed": True})


def parse_app(value: str) -> tuple:
    """(module, function) of `MODULE:FUNCTION` or `MODULE.FUNCTION`; a bad spelling is one line."""
    module, sep, function = value.rpartition(":") if ":" in value else value.rpartition(".")
    if not sep or not module or not function or not function.isidentifier() \
            or not all(part.isidentifier() for part in module.split(".")):
        raise CheckerError(f"--app {value[:120]}: expected spotify, none, or MODULE:FUNCTION (or MODULE.FUNCTION, "
                           "as Lambda's handler setting writes it), e.g. app:handler")
    return module, function


def load_app(value: str, app_dir: Optional[Path] = None):
    """The app `--app` names, imported now (as Lambda does at a cold start): errors are one line.
    None for `none`."""
    if value == "none":
        return None
    if value == "spotify":
        return SpotifyApp()
    module_name, function_name = parse_app(value)
    folder = str((app_dir or Path.cwd()).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise CheckerError(f"--app {value}: no module {exc.name} in {folder} (run checker local in the app's "
                           "folder, or pass --app-dir)") from None
    except Exception as exc:  # the user's module failed while importing: say how, not where in checker
        raise CheckerError(f"--app {value}: importing {module_name} raised {type(exc).__name__}: {str(exc)[:300]}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise CheckerError(f"--app {value}: {module_name} has no function {function_name}")
    return HandlerApp(value, function)
