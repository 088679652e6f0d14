"""The `checker` command's first lines: signals are handled before anything heavy is imported.

A Ctrl-C while Python is still importing click, boto3 and the rest (the first ~0.2 s) would
print a traceback; SIGTERM (a CI runner cancelling a job, `kill`) would end apply without a word
about what it left in flight. Here both become KeyboardInterrupt from the first line, and the
commands turn that into one line: "interrupted", naming what is still running on AWS. Output
that the terminal's encoding cannot carry is escaped rather than a crash.
"""
import signal
import sys


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(prog_name: str = "checker") -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    for stream in (sys.stdout, sys.stderr):   # text a terminal cannot carry (a lone surrogate from YAML's
        reconfigure = getattr(stream, "reconfigure", None)   # "\ud800") is written escaped, never a crash
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        from .cli import main
        main(prog_name=prog_name)
    except KeyboardInterrupt:
        interrupted()
    except RuntimeError as exc:
        # a Ctrl-C while a class is being built at import: Python before 3.12 wraps what a field's
        # __set_name__ raised ("Error calling __set_name__ on ..."), the KeyboardInterrupt its cause
        if isinstance(exc.__cause__, KeyboardInterrupt):
            interrupted()
        raise


def interrupted() -> None:
    sys.stderr.write("error: interrupted\n")
    sys.exit(130)
