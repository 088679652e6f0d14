"""What the command line prints and how it fails: one redactor over every line, colour on a
terminal only, `error:` lines on stderr with a result still in the chosen format, exit codes,
and the question before a write. No command logic here."""
from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Optional

import click

from .. import report
from ..api import (
    CheckerError,
    CheckResult,
    Interrupted,
    Redactor,
    Status,
    clip,
    command_scope,
    escape_controls,
)

# Everything printed passes through one redactor that knows the run's secrets (credentials in
# --endpoint-url, the checklist's sensitive headers and query values): results, fix lines, errors.
OUTPUT = Redactor()


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def confirm(yes: bool, question: str, verb: str, preamble: Callable[[], None] = lambda: None) -> None:
    """Ask on a terminal unless --yes (after `preamble`, what the question is about); never wait
    for an answer from a pipe."""
    if yes:
        return
    if not stdin_is_terminal():
        raise CheckerError(f"not asking for confirmation: stdin is not a terminal; pass --yes to {verb}")
    preamble()
    if not click.confirm(question, err=True):
        raise CheckerError("cancelled; nothing was changed")


def colour_wanted(stream) -> bool:
    """Colour on a terminal, never in a pipe, a file or with NO_COLOR set (no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


def echo(text: str) -> None:
    text = OUTPUT(text)
    click.echo(report.colour(text) if colour_wanted(sys.stdout) else text, color=colour_wanted(sys.stdout))


def stderr(message: str) -> None:
    click.echo(OUTPUT(message), err=True)


MAX_ERROR_LINE = 1000


def fail(message: str, stdout: Optional[str] = None) -> None:
    """`error: ...` on stderr (one line per line of the message), the result on stdout, exit 1."""
    # our own lines are split on \n only; any other control character (an AWS message's \x1e, a
    # terminal escape) is shown escaped; an echoed 100,000-character option stays one line
    # one `error:` line, for whoever greps for it; a message of several lines (every problem of
    # a spec) goes on under it, indented
    for number, line in enumerate(message.rstrip("\n").split("\n")):
        stderr(f"{'error: ' if number == 0 else '       '}{clip(escape_controls(line), MAX_ERROR_LINE)}")
    if stdout is not None:
        echo(stdout)
    sys.exit(1)


def exit_on_errors(stdout_for: Callable[[CheckerError, str], Optional[str]]):
    """Every CheckerError becomes `error: ...` lines on stderr, whatever `stdout_for(error, format)`
    gives on stdout, and exit 1; Ctrl-C exits 130. No traceback reaches the user: an unexpected
    exception is one masked line too."""
    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            output_format = kwargs.get("output_format", "text")
            try:
                with command_scope():
                    return command(*args, **kwargs)
            except KeyboardInterrupt:
                stderr("error: interrupted; anything already sent to AWS carries on there")
                sys.exit(130)
            except Interrupted as exc:
                stderr(f"error: {exc}")
                sys.exit(130)
            except CheckerError as exc:
                fail(str(exc), stdout_for(exc, output_format))
            except (RecursionError, MemoryError) as exc:
                error = CheckerError(f"input too large or too deeply nested to process ({type(exc).__name__})")
                fail(str(error), stdout_for(error, output_format))
            except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
                error = CheckerError(f"unexpected {type(exc).__name__}: {clip(str(exc), 200)} (a bug in checker)")
                fail(str(error), stdout_for(error, output_format))
        return wrapper
    return decorate


# Plain commands: JSON consumers get {"error": ...}; text readers have stderr.
handle_errors = exit_on_errors(lambda exc, fmt: json.dumps({"error": OUTPUT(clip(str(exc), MAX_ERROR_LINE))})
                               if fmt == "json" else None)


def _error_as_check_result(exc: CheckerError, output_format: str) -> str:
    lines = [clip(line, MAX_ERROR_LINE) for line in str(exc).splitlines()] or [""]
    result = CheckResult("checker", "checker", Status.ERROR, lines[0], details=tuple(lines[1:]))
    return report.formatter(output_format).checks([result])


# Checks commands: an error before any check runs (bad checklist, bad option) is still a result
# in the chosen format, so a CI parser always finds one.
checks_command = exit_on_errors(_error_as_check_result)


CHECKS_COMMANDS = ("check", "smoke", "bootstrap")


def format_in(args: list, allowed: tuple) -> Optional[str]:
    """The --format value given on the command line, when it is one `allowed` (usage errors come
    before click has parsed it)."""
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--format" and i + 1 < len(args) else (
            arg.split("=", 1)[1] if arg.startswith("--format=") else None)
        if value in allowed:
            return value
    return None


class CheckerGroup(click.Group):
    """click's usage errors exit 2, which `plan --detailed-exitcode` uses for "changes pending":
    here every usage error is one `error:` line and exit 1, and a checks command still gives its
    error result in the format asked for, so a CI parser finds one."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        OUTPUT.secrets.clear()
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):   # Ctrl-C or SIGTERM while click parsed
                stderr("error: interrupted")
                sys.exit(130)
            fail("aborted")
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(0)
        except click.ClickException as exc:
            command = next((a for a in args if a in self.commands), None)
            chosen = format_in(args, report.formats_for("checks")) if command in CHECKS_COMMANDS else None
            message = OUTPUT(clip(exc.format_message(), 500))
            hint = f" (see checker {command} --help)" if command else " (see checker --help)"
            stdout = _error_as_check_result(CheckerError(message), chosen) if chosen else None
            fail(message + hint, stdout)

    def format_commands(self, ctx, formatter) -> None:
        """Each command's whole first sentence, wrapped, never cut with "..." as click's default
        does at the terminal's width."""
        rows = [(name, command.get_short_help_str(limit=1000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
