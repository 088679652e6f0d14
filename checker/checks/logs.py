"""CloudWatch Logs: count the events matching a filter pattern in a log group since a moment.

`--since` takes a duration back from now (`15m`, `2h`, `1d`, `90s`, `1w`, `1h30m`), an ISO 8601 time
(`2025-10-04T23:20:00Z`; without an offset it is UTC) or epoch milliseconds (`1759606800000`).
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Optional

from ..checklist import LogCheck
from ..context import CheckContext
from ..errors import AwsError, expect, pages
from ..log_pattern import JsonPattern, TextPattern, UnsupportedPattern, parse
from ..results import CheckResult, Status
from ..secrets import Redactor
from ..text import clip

DURATION = re.compile(r"(?:\d{1,9}(?:\.\d{1,6})?[smhdw])+")
DURATION_PART = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)([smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EARLIEST_MS = 946_684_800_000   # 2000-01-01: CloudWatch Logs holds nothing older
SAMPLE_CHARS = 400
APP_FRAMES = 3
# Lambda's runtimes: Node.js prints `ERROR\tInvoke Error \t{json}` (or `Unhandled Promise Rejection`),
# Python `[ERROR] Type: message` then a traceback.
NODE_ERROR = re.compile(r"\b(Invoke Error|Unhandled Promise Rejection|Uncaught Exception)\b")
PY_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
NODE_FRAME = re.compile(r"^\s*at\s+(?P<frame>.+)$")
LIBRARY = re.compile(r"node_modules|node:internal|site-packages|/var/runtime/|/opt/python/|bootstrap")


def sample_line(message: str, redactor: Redactor) -> str:
    """One event as a sample: for Lambda's Node.js and Python error formats, the error type,
    message and the first frames of the app's own code (not the SDK's), which a cut at a fixed
    length would hide; secrets masked before anything is cut."""
    text = redactor.remote(str(message).strip())
    summary = _node_error(text) or _python_error(text)
    flat = summary or text.replace("\r", " ").replace("\n", " ")
    return flat[:SAMPLE_CHARS] + ("..." if len(flat) > SAMPLE_CHARS else "")


def _node_error(text: str) -> Optional[str]:
    found = NODE_ERROR.search(text)
    start = text.find("{", found.end()) if found else -1
    if found is None or start < 0:
        return None
    try:
        error = json.loads(text[start:])
    except ValueError:
        return None
    if not isinstance(error, dict):
        return None
    stack = error.get("stack") or []
    lines = stack if isinstance(stack, list) else str(stack).splitlines()
    frames = [m["frame"] for m in (NODE_FRAME.match(str(line)) for line in lines) if m and not LIBRARY.search(m["frame"])]
    head = f"{found.group(1)}: {error.get('errorType', '?')}: {error.get('errorMessage', '')}".rstrip(": ")
    return " | ".join([head, *(f"at {f}" for f in frames[:APP_FRAMES])])


def _python_error(text: str) -> Optional[str]:
    if "Traceback (most recent call last)" not in text and "[ERROR]" not in text:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    frames = [f"{m['file']}:{m['line']} in {m['function']}" for m in (PY_FRAME.search(line) for line in lines)
              if m and not LIBRARY.search(m["file"])]
    errors = [line for line in lines if re.match(r"(\[ERROR\]\s*)?[A-Za-z_][\w.]*(Error|Exception)\b", line)]
    if not frames and not errors:
        return None
    head = errors[-1] if errors else lines[0]
    return " | ".join([head, *(f"at {f}" for f in frames[-APP_FRAMES:])])


CLOCK_SKEW_MS = 5 * 60_000   # --since may be this far ahead of this machine's clock


def parse_since(value: str, now_ms: int) -> int:
    """Epoch milliseconds of `value`, between 2000 and now; ValueError with the accepted forms otherwise."""
    text = value.strip()
    shown = clip(value, 40)
    if DURATION.fullmatch(text):
        seconds = sum(float(number) * UNIT_SECONDS[unit] for number, unit in DURATION_PART.findall(text))
        moment_ms = now_ms - int(seconds * 1000)
    elif text.isdigit():
        if len(text) < 12:
            raise ValueError(f"{shown!r} looks like epoch seconds; give epoch milliseconds (13 digits)")
        moment_ms = int(text) if len(text) <= 15 else -1
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{shown!r} is not a duration (15m, 2h, 1h30m, 1d, 1w), an ISO time or epoch "
                             "milliseconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        moment_ms = int(moment.timestamp() * 1000)
    if not EARLIEST_MS <= moment_ms:
        raise ValueError(f"{shown!r} is not between 2000-01-01 and now")
    if moment_ms > now_ms + CLOCK_SKEW_MS:
        # a local deploy time written without its offset, east of UTC, lands here: counting from
        # the future would find nothing and pass whatever was logged
        raise ValueError(f"{shown!r} is {iso(moment_ms)}, in the future (now is {iso(now_ms)}): nothing would be "
                         "counted; give the time with its offset (+02:00) or in UTC (Z)")
    return moment_ms


def since_note(value: Optional[str]) -> str:
    """What the output says of how --since was read: an ISO time without an offset is UTC."""
    text = (value or "").strip()
    if not text or DURATION.fullmatch(text) or text.isdigit():
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return " (--since had no offset: taken as UTC)" if moment.tzinfo is None else ""


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def count_matching_events(client, log_group: str, pattern: str, since_ms: int, samples: int,
                          redactor: Optional[Redactor] = None) -> tuple:
    """(count, first `samples` messages, why checker could not evaluate the pattern or "") of
    events matching `pattern` since `since_ms`. checker applies the pattern to every event it
    reads (checker/log_pattern.py); the server gets only the plain words each match contains. A
    pattern checker cannot evaluate (space-delimited; validate refuses it) is left to the server,
    and said."""
    count, sample_lines = 0, []  # type: tuple[int, list[str]]
    redactor = redactor or Redactor()
    parsed: Optional[TextPattern | JsonPattern] = None
    try:
        parsed = parse(pattern)
        server_pattern, unevaluated = parsed.server_pattern(), ""
    except UnsupportedPattern as exc:
        server_pattern, unevaluated = pattern, str(exc)
    params = {"logGroupName": log_group, "startTime": since_ms, "endTime": int(time.time() * 1000)}
    if server_pattern:
        params["filterPattern"] = server_pattern
    for page in pages(client, "FilterLogEvents", "logs", **params):
        expect(page, ("events",), "FilterLogEvents", "logs")
        for event in page["events"]:
            message = event.get("message", "")
            if parsed is not None and not parsed.matches(message):
                continue
            count += 1
            if len(sample_lines) < samples:
                sample_lines.append(sample_line(message, redactor))
    return count, sample_lines, unevaluated


def check_logs(ctx: CheckContext) -> list:
    """Count the matching events, having looked: without a function or a log group to read,
    the result says so (an error, a warning, or in a smoke test after its calls a failure)."""
    settings = ctx.checklist.logs or LogCheck()
    check_id = "logs:" + (settings.filter_pattern or "all")
    if not settings.log_group and ctx.function is None:
        return [CheckResult(check_id, "logs", Status.ERROR, f"not checked: function {ctx.function_name} does not exist, "
                            "so it has no log group to count in",
                            remediation="deploy the function, or set logs.log_group in the checklist")]
    log_group = settings.log_group or f"/aws/lambda/{ctx.function_name}"
    expected = (f"at most {settings.threshold} event(s) matching {settings.filter_pattern!r} since "
                f"{iso(ctx.since_ms)}{ctx.since_note}")
    try:
        count, samples, unevaluated = count_matching_events(ctx.client("logs"), log_group, settings.filter_pattern,
                                                            ctx.since_ms, settings.samples, ctx.redactor())
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return [missing_log_group(ctx, check_id, log_group, expected)]
        raise
    found = f"{count} event(s) in {log_group}"
    summary = f"{found} matching {settings.filter_pattern!r} since {iso(ctx.since_ms)}" + (
        f", as the server evaluated it: {unevaluated}" if unevaluated else "")
    status = Status.PASS if count <= settings.threshold else Status.FAIL
    if status == Status.PASS and unevaluated:
        return [CheckResult(check_id, "logs", Status.WARN, summary, expected=expected, found=found,
                            remediation="use a text pattern (terms, \"phrases\", -exclusions, ?alternatives), which "
                                        "checker evaluates itself, or confirm the count by hand")]
    return [CheckResult(
        check_id, "logs", status, summary,
        expected=expected, found=found, details=tuple(samples) if status == Status.FAIL else (),
        remediation="" if status == Status.PASS else
        f"aws logs filter-log-events --log-group-name {log_group} --start-time {ctx.since_ms} "
        f"--filter-pattern '{settings.filter_pattern}'")]


def missing_log_group(ctx: CheckContext, check_id: str, log_group: str, expected: str) -> CheckResult:
    """Nothing to count is not zero errors. After a smoke test's calls a function that logs
    nothing is broken (or logs elsewhere); otherwise it may simply not have run yet."""
    if ctx.logs_expected:
        return CheckResult(check_id, "logs", Status.FAIL,
                           f"log group {log_group} does not exist after the endpoint calls: nothing counted",
                           expected=expected, found="no log group",
                           remediation="check that the function runs and may write logs (logs:CreateLogGroup, "
                                       "logs:PutLogEvents), or set logs.log_group in the checklist")
    return CheckResult(check_id, "logs", Status.WARN, f"log group {log_group} does not exist: nothing logged yet, "
                       "nothing counted", expected=expected, found="no log group",
                       remediation="once the function has served requests, run", checker_command="smoke")


def settle_then_check_logs(ctx: CheckContext, log=lambda message: None) -> list:
    """--settle first: CloudWatch Logs takes a few seconds to make a new line searchable."""
    if ctx.logs_settle:
        log(f"logs: waiting {ctx.logs_settle:g}s for CloudWatch Logs to ingest recent events")
        time.sleep(ctx.logs_settle)
    return check_logs(ctx)
