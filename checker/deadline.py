"""One deadline for a whole command (`--timeout`): every AWS call's connect and read timeouts are
bounded by what is left of it, and no call (a botocore retry included) is sent once it has
passed. botocore's own retries and timeouts are per attempt and per read: without this, a
`--timeout 5` could run for half a minute of retries."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import AwsError

DEADLINE_EXCEEDED = "DeadlineExceeded"


@dataclass(frozen=True)
class Deadline:
    seconds: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return max(0.0, self.started + self.seconds - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def bound(self, seconds: float) -> float:
        """`seconds`, or what is left of the deadline when that is less (never below 0.1 s)."""
        return max(0.1, min(seconds, self.remaining()))

    def check(self, what: str) -> None:
        if self.expired:
            raise AwsError(f"--timeout: {self.seconds:g}s passed before {what} could be sent; nothing more is "
                           "sent (a longer --timeout, or look at why AWS is slow)", DEADLINE_EXCEEDED)

    def guard(self, client) -> None:
        """No request of `client` (retries included) leaves after the deadline, and no retry
        sleeps past it: botocore's retry handler is wrapped so that a backoff longer than what is
        left ends the call at once."""
        self._cap_retry_backoff(client)
        def before_send(request=None, **kwargs):
            operation = (request.headers.get("X-Amz-Target", b"") if request is not None else b"")
            operation = operation.decode() if isinstance(operation, bytes) else str(operation)
            self.check(operation.split(".")[-1] or "the next AWS request")
        client.meta.events.register("before-send", before_send)

    def _cap_retry_backoff(self, client) -> None:
        name = client.meta.service_model.service_id.hyphenize()
        event, unique_id = f"needs-retry.{name}", f"retry-config-{name}"
        registered = getattr(getattr(client.meta.events, "_emitter", None), "_unique_id_handlers", {}).get(unique_id)
        if not registered:
            return  # botocore without this seam: the before-send check still bounds every request
        retry = registered["handler"]

        def capped(**kwargs):
            delay = retry(**kwargs)
            if delay is not None and delay >= self.remaining():
                self.check("a retry")           # raises once the deadline has passed
                raise AwsError(f"--timeout: {self.seconds:g}s would pass during botocore's next retry backoff "
                               f"({delay:.1f}s); nothing more is sent", DEADLINE_EXCEEDED)
            return delay
        client.meta.events.unregister(event, unique_id=unique_id)
        client.meta.events.register(event, capped, unique_id=unique_id)
