"""The pause the app sees at an online migration's cut-over, with the app writing, and at the
online rollback's (the same cut-over, from the new table back).

The adversary's app (tests/adversary.py: writers through the binding, as the function's role, on
moto with table-level IAM) writes at about 50 and about 200 writes/s while `checker migrate`
copies, catches up, fences and switches. The pause is what checker prints and records: from the
fence going up to the switch's end, the app's writes refused meanwhile. Its baseline is the
floor of the design: `--fence-quiet` (the stream must stay quiet that long, the evidence that
the fence holds) plus one UpdateFunctionConfiguration until Successful on the same server. The
oracle's verdict is checked too: a fast pause that lost a write is no figure. Prints figures and
records them in bench/results.json; asserts nothing.

Usage: .venv/bin/python bench/bench_cutover.py
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):   # moto's setup calls; never a real account
    os.environ.setdefault(variable, "bench")

from results import record  # noqa: E402

from tests.adversary import App, checker, oracle, scenario, start_server  # noqa: E402

FENCE_QUIET = 1.0
RATES = {"~50": (0.12, 3), "~200": (0.01, 10)}   # (pause between invocations, writer threads) for about that rate


def function_update_seconds(server, function: str) -> float:
    client = server.client("lambda")
    variables = client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    started_at = time.perf_counter()
    client.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    client.get_waiter("function_updated_v2").wait(FunctionName=function, WaiterConfig={"Delay": 0.1})
    return time.perf_counter() - started_at


def refused_for(done) -> float:
    found = re.search(r"writes were refused for ([0-9.]+) s", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"the migration failed: {done.stderr[-2000:]}")
    return float(found.group(1))


def one(server, directory: Path, name: str, pause: float, threads: int) -> tuple:
    """(pause seconds, the app's writes/s, baseline seconds, oracle verdict, rollback pause seconds,
    the rollback's oracle verdict) of one migration and its rollback."""
    directory, suffix, function = scenario(server, directory, name)
    baseline = FENCE_QUIET + function_update_seconds(server, function)
    app = App(server, function, "SONGS_TABLE", seed=len(name), pause=pause, threads=threads)
    app.seed_items(f"songs{suffix}")
    app.start()
    started_at = time.perf_counter()
    done = checker(server, directory, "migrate", "--yes", "--fence-quiet", str(FENCE_QUIET))
    elapsed = time.perf_counter() - started_at
    time.sleep(0.5)
    paused = refused_for(done)
    app.pause_writes()
    verdict = oracle(server, f"songs_v2{suffix}", app.model)
    app.resume_writes()
    back = checker(server, directory, "migrate", "rollback", "table:songs_v2", "--yes", "--fence-quiet", str(FENCE_QUIET))
    time.sleep(0.5)
    app.stop()
    back_paused = refused_for(back)
    return paused, app.model.acknowledged / elapsed, baseline, verdict, back_paused, oracle(server, f"songs{suffix}", app.model)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        servers = start_server(Path(scratch) / "moto.log")
        server = next(servers)
        try:
            for label, (pause, threads) in RATES.items():
                runs = [one(server, Path(scratch) / f"{label[1:]}-{n}", f"bench{label[1:]}-{n}", pause, threads)
                        for n in range(3)]
                pauses = [r[0] for r in runs]
                rates = [r[1] for r in runs]
                clean = all(not any(r[3].values()) for r in runs)
                print(f"cut-over pause, app asking {label} writes/s (reached {min(rates):.0f}-{max(rates):.0f}): "
                      f"{', '.join(f'{p:.1f}' for p in pauses)} s; floor {runs[0][2]:.1f} s; "
                      f"oracle {'clean' if clean else 'FOUND DAMAGE: ' + str([r[3] for r in runs])}")
                record(f"migrate cut-over pause, app asking {label} writes/s (moto)", pauses, [r[2] for r in runs],
                       "--fence-quiet + one function update", "a few seconds plus the function update")
                backs = [r[4] for r in runs]
                clean_back = all(not any(r[5].values()) for r in runs)
                print(f"rollback pause, app asking {label} writes/s: {', '.join(f'{p:.1f}' for p in backs)} s; "
                      f"oracle {'clean' if clean_back else 'FOUND DAMAGE: ' + str([r[5] for r in runs])}")
                record(f"migrate rollback pause, app asking {label} writes/s (moto)", backs, [r[2] for r in runs],
                       "--fence-quiet + one function update", "a few seconds plus the function update")
        finally:
            next(servers, None)


if __name__ == "__main__":
    main()
