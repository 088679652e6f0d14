"""The apps `checker local` can serve: the bundled spotify-playlist runtime, or any Python Lambda
handler named as Lambda names it (`MODULE.FUNCTION`, or `MODULE:FUNCTION` as uvicorn does).

A user's handler runs as on Lambda: in execution environments of its own (worker.py, a process
each), one invocation at a time per environment, with only the function's variables in its
`os.environ` (and AWS_ENDPOINT_URL pointing boto3 at the local stack), a context object, its
`print` lines and log records (Lambda's text format) and an uncaught exception (`[ERROR] Type:
message` and the traceback) going to the function's log group, and a 502 for the caller when it
raises, exits, times out or answers what Lambda would not carry, as API Gateway and Function URLs
answer.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
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

    def invoke(self, event: dict, environ: dict, resource_factory: Callable, function_name: str, **runtime):
        return self.handler.handle(event, None, environ=environ, resource_factory=resource_factory)


DEFAULT_TIMEOUT = 30.0           # without a deployed function to read Timeout from (Lambda's default is 3 s)
MAX_ENVIRONMENTS = 10            # concurrent invocations beyond this are throttled (429), as at a concurrency limit
MAX_RESPONSE = 6 * 1024 * 1024   # Lambda's synchronous response payload limit
INIT_TIMEOUT = 10.0              # Lambda's INIT phase limit
WORKER = Path(__file__).with_name("worker.py")
THROTTLED = {"statusCode": 429, "headers": {"Content-Type": "application/json"}, "body": '{"message": "Rate Exceeded."}'}
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "SYSTEMROOT")


class HandlerApp:
    """A user's `handler(event, context)` run as Lambda runs it: each execution environment a
    process of its own (worker.py) that imports the handler once, has only the function's
    variables, and serves one invocation at a time. A concurrent invocation beyond the warm
    environments starts another; a change of the function's variables, or of a file of the app's
    own modules, retires them all, so the next invocation imports afresh (a new Timeout applies
    from the next invocation). An invocation past the function's Timeout, or a handler that exits
    or crashes, ends its environment and answers 502, as on Lambda; so does an answer over
    Lambda's 6 MB or one JSON cannot hold."""

    logger_name = ""   # the root logger: the lines the environments send back are logged there

    def __init__(self, name: str, module: str, function: str, app_dir: Path):
        self.name = name
        self.module = module
        self.function = function
        self.app_dir = app_dir
        self.lock = threading.Lock()
        self.idle: list = []          # warm environments
        self.busy: set = set()

    def formatter(self) -> logging.Formatter:
        return LambdaTextFormatter()

    def start(self, variables: dict, aws: dict, function_name: str) -> Environment:
        """A new execution environment, through its INIT phase; a failed INIT is a CheckerError."""
        environment = Environment(self, variables, aws, function_name)
        for line in environment.init_lines:
            LOG.warning(line, extra={"printed": True})
        return environment

    def invoke(self, event: dict, environ: dict, resource_factory: Callable, function_name: str,
               aws: Optional[dict] = None, timeout: float = DEFAULT_TIMEOUT):
        request_id = str(event.get("requestContext", {}).get("requestId", "local"))
        key = Environment.key_of(environ, aws or {}, function_name)
        with self.lock:
            for stale in [e for e in self.idle if e.key != key or e.code_changed()]:   # a new configuration or code
                self.idle.remove(stale)
                stale.stop()
            environment = self.idle.pop() if self.idle else None
            if environment is None and len(self.busy) >= MAX_ENVIRONMENTS:
                return THROTTLED
        try:
            if environment is None:
                environment = self.start(environ, aws or {}, function_name)
        except CheckerError as exc:
            LOG.error("INIT failed: %s", exc)
            return FUNCTION_ERROR
        with self.lock:
            self.busy.add(environment)
        try:
            answer, alive = environment.invoke(event, request_id, timeout)
        finally:
            with self.lock:
                self.busy.discard(environment)
        if alive:
            with self.lock:
                self.idle.append(environment)
        else:
            environment.stop()
        return answer

    def close(self) -> None:
        """Every environment ended (its whole process group: what the handler forked too)."""
        with self.lock:
            environments, self.idle = [*self.idle, *self.busy], []
            self.busy.clear()
        for environment in environments:
            environment.stop()


