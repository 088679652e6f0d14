"""checker at the speed of DynamoDB: apply, check, export, plan and start-up, each beside its
baseline measured in the same run, in turns, medians of several runs. Prints figures and records
them in bench/results.json; asserts nothing (speed is not a test).

- apply, 5/50/200/1000 new tables, each CREATING for HOLD s (the DynamoDB proxy of checker.local
  in front of a moto server), at 0 and 20 ms a call: `Project.apply()` vs the physical limit (a
  tight 16-thread boto3 loop: all CreateTables, then DescribeTable until all ACTIVE).
- check (tables) of 200 and 1000 tables at 20 ms a call vs `Project.plan()`, which reads the same;
  export of 200 tables vs a 16-thread loop reading what export reads.
- plan of 5/50/200 tables at 0 and 20 ms per call (the proxy's latency standing for a region's
  round trip): `Project.plan()` vs a 16-thread boto3 DescribeTable loop.
- `checker --help` vs `python -c pass`.
- on dynalite (an independent DynamoDB, installed from the npm registry into bench/.cache; skipped
  with a message when npm is missing), tables CREATING for 3 s: `checker apply` of 5 tables vs the
  physical limit, and `checker wait` for one table vs the AWS CLI runbook `aws dynamodb wait
  table-exists` (awscli installed into bench/.cache/venv).

Usage: .venv/bin/python bench/bench_deploy.py [runs]
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore.config
from moto.server import ThreadedMotoServer

from checker.api import Project, Target
from checker.local.dynamo_proxy import DynamoProxy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record  # noqa: E402 - bench/results.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
HOLD = 3.0


def runs_of(runs: int, measure) -> list:
    return [measure() for _ in range(runs)]


def interleaved(runs: int, ours, theirs) -> tuple:
    """(our runs, their runs), taken in turns: a machine that slows down for a while slows both."""
    pairs = [(ours(), theirs()) for _ in range(runs)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def reset(moto_url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST", data=b"")).read()


def specs_dir(count: int) -> Path:
    """`count` table specs (copies of the shipped ones under other names)."""
    folder = Path(tempfile.mkdtemp(prefix=f"specs{count}-"))
    shipped = [json.loads(p.read_text()) for p in sorted((ROOT / "table_specs").glob("*.json"))]
    for i in range(count):
        spec = dict(shipped[i % len(shipped)], TableName=f"t{i:03d}-{shipped[i % len(shipped)]['TableName']}")
        (folder / f"{spec['TableName']}.json").write_text(json.dumps(spec))
    return folder


def apply_with_checker(moto_url: str, proxy: DynamoProxy, specs: Path) -> float:
    reset(moto_url)
    started = time.perf_counter()
    Project.load(Target(specs_dir=specs, endpoint_url=proxy.url), use_checklist=False).apply(timeout=120)
    return time.perf_counter() - started


def apply_physical_limit(moto_url: str, proxy: DynamoProxy, specs: Path) -> float:
    reset(moto_url)
    return physical_limit(proxy.url, specs)


def physical_limit(url: str, specs: Path, threads: int = 16) -> float:
    """A tight boto3 loop doing only the necessary calls: every CreateTable (16 at a time), then
    DescribeTable of what is pending (16 at a time) every 50 ms until all is ACTIVE."""
    client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                          config=botocore.config.Config(max_pool_connections=threads))
    requests = [json.loads(p.read_text()) for p in sorted(specs.glob("*.json"))]

    def active(name: str) -> bool:
        table = client.describe_table(TableName=name)["Table"]
        return table["TableStatus"] == "ACTIVE" and all(i["IndexStatus"] == "ACTIVE"
                                                        for i in table.get("GlobalSecondaryIndexes", []))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda request: client.create_table(**request), requests))
        pending = [r["TableName"] for r in requests]
        while pending:
            pending = [name for name, done in zip(pending, pool.map(active, pending), strict=True) if not done]
            if pending:
                time.sleep(0.05)
    return time.perf_counter() - started


def check_with_checker(proxy: DynamoProxy, specs: Path) -> float:
    project = Project.load(Target(specs_dir=specs, endpoint_url=proxy.url), use_checklist=False)
    started = time.perf_counter()
    project.check(kinds=("tables",))
    return time.perf_counter() - started


def export_with_checker(proxy: DynamoProxy, names: list) -> float:
    from checker.api import export
    out = Path(tempfile.mkdtemp(prefix="export-"))
    started = time.perf_counter()
    export(out, names, force=True, endpoint_url=proxy.url, region="us-east-1")
    return time.perf_counter() - started


def export_limit(proxy: DynamoProxy, names: list, threads: int = 16) -> float:
    """The reads an export needs, 16 tables at a time: DescribeTable, tags, TTL, PITR."""
    client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1",
                          config=botocore.config.Config(max_pool_connections=threads))

    def read(name: str) -> None:
        arn = client.describe_table(TableName=name)["Table"]["TableArn"]
        client.list_tags_of_resource(ResourceArn=arn)
        client.describe_time_to_live(TableName=name)
        client.describe_continuous_backups(TableName=name)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(read, names))
    return time.perf_counter() - started


def plan_with_checker(proxy: DynamoProxy, specs: Path) -> float:
    project = Project.load(Target(specs_dir=specs, endpoint_url=proxy.url), use_checklist=False)
    started = time.perf_counter()
    project.plan()
    return time.perf_counter() - started


def describe_loop(proxy: DynamoProxy, specs: Path, threads: int) -> float:
    client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1")
    names = [json.loads(p.read_text())["TableName"] for p in sorted(specs.glob("*.json"))]

    def describe(name):
        try:
            client.describe_table(TableName=name)
        except client.exceptions.ResourceNotFoundException:
            pass
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(describe, names))
    return time.perf_counter() - started


def show(case: str, ours: list, baseline: list, baseline_name: str) -> None:
    mine, theirs = statistics.median(ours), statistics.median(baseline)
    print(f"{case:<55} checker {mine:6.2f}s   {baseline_name} {theirs:6.2f}s   ratio {mine / theirs:4.2f}", flush=True)


def command_time(args: list) -> float:
    started = time.perf_counter()
    subprocess.run(args, capture_output=True, check=False)
    return time.perf_counter() - started


CACHE = ROOT / "bench" / ".cache"


def dynalite_command() -> list:
    """The dynalite server from the npm registry, installed once into bench/.cache; [] without npm."""
    binary = CACHE / "dynalite" / "node_modules" / ".bin" / "dynalite"
    if not binary.exists():
        if not shutil.which("npm"):
            return []
        (CACHE / "dynalite").mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "dynalite@4"], cwd=CACHE / "dynalite",
                       capture_output=True, check=False)
    return [str(binary)] if binary.exists() else []


def aws_cli() -> list:
    """The AWS CLI in a venv of its own under bench/.cache; [] when it cannot be installed."""
    venv = CACHE / "venv"
    aws = venv / "bin" / "aws"
    if not aws.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, check=False)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "awscli"], capture_output=True, check=False)
    return [str(aws)] if aws.exists() else []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def on_dynalite(runs: int) -> None:
    command = dynalite_command()
    if not command:
        print("dynalite: skipped (npm is not installed)")
        return
    five = specs_dir(5)
    checker = os.path.join(os.path.dirname(sys.executable), "checker")
    aws = aws_cli()

    def fresh():
        port = free_port()
        process = subprocess.Popen([*command, "--port", str(port), "--createTableMs", str(int(HOLD * 1000))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return process, url

    def timed_apply(limit: bool) -> float:
        process, url = fresh()
        try:
            if limit:
                return physical_limit(url, five)
            started = time.perf_counter()
            done = subprocess.run([checker, "apply", "--yes", "--specs", str(five), "--endpoint-url", url],
                                  capture_output=True, check=False, cwd=tempfile.mkdtemp())  # no checklist here
            assert done.returncode == 0, done.stderr
            return time.perf_counter() - started
        finally:
            process.kill()

    def timed_wait(with_aws: bool) -> float:
        process, url = fresh()
        try:
            client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
            spec = json.loads(next(five.glob("*user*.json")).read_text())
            client.create_table(**spec)
            created = time.perf_counter()
            if with_aws:
                subprocess.run([*aws, "dynamodb", "wait", "table-exists", "--table-name", spec["TableName"],
                                "--endpoint-url", url], capture_output=True, check=False)
            else:
                only = Path(tempfile.mkdtemp()) / "specs"
                only.mkdir()
                (only / "t.json").write_text(json.dumps(spec))
                done = subprocess.run([checker, "wait", "--specs", str(only), "--endpoint-url", url],
                                      capture_output=True, check=False, cwd=only.parent)
                assert done.returncode == 0, done.stderr
            return time.perf_counter() - created - HOLD
        finally:
            process.kill()

    ours, limit = interleaved(runs, lambda: timed_apply(False), lambda: timed_apply(True))
    case = f"dynalite (`--createTableMs {int(HOLD * 1000)}`): `checker apply` of 5 tables, whole process"
    show(case, ours, limit, "physical limit")
    record(case, ours, limit, "physical limit (in-process boto3 loop)")
    ours = runs_of(runs, lambda: timed_wait(False))
    if aws:
        theirs = runs_of(1, lambda: timed_wait(True))
        case = "dynalite: `checker wait` of 1 table, seen after it is ACTIVE (whole process)"
        show(case, ours, theirs, "aws dynamodb wait table-exists")
        record(case, ours, theirs, "`aws dynamodb wait table-exists`")
    else:
        print(f"dynalite: wait, 1 table, seen after ACTIVE   checker +{statistics.median(ours):5.2f}s   "
              "(awscli could not be installed: not recorded)")


def main(runs: int) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    print(f"medians of {runs} runs; ratio = checker / baseline")
    try:
        for latency, count in ((0.0, 5), (0.0, 50), (0.0, 200), (0.020, 200), (0.020, 1000)):
            with DynamoProxy(moto_url, table_seconds=HOLD) as proxy:
                proxy.latency = latency
                specs = specs_dir(count)
                ours, limit = interleaved(runs, lambda specs=specs, proxy=proxy: apply_with_checker(moto_url, proxy, specs),
                                          lambda specs=specs, proxy=proxy: apply_physical_limit(moto_url, proxy, specs))
                case = f"apply, {count} new tables CREATING {HOLD:g} s, +{latency * 1000:.0f} ms a call"
                show(case, ours, limit, "physical limit")
                record(case, ours, limit, "physical limit", "1.3x at 200 tables" if count == 200 else "")
        for count in (200, 1000):
            with DynamoProxy(moto_url) as proxy:
                specs = specs_dir(count)
                reset(moto_url)
                Project.load(Target(specs_dir=specs, endpoint_url=proxy.url), use_checklist=False).apply(timeout=600)
                proxy.latency = 0.020
                ours, plan = interleaved(runs, lambda specs=specs: check_with_checker(proxy, specs),
                                         lambda specs=specs: plan_with_checker(proxy, specs))
                case = f"check (tables), {count} tables, +20 ms a call"
                show(case, ours, plan, "plan")
                record(case, ours, plan, "checker plan", "1.3x of plan at 1000" if count == 1000 else "")
                if count == 200:
                    names = [json.loads(p.read_text())["TableName"] for p in sorted(specs.glob("*.json"))]
                    ours, limit = interleaved(runs, lambda names=names, proxy=proxy: export_with_checker(proxy, names),
                                              lambda names=names, proxy=proxy: export_limit(proxy, names))
                    case = "export, 200 tables, +20 ms a call"
                    show(case, ours, limit, "physical limit")
                    record(case, ours, limit, "physical limit", "1.5x")
        for latency in (0.0, 0.020):
            with DynamoProxy(moto_url) as proxy:
                proxy.latency = latency
                for count in (5, 50, 200):
                    specs = specs_dir(count)
                    reset(moto_url)
                    ours, threaded = interleaved(runs, lambda specs=specs: plan_with_checker(proxy, specs),
                                                 lambda specs=specs: describe_loop(proxy, specs, 16))
                    case = f"plan, {count} tables, +{latency * 1000:.0f} ms a call"
                    show(case, ours, threaded, "16-thread DescribeTable loop")
                    record(case, ours, threaded, "16-thread DescribeTable loop")
    finally:
        moto.stop()
    checker = [os.path.join(os.path.dirname(sys.executable), "checker"), "--help"]
    ours, bare = interleaved(max(runs, 5), lambda: command_time(checker),
                             lambda: command_time([sys.executable, "-c", "pass"]))
    show("`checker --help`", ours, bare, "python -c pass")
    record("`checker --help`", ours, bare, "`python -c pass`")
    on_dynalite(runs)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
