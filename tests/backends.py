"""Four independent DynamoDB implementations as real servers on 127.0.0.1, one per test session:
moto (in this venv), dynalite (npm, under .backends/), ministack and roto-aws (PyPI, in a venv of
their own, .venv-backends, so this suite tests the botocore users get). `make test` installs them;
a backend that is not installed is skipped with a line saying why."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKEND_VENV = ROOT / ".venv-backends" / "bin"
DYNALITE = ROOT / ".backends" / "node_modules" / ".bin" / "dynalite"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def command_for(name: str, port: int) -> tuple:
    """(argv, extra environment, why it cannot run or None)."""
    if name == "dynalite":
        why = None if DYNALITE.exists() else "dynalite is not installed (npm missing?): `make test` installs it with npm"
        # short create/update times: a table is CREATING for 50 ms, as on AWS but faster
        return ([str(DYNALITE), "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "50",
                 "--updateTableMs", "50", "--deleteTableMs", "50"], {}, why)
    if name == "ministack":
        binary = BACKEND_VENV / "ministack"
        services = "dynamodb,dynamodbstreams,sts,lambda,iam"   # the migrations' switch and catch-up too
        return ([str(binary)], {"BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "SERVICES": services},
                None if binary.exists() else "ministack is not installed: `make test` installs it in .venv-backends")
    if name == "roto":
        binary = BACKEND_VENV / "roto-server"
        return ([str(binary), "--host", "127.0.0.1", "--port", str(port), "--ephemeral"], {},
                None if binary.exists() else "roto-aws is not installed: `make test` installs it in .venv-backends")
    raise ValueError(name)


def wait_until_answering(url: str, process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={
        "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the backend exited with {process.returncode}")
        try:
            urllib.request.urlopen(request, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers: an AWS error is an answer
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


class Backend:
    def __init__(self, name: str, url: str, process=None):
        self.name, self.url, self.process = name, url, process


def start_backend(name: str, log_dir: Path):
    """A generator for a session fixture: the Backend, stopped afterwards."""
    if name == "moto":
        from moto.server import ThreadedMotoServer
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield Backend(name, f"http://{host}:{port}")
        server.stop()
        return
    port = free_port()
    argv, extra, why = command_for(name, port)
    if why:
        pytest.skip(why)
    log = open(log_dir / f"{name}.log", "wb")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(argv, env={**environ, **extra}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(url, process)
        yield Backend(name, url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def songs_function(url: str, suffix: str, function: str, variables: dict, timeout: int = 3):
    """A function whose role may use songs{suffix} and songs_v2{suffix} (and their indexes), with
    a stub handler: what a table migration's switch works on. Returns the Lambda client."""
    import io
    import json
    import zipfile

    import boto3
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1")
    role = iam.create_role(RoleName=f"role{suffix}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    tables = [f"arn:aws:dynamodb:*:*:table/{name}{suffix}{index}" for name in ("songs", "songs_v2") for index in ("", "/index/*")]
    iam.put_role_policy(RoleName=f"role{suffix}", PolicyName="tables", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": tables}]}))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    lam = boto3.client("lambda", endpoint_url=url, region_name="us-east-1")
    lam.create_function(FunctionName=function, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": code.getvalue()}, Timeout=timeout, Environment={"Variables": variables})
    return lam


def songs_spec(name: str, lsi: bool = False) -> dict:
    """A songs table (userId, trackId), on demand; with `lsi`, an LSI on addedAt: a new table."""
    document = {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "userId", "AttributeType": "S"},
                                         {"AttributeName": "trackId", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "trackId", "KeyType": "RANGE"}]}
    if lsi:
        document["AttributeDefinitions"].append({"AttributeName": "addedAt", "AttributeType": "N"})
        document["LocalSecondaryIndexes"] = [{"IndexName": "by-added", "Projection": {"ProjectionType": "ALL"},
                                              "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"},
                                                            {"AttributeName": "addedAt", "KeyType": "RANGE"}]}]
    return document