class Environment:
    """One execution environment: the worker process, its answers read by a thread of its own."""

    def __init__(self, app: HandlerApp, variables: dict, aws: dict, function_name: str):
        self.key = self.key_of(variables, aws, function_name)
        self.function_name = function_name
        reading, writing = os.pipe()
        environ = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
        environ.update({str(k): str(v) for k, v in variables.items()})
        environ.update({k: v for k, v in aws.items() if v})
        environ.update({"AWS_LAMBDA_FUNCTION_NAME": function_name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
                        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "LAMBDA_TASK_ROOT": str(app.app_dir),
                        "TZ": ":UTC", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), app.module, app.function, str(app.app_dir), str(writing)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=environ, cwd=app.app_dir, pass_fds=(writing,),
                start_new_session=True, text=True)   # its own process group: Ctrl-C is checker's to handle
        finally:
            os.close(writing)
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self.read, args=(reading,), daemon=True, name="lambda-environment").start()
        ready = self.next(INIT_TIMEOUT)
        if ready is None or "ready" not in ready:
            self.stop()
            raise CheckerError(self.init_failure(app, ready))
        self.init_lines = ready.get("lines") or []
        self.code = {path: self.modified(path) for path in ready.get("code") or []}

    @staticmethod
    def modified(path: str) -> Optional[tuple]:
        try:
            found = os.stat(path)
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size

    def code_changed(self) -> bool:
        """A file of the app's own modules was edited (or removed) since this environment imported it."""
        return any(self.modified(path) != stamp for path, stamp in self.code.items())

    @staticmethod
    def key_of(variables: dict, aws: dict, function_name: str) -> str:
        return json.dumps([sorted((str(k), str(v)) for k, v in variables.items()), sorted(aws.items()), function_name])

    def read(self, reading: int) -> None:
        with os.fdopen(reading, encoding="utf-8", errors="replace") as channel:
            for line in channel:
                try:
                    self.answers.put((len(line), json.loads(line)))
                except ValueError:
                    self.answers.put((len(line), {"error": {"errorType": "Runtime.MarshalError",
                                                            "errorMessage": "an answer that is not JSON"}}))
        self.answers.put((0, None))   # the process ended

    def next(self, timeout: float) -> Optional[dict]:
        try:
            size, message = self.answers.get(timeout=timeout)
        except queue.Empty:
            return {"timed_out": True}
        if message is not None:
            message["size"] = size
        return message

    def init_failure(self, app: HandlerApp, ready: Optional[dict]) -> str:
        folder = app.app_dir
        if ready is None:
            return f"--app {app.name}: the handler's process exited while importing {app.module} " \
                   f"(exit status {self.exit_status()})"
        if ready.get("timed_out"):
            return f"--app {app.name}: importing {app.module} took more than {INIT_TIMEOUT:g}s (Lambda's INIT limit)"
        missing = ready.get("missing")
        if missing and app.module.split(".")[0] == missing.split(".")[0]:
            return f"--app {app.name}: no module {missing} in {folder} (run checker local in the app's folder, " \
                   "or pass --app-dir)"
        if missing:
            return f"--app {app.name}: importing {app.module} needs the module {missing}, which is not installed " \
                   f"where checker runs ({sys.executable}): install the handler's dependencies there"
        return f"--app {app.name}: {ready.get('init_error')}"

    def invoke(self, event: dict, request_id: str, timeout: float) -> tuple:
        """(the answer, whether this environment may serve again)."""
        try:
            self.process.stdin.write(json.dumps({"event": event, "request_id": request_id, "timeout": timeout,  # type: ignore[union-attr]
                                                 "function_name": self.function_name, "memory": 128}) + "\n")
            self.process.stdin.flush()   # type: ignore[union-attr]
        except OSError:
            message: Optional[dict] = None
        else:
            message = self.next(timeout)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        if message is None:
            LOG.error(f"RequestId: {request_id} Error: Runtime exited with error: exit status {self.exit_status()}",
                      extra={"printed": True})
            return FUNCTION_ERROR, False
        if message.get("timed_out"):
            LOG.error(f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds", extra={"printed": True})
            return FUNCTION_ERROR, False
        for line in message.get("lines") or []:
            LOG.warning(line, extra={"printed": True})
        if "error" in message:
            return FUNCTION_ERROR, True
        size = len(json.dumps(message.get("answer")).encode()) if message["size"] > MAX_RESPONSE else 0
        if size > MAX_RESPONSE:   # the answer itself, not the log lines that came with it
            LOG.error(f"[ERROR] Response payload size ({size} bytes) exceeded maximum allowed payload size "
                      f"({MAX_RESPONSE} bytes).", extra={"printed": True})
            return FUNCTION_ERROR, True
        return message.get("answer"), True

    def exit_status(self) -> str:
        try:
            return str(self.process.wait(5))
        except subprocess.TimeoutExpired:   # its channel closed, the process not yet gone
            return "unknown"

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)   # whatever it ignores, and its children
        except (ProcessLookupError, PermissionError):
            pass
        with contextlib.suppress(OSError):
            self.process.stdin.close()   # type: ignore[union-attr]
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def parse_app(value: str) -> tuple:
    """(module, function) of `MODULE:FUNCTION` or `MODULE.FUNCTION`; a bad spelling is one line."""
    module, sep, function = value.rpartition(":") if ":" in value else value.rpartition(".")
    if not sep or not module or not function or not function.isidentifier() \
            or not all(part.isidentifier() for part in module.split(".")):
        raise CheckerError(f"--app {value[:120]}: expected spotify, none, or MODULE:FUNCTION (or MODULE.FUNCTION, "
                           "as Lambda's handler setting writes it), e.g. app:handler")
    return module, function


def load_app(value: str, app_dir: Optional[Path] = None, variables: Optional[dict] = None,
             function_name: str = "local"):
    """The app `--app` names, its INIT run now in a first execution environment (as Lambda does at
    a cold start, with `variables`): errors are one line. None for `none`."""
    if value == "none":
        return None
    if value == "spotify":
        return SpotifyApp()
    module_name, function_name = parse_app(value)
    app = HandlerApp(value, module_name, function_name, (app_dir or Path.cwd()).resolve())
    aws = {name: os.environ.get(name, "") for name in AWS_PASSED_ON}
    aws["AWS_DEFAULT_REGION"] = aws["AWS_REGION"] = aws["AWS_REGION"] or aws["AWS_DEFAULT_REGION"] or "us-east-1"
    first = app.start(variables or {}, aws, function_name)
    app.idle.append(first)   # warm, if the first invocation comes with the same configuration
    return app


AWS_PASSED_ON = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN")
