"""`checker local`: moto's server, the fake Spotify and the app on 127.0.0.1, deployed as an
environment of the checklist, to try every checker command without an AWS account."""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from typing import Optional

from .checklist import Checklist
from .errors import CheckerError
from .testing.app_server import AppServer
from .testing.deploy import binding_variables, deploy_function, role_policy
from .testing.fake_spotify import FakeSpotify


class LocalStack:
    """moto's server + the fake Spotify + the app, all on 127.0.0.1: an environment to try
    `checker` on without an AWS account. `deploy()` creates the Lambda function (its code
    is a stub: the app itself is served by AppServer), its role and a Function URL."""

    def __init__(self, port: int = 0, tracks: int = 120, user: str = "demo", region: str = "us-east-1",
                 log_file: Optional[str] = None):
        """moto on `port`, the fake Spotify on `port + 1`, the app on `port + 2` (0: any free ports).
        moto's own logging (tracebacks of the calls it does not implement included) goes to
        `log_file`, never to the terminal."""
        from moto.server import ThreadedMotoServer  # the local extra: imported only when asked for

        ports = [port, port + 1, port + 2] if port else [0, 0, 0]
        busy = [p for p in ports if p and not port_is_free(p)]
        if busy:
            raise CheckerError(f"port {busy[0]} is in use on 127.0.0.1: pass another --port (it uses three: "
                               f"{port}, {port + 1}, {port + 2}) or --port 0 for any free ones")
        self.log_file = log_file or os.path.join(tempfile.gettempdir(), f"checker-local-{os.getpid()}.log")
        send_logging_to(self.log_file)
        self.region = region
        self.user = user
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=ports[0], verbose=False)
        self.spotify = FakeSpotify(port=ports[1])
        self.tracks = tracks
        self.app = AppServer({}, region=region, port=ports[2])  # its moto endpoint is known once moto runs

    @property
    def endpoint(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    def __enter__(self):
        self.moto.start()
        wait_for_port(*self.moto.get_host_and_port())
        self.spotify.start()
        self.spotify.add_user(self.user, self.tracks)
        self.app.endpoint = self.endpoint
        self.app.environ = self.app_settings()
        self.app.__enter__()
        return self

    def __exit__(self, *exc):
        self.app.__exit__(*exc)
        self.spotify.stop()
        self.moto.stop()

    def app_settings(self) -> dict:
        """Every setting the app's health asks for, pointing at the fake Spotify (fake values)."""
        return {"DEFAULT_USER_ID": self.user, "SPOTIFY_API_BASE_URL": self.spotify.api_base,
                "SPOTIFY_ACCOUNTS_BASE_URL": self.spotify.url, "SPOTIFY_REFRESH_TOKEN": f"refresh-{self.user}",
                "SPOTIFY_CLIENT_ID": "local-client-id", "SPOTIFY_CLIENT_SECRET": "local-client-secret"}

    def deploy(self, project) -> None:
        """The project's function, configured as the app is served: the checklist's required
        variables, the app's settings and each bound table's name in this environment, its role
        granting the checklist's permissions. From now on the app serves with that configuration
        and logs to the function's log group."""
        checklist = project.checklist or Checklist("(none)")
        function_name = project.function_name or "spotify-playlist-local"
        variables = {name: f"local-{name.lower()}" for name in checklist.required_env}
        variables.update(self.app_settings())
        variables.update(binding_variables(checklist.bindings, project.tables))
        policy = role_policy(project.tables, list(checklist.permissions), self.region)
        deploy_function(self.endpoint, self.region, function_name, policy, variables)
        self.app.environ = variables
        self.app.ship_logs_to(f"/aws/lambda/{function_name}")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    """moto's server starts on a thread and never says whether it could: ask the port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise CheckerError(f"moto's server did not start on {host}:{port} within {timeout:g}s") from None
            time.sleep(0.05)


def send_logging_to(path: str) -> None:
    """Every log record of this process (moto's, werkzeug's, Flask's) to `path`; with a handler on
    the root logger, Flask adds no terminal handler of its own."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)

