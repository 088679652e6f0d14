"""`checker local`: moto's server and an app on 127.0.0.1, deployed as an environment of the
checklist, to try every checker command without an AWS account.

The app is the bundled spotify-playlist runtime (with a fake Spotify), a user's own Lambda handler,
or none (just the AWS side). In front of moto sits `AwsFront`, which answers the entry-point
lookups with the app's local address, so `check` and `smoke` find the app as they would on AWS.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Optional

import boto3

from ..checklist import Checklist
from ..errors import CheckerError
from ..target import Target
from .app_server import AppServer
from .apps import load_app
from .deploy import binding_variables, create_entry_point, deploy_function, role_policy
from .events import ENTRY_POINTS, REST_STAGE
from .front import AwsFront

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


class LocalStack:
    """moto's server behind `AwsFront`, the app (and for spotify the fake Spotify), all on
    127.0.0.1. `deploy()` creates the Lambda function (its code is a stub: the app itself is
    served by AppServer), its role and its entry point."""

    def __init__(self, port: int = 0, tracks: int = 120, user: str = "demo", region: str = "us-east-1",
                 app: str = "spotify", app_dir: Optional[Path] = None, entry_point: str = "function_url"):
        """The AWS endpoint on `port`, the fake Spotify on `port + 1`, the app on `port + 2` (0: any
        free ports); moto itself behind them on a free port. moto's own logging (tracebacks of the
        calls it does not implement included) goes to a file in a temporary folder that is
        removed on exit, never to the terminal."""
        from moto.server import ThreadedMotoServer  # the local extra: imported only when asked for

        if entry_point not in ENTRY_POINTS:
            raise CheckerError(f"--entry-point {entry_point[:60]}: expected one of {', '.join(ENTRY_POINTS)}")
        ports = [port, port + 1, port + 2] if port else [0, 0, 0]
        busy = [p for p in ports if p and not port_is_free(p)]
        if busy:
            raise CheckerError(f"port {busy[0]} is in use on 127.0.0.1: pass another --port (it uses three: "
                               f"{port}, {port + 1}, {port + 2}) or --port 0 for any free ones")
        self.folder = tempfile.mkdtemp(prefix="checker-local-")
        self.log_file = os.path.join(self.folder, "moto.log")
        self.log_handler = send_logging_to(self.log_file)
        self.region = region
        self.user = user
        self.tracks = tracks
        self.app_name = app
        self.app_dir = app_dir
        self.entry_point = entry_point
        self.app_port = ports[2]
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.front = AwsFront("http://127.0.0.1:0", port=ports[0])  # its upstream is known once moto runs
        self.spotify = None
        if app == "spotify":
            from .fake_spotify import FakeSpotify
            self.spotify = FakeSpotify(port=ports[1])
        self.app: Optional[AppServer] = None
        self.app_base: Optional[str] = None   # where checks reach the app, as its entry point is called
        self.function_name: Optional[str] = None
        self.role_credentials: dict = {}    # the deployed function's role, assumed: what its handler signs with

    @property
    def endpoint(self) -> str:
        return self.front.url

    def __enter__(self):
        try:
            self.moto.start()
            host, port = self.moto.get_host_and_port()
            wait_for_port(host, port)
            self.front.upstream = f"http://{host}:{port}"
            self.front.start()
            os.environ.update({"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.region,
                               "AWS_DEFAULT_REGION": self.region})
            for name, value in FAKE_CREDENTIALS.items():
                os.environ.setdefault(name, value)
            if self.spotify is not None:
                self.spotify.start()
                self.spotify.add_user(self.user, self.tracks)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for stop in (self.app.__exit__ if self.app else None, self.spotify.stop if self.spotify else None,
                     self.front.stop, self.moto.stop):
            if stop is None:
                continue
            try:
                stop(*exc) if stop.__name__ == "__exit__" else stop()
            except Exception:
                pass  # stopping one server must not keep the others (and the temp folder) alive
        logging.getLogger().removeHandler(self.log_handler)
        self.log_handler.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def app_settings(self) -> dict:
        """Every setting the spotify app's health asks for, pointing at the fake Spotify (fake values)."""
        if self.spotify is None:
            return {}
        return {"DEFAULT_USER_ID": self.user, "SPOTIFY_API_BASE_URL": self.spotify.api_base,
                "SPOTIFY_ACCOUNTS_BASE_URL": self.spotify.url, "SPOTIFY_REFRESH_TOKEN": f"refresh-{self.user}",
                "SPOTIFY_CLIENT_ID": "local-client-id", "SPOTIFY_CLIENT_SECRET": "local-client-secret"}

    def default_function_name(self) -> Optional[str]:
        return "spotify-playlist-local" if self.app_name == "spotify" else None

    def deploy(self, environment) -> None:
        """The environment's function (when the checklist names one), configured as the app is served:
        the checklist's required variables (placeholder values), the app's settings and each bound
        table's name in this environment, its handler and runtime, its role granting the
        checklist's permissions, and its entry point allowed to invoke it."""
        checklist = environment.checklist or Checklist("(none)")
        self.function_name = environment.function_name or self.default_function_name()
        variables = {name: f"local-{name.lower()}" for name in checklist.required_env}
        variables.update(self.app_settings())
        variables.update(binding_variables(checklist.bindings, environment.tables))
        if self.function_name is None:
            self.serve(variables)
            return
        policy = role_policy(environment.tables, list(checklist.permissions), self.region)
        handler = checklist.handler or (self.app_name.replace(":", ".") if self.app_name not in ("spotify", "none")
                                        else "stub.handler")
        role = deploy_function(self.endpoint, self.region, self.function_name, policy, variables,
                               function_url=self.entry_point == "function_url", handler=handler,
                               runtime=checklist.runtime or "python3.12")
        self.role_credentials = self.assume(role)
        api_id = None
        if self.entry_point != "function_url":
            api_id = create_entry_point(self.endpoint, self.region, self.function_name, self.entry_point)
        self.serve(variables, api_id)

    def assume(self, role: dict) -> dict:
        """Credentials of the function's role, from STS as Lambda gets them: the handler's calls
        are signed with them, and the front decides each DynamoDB call by the role's policies."""
        sts = boto3.client("sts", endpoint_url=self.front.upstream, region_name=self.region)
        session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=self.function_name or "local")
        credentials = session["Credentials"]
        self.front.region = self.region
        self.front.roles[credentials["AccessKeyId"]] = (role["RoleName"], session["AssumedRoleUser"]["Arn"])
        return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"]}

    def serve(self, variables: dict, api_id: Optional[str] = None) -> None:
        """Start the app (its INIT now, with the function's variables, as at a cold start)."""
        app = load_app(self.app_name, self.app_dir, variables, self.function_name or "local")
        if app is None:
            return
        self.app = AppServer(variables, dynamodb_endpoint=self.endpoint, region=self.region, port=self.app_port,
                             app=app, entry_point=self.entry_point, function_name=self.function_name or "local")
        self.app.api_id = api_id
        self.app.credentials = self.role_credentials
        self.app.guarded = bool(self.function_name)   # deployed with its entry point: AWS's refusal applies
        if self.function_name:
            self.app.ship_logs_to(f"/aws/lambda/{self.function_name}")
            self.app.follow(self.function_name)
        self.app.__enter__()
        self.front.app_url = self.app.url
        self.app_base = self.app.url
        if api_id and self.entry_point == "rest_api":
            self.app_base = f"{self.endpoint}/restapis/{api_id}/{REST_STAGE}/_user_request_/"
        elif api_id:
            self.front.http_api_ids.add(api_id)

    def summary(self, target: Target, deployed: bool) -> str:
        """What runs where, and the commands to point checker at it (no --base-url: check finds the
        app through the entry point, as on AWS, when a function was deployed)."""
        lines = [f"AWS (moto):   {self.endpoint}"]
        if self.spotify is not None:
            lines.append(f"fake Spotify: {self.spotify.url}")
        if self.app_base:
            lines.append(f"app:          {self.app_base}  ({self.app_name}, {self.entry_point.replace('_', ' ')} events)")
        options = target.to_cli() + ("" if deployed or not self.app_base else f" --base-url {self.app_base}")
        lines += ["", "In another shell:",
                  f"  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={self.region}",
                  f"  checker check {options}".rstrip()]
        if self.app_base and self.app_name == "spotify":
            lines.append(f"  curl '{self.app_base}?action=health'")
        lines += ["", "Ctrl-C to stop."]
        return "\n".join(lines)


def port_is_free(port: int) -> bool:
    """Whether the stack's servers can listen on `port`: probed as they bind (SO_REUSEADDR), so a
    port whose last connections linger in TIME_WAIT after a stop is free, as it is for them."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


def send_logging_to(path: str) -> logging.Handler:
    """Every log record of this process (moto's, werkzeug's, Flask's) to `path`; with a handler on
    the root logger, Flask adds no terminal handler of its own."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    return handler


def local_settings(target: Target, app_name, app_dir, entry_point) -> dict:
    """--app, --app-dir and --entry-point, else the checklist's local: section, else the defaults."""
    from ..target import checklist_header
    checklist = target.checklist_file()
    header = checklist_header(checklist) if checklist is not None else {}
    wished = header.get("local") or {}
    folder = app_dir
    if folder is None and wished.get("app_dir") and checklist is not None:
        folder = checklist.parent / wished["app_dir"]
    if entry_point is None:
        entry_point = wished.get("entry_point") or {"rest_api": "rest_api", "http_api": "http_api",
                                                      "api_gateway": "rest_api"}.get(header.get("require") or "",
                                                                                     "function_url")
    return {"app": app_name or wished.get("app") or "none", "app_dir": folder, "entry_point": entry_point}
