"""The `checker` command line: parse options, call the API (checker/api.py), format, exit.

`commands` holds the commands, `options` the options they share, `output` what is printed and
how a command fails. Exit codes: 0 all good; 1 a check failed or an error; 2 `plan
--detailed-exitcode` found changes. Results go to stdout, progress and errors to stderr.
"""
from .commands import main

__all__ = ["main"]
