"""`checker local`: moto's server, the fake Spotify and the app on 127.0.0.1, deployed as an
environment of the checklist, to try every checker command without an AWS account."""
from __future__ import annotations

import logging

from .checklist import Checklist
from .testing.app_server import AppServer
from .testing.deploy import binding_variables, deploy_function, role_policy
from .testing.fake_spotify import FakeSpotify


class LocalStack:
    """moto's server + the fake Spotify + the app, all on 127.0.0.1: an environment to try
    `checker` on without an AWS account. `deploy_function()` creates the Lambda function (its code
    is a stub: the app itself is served by AppServer), its role and a Function URL."""

    def __init__(self, port: int = 0, tracks: int = 120, user: str = "demo", region: str = "us-east-1"):
        from moto.server import (
            ThreadedMotoServer,  # the local extra: imported only when asked for
        )

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.region = region
        self.user = user
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.spotify = FakeSpotify()
        self.tracks = tracks
        self.app = AppServer({}, region=region)  # its moto endpoint is known once moto has started

    @property
    def endpoint(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    def __enter__(self):
        self.moto.start()
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
