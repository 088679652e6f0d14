"""One deadline for a whole command (`--timeout`, a poll.Deadline armed): every AWS call's connect and read timeouts are
bounded by what is left of it, and no call (a botocore retry included) is sent once it has
passed. botocore's own retries and timeouts are per attempt and per read: without this, a
`--timeout 5` could run for half a minute of retries.

Per-read timeouts (urllib3's, botocore's) are defeated by a peer that drips a byte a second, so
the deadline is also enforced on the sockets themselves: `WATCHDOG` learns of every socket
connected while a deadline is armed (through the interpreter's `socket.connect` audit event, so
it sees botocore's, urllib3's and any library's connections alike), shuts it down the moment its
deadline passes, and refuses new connections after it. A blocked read then returns at once, in
whichever thread it was, so no worker of a thread pool is left hanging.
"""
from __future__ import annotations

import heapq
import itertools
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

from .errors import AwsError

DEADLINE_EXCEEDED = "DeadlineExceeded"


CALL_FAILED = "checker-call-failed"   # emitted on a client by errors.call and errors.pages


def guard(deadline, client) -> None:
    """No request of `client` (retries included) leaves after the deadline, and no retry
    sleeps past it: botocore's retry handler is wrapped so that a backoff longer than what is
    left ends the call at once."""
    _cap_retry_backoff(deadline, client)
    endpoint = client.meta.endpoint_url

    def before_send(request=None, **kwargs):
        if endpoint in deadline.unreachable:
            raise AwsError(deadline.unreachable[endpoint], "Unreachable")
        operation = (request.headers.get("X-Amz-Target", b"") if request is not None else b"")
        operation = operation.decode() if isinstance(operation, bytes) else str(operation)
        deadline.check(operation.split(".")[-1] or "the next AWS request")

    def failed(error=None, **kwargs):
        if deadline.expired and error is not None and error.code != DEADLINE_EXCEEDED:
            return AwsError(f"--timeout: {deadline.seconds:g}s passed while waiting for {endpoint} to answer; "
                            "nothing more is sent", DEADLINE_EXCEEDED)
        if error is not None and error.unreachable:
            deadline.unreachable.setdefault(endpoint, str(error))
        return None
    client.meta.events.register("before-send", before_send)
    client.meta.events.register(CALL_FAILED, failed)


def _cap_retry_backoff(deadline, client) -> None:
    name = client.meta.service_model.service_id.hyphenize()
    event, unique_id = f"needs-retry.{name}", f"retry-config-{name}"
    registered = getattr(getattr(client.meta.events, "_emitter", None), "_unique_id_handlers", {}).get(unique_id)
    if not registered:
        return  # botocore without this seam: the before-send check still bounds every request
    retry = registered["handler"]

    def capped(**kwargs):
        delay = retry(**kwargs)
        if delay is not None and delay >= deadline.remaining():
            deadline.check("a retry")           # raises once the deadline has passed
            raise AwsError(f"--timeout: {deadline.seconds:g}s would pass during botocore's next retry backoff "
                           f"({delay:.1f}s); nothing more is sent", DEADLINE_EXCEEDED)
        return delay
    client.meta.events.unregister(event, unique_id=unique_id)
    client.meta.events.register(event, capped, unique_id=unique_id)


class DeadlinePassed(TimeoutError):
    """A connection attempted after its deadline: urllib3 and botocore see a connect timeout."""


class Watchdog:
    """Shuts down the sockets whose deadline has passed (one daemon thread, started when first
    needed). The deadline of a socket is the one current when it connected: this thread's own
    (`within`, an endpoint request), else the command's (`arm`)."""

    def __init__(self):
        self.command_deadline: Optional[float] = None   # time.monotonic() value
        self.in_command = False
        self.local = threading.local()
        self.condition = threading.Condition()
        self.heap: list = []                               # (when, n, weakref to the socket)
        self.counter = itertools.count()
        self.thread: Optional[threading.Thread] = None
        self.hooked = False

    # -- deadlines ---------------------------------------------------------------------------
    @contextmanager
    def command(self) -> Iterator[None]:
        """A command runs inside: only here does a Deadline's `arm` bound every connection of the
        process (a library user's other connections are never bound by checker's deadline).
        Afterwards later connections have no deadline (the sockets watched keep theirs)."""
        self.in_command = True
        try:
            yield
        finally:
            self.in_command = False
            self.command_deadline = None

    def arm(self, deadline) -> None:
        """The command's deadline, for every socket any thread connects from now on."""
        if self.in_command:
            self._hook()
            self.command_deadline = deadline.at

    @contextmanager
    def within(self, seconds: float) -> Iterator[float]:
        """Sockets this thread connects inside the block are shut down after `seconds` (or at the
        command's deadline, when that comes first). Yields the moment, as time.monotonic()."""
        self._hook()
        previous = getattr(self.local, "deadline", None)
        when = time.monotonic() + seconds
        self.local.deadline = min(when, previous) if previous else when
        try:
            yield self.local.deadline
        finally:
            self.local.deadline = previous

    def current(self) -> Optional[float]:
        candidates = [d for d in (getattr(self.local, "deadline", None), self.command_deadline) if d is not None]
        return min(candidates) if candidates else None

    # -- sockets -----------------------------------------------------------------------------
    def _hook(self) -> None:
        if not self.hooked:
            self.hooked = True
            sys.addaudithook(self._audit)  # cannot be removed: it does nothing while nothing is armed

    def _audit(self, event: str, args: tuple) -> None:
        if event != "socket.connect":
            return
        when = self.current()
        if when is None or not args or not isinstance(args[0], socket.socket):
            return
        if time.monotonic() >= when:
            raise DeadlinePassed("the deadline passed: no new connection is made")
        self.watch(args[0], when)

    def watch(self, sock: socket.socket, when: float) -> None:
        with self.condition:
            heapq.heappush(self.heap, (when, next(self.counter), weakref.ref(sock)))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="checker-deadline-watchdog", daemon=True)
                self.thread.start()
            self.condition.notify()

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.heap:
                    self.condition.wait()
                when, _, ref = self.heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self.condition.wait(delay)
                    continue
                heapq.heappop(self.heap)
            sock = ref()
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)   # a blocked recv returns now; the owner closes it
                except OSError:
                    pass                               # closed already, or never connected


WATCHDOG = Watchdog()
