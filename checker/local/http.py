"""One threaded HTTP server on 127.0.0.1, shared by every fake: start/stop, its URL, and one way
to answer (headers and body in a single send, with TCP_NODELAY, so a fake costs microseconds
per call rather than the 40 ms of Nagle's algorithm meeting delayed ACKs)."""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log on stderr, and `route(handler, method)` for every method."""

    protocol_version = "HTTP/1.1"
    route: Callable = staticmethod(lambda handler, method: None)

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server: Any = self.server
        with server.counting:
            server.connections += 1   # tests count connection reuse

    def log_message(self, *args):
        pass

    def parse_request(self) -> bool:
        self._body: Optional[bytes] = None   # a new request on the kept-alive connection: its own body
        return super().parse_request()

    def do_GET(self):
        self.route(self, "GET")

    def do_POST(self):
        self.route(self, "POST")

    def do_PUT(self):
        self.route(self, "PUT")

    def do_DELETE(self):
        self.route(self, "DELETE")

    def do_PATCH(self):
        self.route(self, "PATCH")

    def do_HEAD(self):
        self.route(self, "HEAD")

    def body(self) -> bytes:
        """The request's body, read once (a second call gives the same bytes, never a wait for more)."""
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body


def send(handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: Optional[dict] = None,
         content_type: str = "application/json") -> None:
    """The whole answer in one write."""
    lines = [f"HTTP/1.1 {status} {handler.responses.get(status, ('',))[0]}",
             f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
    handler.wfile.flush()


def send_json(handler: BaseHTTPRequestHandler, status: int, document, headers: Optional[dict] = None) -> None:
    send(handler, status, json.dumps(document).encode(), headers)


class BackloggedServer(ThreadingHTTPServer):
    """socketserver listens with a backlog of 5: a client opening 50 connections at once (checker's
    pool) gets SYNs dropped and retransmitted a second later, a delay no AWS endpoint has."""

    request_queue_size = 1024


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 (`port` 0: any free one) calling `route(handler, method)`."""

    def __init__(self, route: Callable, port: int = 0):
        handler = type("Handler", (QuietHandler,), {"route": staticmethod(route)})
        self.httpd = BackloggedServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        httpd: Any = self.httpd
        httpd.connections = 0              # TCP connections accepted so far
        httpd.counting = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far: clients that reuse theirs (HTTP keep-alive) open few."""
        return int(getattr(self.httpd, "connections", 0))

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
