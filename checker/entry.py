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
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
