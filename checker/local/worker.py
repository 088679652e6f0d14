"""One Lambda execution environment of `checker local`: a process of its own that imports the
user's handler once (the INIT phase) and then serves invocations one at a time, as Lambda's
Python runtime does. Run by apps.py as `python worker.py MODULE FUNCTION APP_DIR FD`, with only
the function's variables (and the runtime's reserved ones) in its environment.

Standard library only, and nothing of checker: the process is the user's, not checker's.

Protocol, JSON lines: invocations come on stdin ({"event", "request_id", "function_name",
"timeout", "memory"}); answers go on the file descriptor FD ({"lines": [...], then "ready": true |
"init_error": text | "answer": the handler's result | "error": {"errorType", "errorMessage"}}),
stdout being the handler's own. What the handler prints or logs while it runs is captured per
invocation (Lambda's text format) and sent with its answer, so the parent ships it to the
function's log group between START and END.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import sys
import time
import traceback

NOTHING = object()   # the handler has not returned


class TextFormatter(logging.Formatter):
    """The Python runtime's text lines: `[ERROR]\t2026-12-02T10:00:00.123Z\t<request id>\tmessage`."""

    request_id = ""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return f"[{record.levelname}]\t{stamp}\t{self.request_id}\t{text}"


class Collector(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.formatter_ = TextFormatter()
        self.setFormatter(self.formatter_)
        self.lines: list = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not the caller's failure
            self.lines.append(f"[{record.levelname}]\t(a log record that could not be formatted)")


class Context:
    """What a handler may read of Lambda's context object."""

    def __init__(self, function_name: str, request_id: str, timeout: float, memory: int):
        self.function_name = function_name
        self.aws_request_id = request_id
        self.memory_limit_in_mb = memory
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:000000000000:" \
                                    f"function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def send(channel, message: dict) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


class Lines(io.TextIOBase):
    """stdout and stderr while a phase runs: each printed line joins the log records in the order
    they came, as Lambda's log stream has them."""

    def __init__(self, collector: Collector):
        self.collector = collector
        self.partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.partial += text
        *whole, self.partial = self.partial.split("\n")
        self.collector.lines += whole
        return len(text)

    def flush_partial(self) -> None:
        if self.partial:
            self.collector.lines.append(self.partial)
            self.partial = ""


@contextlib.contextmanager
def captured(collector: Collector):
    """Print lines and log records of this phase, in order, into collector.lines."""
    printed = Lines(collector)
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            yield
        finally:
            printed.flush_partial()


def own_files(app_dir: str) -> list:
    """The files of the app's own modules this environment imported (those under its folder):
    when one changes, the parent starts new environments, as a code deploy does on Lambda."""
    root = os.path.realpath(app_dir) + os.sep
    files = {os.path.realpath(getattr(module, "__file__", None) or "") for module in list(sys.modules.values())}
    return sorted(f for f in files if f.startswith(root))


def main() -> None:
    module_name, function_name, app_dir, channel_fd = sys.argv[1:5]
    channel = os.fdopen(int(channel_fd), "w", encoding="utf-8")
    sys.path[0] = app_dir   # not this file's folder (checker/local has an http.py): the app's, as LAMBDA_TASK_ROOT
    collector = Collector()
    root = logging.getLogger()
    root.addHandler(collector)
    root.setLevel(logging.INFO)          # as LOG_LEVEL's default on Lambda
    try:
        with captured(collector):
            function = getattr(importlib.import_module(module_name), function_name, None)
    except ModuleNotFoundError as exc:
        send(channel, {"lines": collector.lines, "init_error": f"no module {exc.name}", "missing": exc.name})
        return
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import included: the INIT phase failed
        send(channel, {"lines": collector.lines, "init_error": f"importing {module_name} raised "
                                                               f"{type(exc).__name__}: {str(exc)[:300]}"})
        return
    if not callable(function):
        send(channel, {"lines": collector.lines, "init_error": f"{module_name} has no function {function_name}"})
        return
    send(channel, {"lines": collector.lines, "ready": True, "code": own_files(app_dir)})
    for line in sys.stdin:
        request = json.loads(line)
        collector.lines = []
        collector.formatter_.request_id = request["request_id"]
        context = Context(request["function_name"], request["request_id"], request["timeout"], request["memory"])
        answer = NOTHING
        try:
            with captured(collector):
                answer = function(request["event"], context)
            reply = json.dumps({"answer": answer})
        except Exception as exc:  # noqa: BLE001 - the handler's failure: Lambda's error line, then a 502
            if answer is not NOTHING:   # it returned what JSON cannot hold (a datetime, a set, NaN's kin)
                kind, text = "Runtime.MarshalError", f"Unable to marshal response: {exc}"
                logging.getLogger().error("%s: %s", kind, text)
            else:
                kind, text = type(exc).__name__, str(exc)
                logging.getLogger().error("%s: %s", kind, exc, exc_info=True)
            reply = json.dumps({"error": {"errorType": kind, "errorMessage": text[:1000]}})
        send(channel, {"lines": collector.lines, **json.loads(reply)})


if __name__ == "__main__":
    main()
