"""Build boto3 clients from the common CLI options, with botocore's own retry modes."""
from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass, field
from typing import Optional

import boto3
import botocore.config
import botocore.exceptions

from .errors import CheckerError, describe_aws_error
from .poll import Deadline
from .text import clip

POOL_CONNECTIONS = 50


@dataclass(frozen=True)
class AwsOptions:
    """What every AWS command accepts. None means: let boto3 resolve it (env, profile, config).

    `endpoint_url` None keeps boto3's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB handling.
    """

    region: Optional[str] = None
    profile: Optional[str] = None
    endpoint_url: Optional[str] = None
    retry_mode: Optional[str] = None     # None: AWS_RETRY_MODE, else the profile's retry_mode, else standard
    max_attempts: Optional[int] = None   # None: AWS_MAX_ATTEMPTS, else the profile's max_attempts, else 5
    role_arn: Optional[str] = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: Optional[Deadline] = field(default=None, compare=False)   # the command's --timeout
    # One boto3 Session for every client made from these options (and from copies of them, which
    # share this holder): credentials are resolved once and clients come from one loader cache.
    _holder: dict = field(default_factory=dict, compare=False, repr=False)

    def session(self):
        if "session" not in self._holder:
            try:
                session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except botocore.exceptions.BotoCoreError as exc:
                raise CheckerError(config_error(exc, self.profile)) from exc
            try:
                scoped = session._session.get_scoped_config()   # a missing profile, a malformed file: now
            except botocore.exceptions.BotoCoreError as exc:
                raise CheckerError(config_error(exc, self.profile)) from exc
            self._holder["retries"] = retry_settings(self.retry_mode, self.max_attempts, scoped)
            if self.deadline:
                bound_credential_process(session, self.deadline)
            if self.role_arn:
                session = self._assumed(session)
            self._holder["session"] = session
        return self._holder["session"]

    def _assumed(self, base):
        """A session with the credentials of `role_arn`, assumed with the base session's and
        refreshed by botocore before they expire (a migration may outlive one hour's credentials)."""
        import functools

        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
        from botocore.session import Session
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=functools.partial(base._session.create_client, endpoint_url=self.endpoint_url),
            source_credentials=base.get_credentials(), role_arn=self.role_arn,
            extra_args={"RoleSessionName": "checker"})
        credentials = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
        try:
            credentials.get_frozen_credentials()   # a role that cannot be assumed is said now, once
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise CheckerError(f"cannot assume {self.role_arn}: {describe_aws_error(exc, 'AssumeRole', 'sts')}") from exc
        core = Session()
        core._credentials = credentials
        core.set_config_variable("region", self.region or base.region_name)
        return boto3.Session(botocore_session=core)

    def client(self, service: str):
        session = self.session()
        try:
            bound = self.deadline.bound if self.deadline else (lambda seconds: seconds)
            config = botocore.config.Config(
                retries=self._holder["retries"],
                connect_timeout=bound(self.connect_timeout),
                read_timeout=bound(self.read_timeout),
                # as many connections as threads share the client (live.MAX_PARALLEL reads at once):
                # botocore's 10 would make the others open and drop connections (TLS handshakes)
                max_pool_connections=POOL_CONNECTIONS,
            )
            client = session.client(service, endpoint_url=self.endpoint_url, config=config)
            if self.deadline:
                self.deadline.guard(client)
            return client
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:
            raise CheckerError(describe_aws_error(exc)) from exc


RETRY_MODES = ("standard", "adaptive", "legacy")
MAX_ATTEMPTS = 20


def retry_settings(retry_mode: Optional[str], max_attempts: Optional[int], scoped: dict) -> dict:
    """botocore's retries from the options, else AWS_RETRY_MODE / AWS_MAX_ATTEMPTS, else the
    profile's retry_mode / max_attempts, else standard and 5; each validated wherever it came
    from (botocore ignores AWS_MAX_ATTEMPTS=abc silently)."""
    def chosen(option, variable: str, key: str, default):
        if option is not None:
            return option, f"--{key.replace('_', '-')}"
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip(), variable
        if str(scoped.get(key, "")).strip():
            return str(scoped[key]).strip(), f"the profile's {key}"
        return default, ""
    mode, mode_from = chosen(retry_mode, "AWS_RETRY_MODE", "retry_mode", "standard")
    if mode not in RETRY_MODES:
        raise CheckerError(f"{mode_from} {clip(str(mode), 40)!r}: expected one of {', '.join(RETRY_MODES)}")
    attempts, attempts_from = chosen(max_attempts, "AWS_MAX_ATTEMPTS", "max_attempts", 5)
    try:
        count = int(attempts)
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= MAX_ATTEMPTS or str(attempts).strip() != str(count):
        raise CheckerError(f"{attempts_from} {clip(str(attempts), 40)!r}: expected a whole number of attempts "
                           f"from 1 to {MAX_ATTEMPTS}")
    return {"mode": mode, "total_max_attempts": count}


def config_error(exc: Exception, profile: Optional[str]) -> str:
    """A missing profile or a config file that cannot be read, saying where the name came from."""
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        source = "--profile" if profile else ("AWS_PROFILE" if os.environ.get("AWS_PROFILE") else "AWS_DEFAULT_PROFILE")
        name = clip(str(exc.kwargs.get("profile")), 80)
        return f"AWS profile {name!r} (from {source}) is not in the AWS config files (see ~/.aws/config)"
    if isinstance(exc, botocore.exceptions.ConfigParseError):
        return (f"the AWS config file {clip(str(exc.kwargs.get('path')), 200)} cannot be parsed: fix it, or point "
                "AWS_CONFIG_FILE at another")
    return describe_aws_error(exc)


def bound_credential_process(session, deadline: Deadline) -> None:
    """A profile's `credential_process` runs within the command's deadline: botocore waits for the
    child without a timeout (`credential_process = sleep 600` would hold the command ten minutes),
    so its provider is given a Popen whose wait is bounded, and a child still running at the
    deadline is killed. SSO and assume-role fetch over HTTP, which the deadline's watchdog bounds."""
    try:
        provider = session._session.get_component("credential_provider").get_provider("custom-process")
    except (AttributeError, KeyError, botocore.exceptions.UnknownCredentialError):
        return  # a botocore without this seam: the watchdog still bounds every network call
    if hasattr(provider, "_popen"):
        provider._popen = functools.partial(BoundedProcess, deadline)


class BoundedProcess:
    """subprocess.Popen as botocore's ProcessProvider uses it, with `communicate` bounded by the
    deadline; the child is killed when it passes."""

    def __init__(self, deadline: Deadline, args, **kwargs):
        self.deadline = deadline
        self.command = args[0] if args else "credential_process"
        self.process = subprocess.Popen(args, **kwargs)

    @property
    def returncode(self):
        return self.process.returncode

    def communicate(self, input=None):
        try:
            return self.process.communicate(input, timeout=max(0.05, self.deadline.remaining()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise CheckerError(f"the profile's credential_process ({clip(str(self.command), 80)}) did not answer "
                               f"within the --timeout of {self.deadline.seconds:g}s; it was stopped") from None
