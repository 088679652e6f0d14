"""Build boto3 clients from the common CLI options, with botocore's own retry modes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import boto3
import botocore.config
import botocore.exceptions

from .deadline import Deadline
from .errors import CheckerError, describe_aws_error


@dataclass(frozen=True)
class AwsOptions:
    """What every AWS command accepts. None means: let boto3 resolve it (env, profile, config).

    `endpoint_url` None keeps boto3's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB handling.
    """

    region: Optional[str] = None
    profile: Optional[str] = None
    endpoint_url: Optional[str] = None
    retry_mode: str = "standard"
    max_attempts: int = 5
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
                raise CheckerError(describe_aws_error(exc)) from exc
            if self.role_arn:
                session = self._assumed(session)
            self._holder["session"] = session
        return self._holder["session"]

    def _assumed(self, base):
        """A session with the credentials of `role_arn`, assumed with the base session's."""
        sts = base.client("sts", endpoint_url=self.endpoint_url)
        try:
            credentials = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="checker")["Credentials"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise CheckerError(f"cannot assume {self.role_arn}: {describe_aws_error(exc, 'AssumeRole', 'sts')}") from exc
        return boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                             aws_secret_access_key=credentials["SecretAccessKey"],
                             aws_session_token=credentials["SessionToken"],
                             region_name=self.region or base.region_name)

    def client(self, service: str):
        session = self.session()
        try:
            bound = self.deadline.bound if self.deadline else (lambda seconds: seconds)
            config = botocore.config.Config(
                retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
                connect_timeout=bound(self.connect_timeout),
                read_timeout=bound(self.read_timeout),
            )
            client = session.client(service, endpoint_url=self.endpoint_url, config=config)
            if self.deadline:
                self.deadline.guard(client)
            return client
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:
            raise CheckerError(describe_aws_error(exc)) from exc
