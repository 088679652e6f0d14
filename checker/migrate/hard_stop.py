"""The last resort against a user's code that never returns: a transform in an endless loop, or
blocked on something of its own, ignores the migration's --timeout (checked at checkpoints,
which it never reaches) and Ctrl-C / SIGTERM (a KeyboardInterrupt in the main thread, while the
transform runs in a copy's worker thread, which the interpreter then waits for at exit).

`HardStop` watches from a thread of its own: once the deadline or an interrupt is GRACE_SECONDS
old and the run has still not returned, it says so in one line, frees the ledger's lease
(`on_give_up`) and ends the process with os._exit. That is a SIGKILL with a word: the page in
flight is not checkpointed, and the same command, run again, goes on where the last checkpoint
was (every phase is resumable after a kill; a fence the run had raised stays until the rerun
switches or lifts it). Only the CLI asks for it (MigrateOptions.stop_hard): a library caller's
process is its own. The grace is real time (whatever clock the deadline runs on), counted from
the first look that saw the deadline passed.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Optional

from ..poll import Deadline

GRACE_SECONDS = 5.0      # how long a run may take to stop at a checkpoint once asked to
LOOK_SECONDS = 0.25      # how often it looks
INTERRUPTED = 130        # the exit code of a run stopped by Ctrl-C or SIGTERM (as entry.py's)
TIMED_OUT = 1


class HardStop:
    def __init__(self, deadline: Optional[Deadline], on_give_up: Callable[[], None],
                 echo: Callable[[str], None], grace: float = GRACE_SECONDS, exit: Callable[[int], None] = os._exit):
        self.deadline, self.on_give_up, self.echo, self.grace, self.exit = deadline, on_give_up, echo, grace, exit
        self.interrupted_at: Optional[float] = None     # time.monotonic() of the first interrupt
        self.expired_at: Optional[float] = None         # ... of the first look that saw the deadline passed
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="hard-stop", daemon=True)
        self.previous: dict = {}

    def __enter__(self) -> HardStop:
        if threading.current_thread() is threading.main_thread():   # signal handlers: the main thread's only
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._on_signal)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.finished.set()
        self.thread.join()
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def interrupted(self) -> None:
        if self.interrupted_at is None:
            self.interrupted_at = time.monotonic()

    def _on_signal(self, signum, frame) -> None:
        self.interrupted()
        previous = self.previous.get(signum)
        if callable(previous) and previous not in (signal.SIG_DFL, signal.SIG_IGN):
            previous(signum, frame)
        raise KeyboardInterrupt

    def overdue(self) -> Optional[tuple]:
        """(why, exit code) once the run has had its grace to stop and has not."""
        now = time.monotonic()
        if self.interrupted_at is not None and now - self.interrupted_at >= self.grace:
            return "the interrupt", INTERRUPTED
        if self.expired_at is None and self.deadline is not None and self.deadline.expired:
            self.expired_at = now
        if self.deadline is not None and self.expired_at is not None and now - self.expired_at >= self.grace:
            return f"--timeout {self.deadline.seconds:g}s", TIMED_OUT
        return None

    def _watch(self) -> None:
        while not self.finished.wait(LOOK_SECONDS):
            reason = self.overdue()
            if reason is None:
                continue
            why, code = reason
            self.echo(f"error: the migration did not stop within {self.grace:g} s of {why} (a transform that "
                      "never returns?): stopped hard; the page in flight was not checkpointed: run the same "
                      "command again to go on from the last checkpoint")
            try:
                self.on_give_up()
            except BaseException:  # noqa: BLE001 - stopping regardless: the rerun takes over a dead run's lease
                pass
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            self.exit(code)
            return
