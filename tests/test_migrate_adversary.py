"""The adversary against table migrations (tests/adversary.py): the app writes throughout, as its
role, through its binding; at the end the table it is bound to must hold exactly the last
acknowledged state of every key. Online and offline, forward and rollback, `--no-switch` then the
switch, items near the 400 KB limit among the writes, and SIGKILL at every phase boundary and at
random moments, followed by a rerun of the same command.

More seeds: ADVERSARY_SEEDS=20 make test (the suite runs one of each; with 2 or more, also checker
60 ms away from its tables)."""
from __future__ import annotations

import os
import re
import time

import pytest

from .adversary import App, checker, checker_killed_at, oracle, scenario, start_server
from .latency_proxy import start_latency_proxy

pytestmark = pytest.mark.slow   # servers, subprocesses or other backends: `make test-fast` leaves it out

SEEDS = range(1, 1 + int(os.environ.get("ADVERSARY_SEEDS", "1")))
MIGRATE = ("migrate", "--yes", "--fence-quiet", "1", "--page-items", "40")
CLEAN = {"lost": [], "stale": [], "extra": []}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from start_server(tmp_path_factory.mktemp("adversary") / "moto.log")


def under_load(server, tmp_path, seed: int, online: bool = True, moving: bool = False, checker_url: str = "",
               pause: float = 0.01, keys: int = 120):
    name = f"{tmp_path.name[-10:].replace('_', '-')}"
    directory, suffix, function = scenario(server, tmp_path, name, online, moving, checker_url)
    app = App(server, function, "SONGS_TABLE", seed, pause=pause, keys=keys,
              moved_to=f"songs_v2-{name}" if moving else "")
    app.seed_items(f"songs{suffix}")
    app.start()
    time.sleep(0.3)
    return directory, suffix, app


def judge_paused(server, app, table: str) -> dict:
    """The oracle on the table the app is bound to, the app paused between invocations; it then
    writes on (a rollback follows while it does)."""
    time.sleep(0.5)                      # the app writes where it is bound now
    app.pause_writes()
    try:
        assert not app.errors, app.errors
        assert app.table() == table
        return oracle(server, table, app.model, moving=table == app.moved_to)
    finally:
        app.resume_writes()


ROLLBACK = ("migrate", "rollback", "table:songs_v2", "--yes", "--fence-quiet", "1")


def roll_back(server, directory, app, suffix: str, copied_here: bool = True, judge: bool = True) -> None:
    """`migrate rollback` while the app writes; the source it is bound to again is judged (the
    app stopped; `judge` False: paused, then it writes on).
    `copied_here`: this run copies back (not a rerun that finds the switch back made)."""
    back = checker(server, directory, *ROLLBACK)
    assert back.returncode == 0, back.stdout + back.stderr
    if copied_here:
        # online: the app wrote the new table while it was copied back, and those writes were replayed
        [replayed] = re.findall(r"rollback: caught up from the stream: (\d+) change", back.stderr)
        assert int(replayed) > 0 and "copied back while the app wrote" in back.stdout, back.stdout + back.stderr
    verdict = settle_and_judge(server, app, f"songs{suffix}") if judge else judge_paused(server, app, f"songs{suffix}")
    assert verdict == CLEAN, (verdict, back.stderr[-3000:])


def settle_and_judge(server, app, table: str) -> dict:
    time.sleep(0.5)                      # the app goes on writing where it is bound now
    app.stop()
    assert not app.errors, app.errors
    assert app.table() == table
    return oracle(server, table, app.model, moving=table == app.moved_to)


@pytest.mark.parametrize("seed", SEEDS)
def test_online_the_bound_table_holds_every_acknowledged_write_forward_and_back(server, tmp_path, seed):
    directory, suffix, app = under_load(server, tmp_path, seed)
    done = checker(server, directory, *MIGRATE)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = judge_paused(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, done.stderr[-3000:])
    assert app.tables_written.get(f"songs{suffix}", 0) > 50        # it wrote the source during the migration
    assert app.tables_written.get(f"songs_v2{suffix}", 0) > 5      # and the new table after the switch
    assert "writes were refused for" in done.stderr and "fenced" in done.stdout
    assert len(app.model.ambiguous) < 5 and app.big > 0                 # 390 KB items among the writes
    roll_back(server, directory, app, suffix, judge=False)      # and back, the app writing (deletes included)
    again = checker(server, directory, *MIGRATE)   # and forward again: copied afresh over what the first left
    assert again.returncode == 0 and "migrating again" in again.stderr, again.stdout + again.stderr
    verdict = settle_and_judge(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, again.stderr[-3000:])


@pytest.mark.parametrize("seed", SEEDS)
def test_online_with_a_transform_that_moves_every_changed_item_to_a_new_key(server, tmp_path, seed):
    """The target is keyed by a slot the transform makes of v, which nearly every write changes:
    each change must delete the item at its old slot and write it at the new one; then the
    rollback maps every write back through the checklist's reverse."""
    directory, suffix, app = under_load(server, tmp_path, 40 + seed, moving=True)
    done = checker(server, directory, *MIGRATE)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = judge_paused(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, done.stderr[-3000:])
    assert app.tables_written.get(f"songs{suffix}", 0) > 50
    assert app.tables_written.get(f"songs_v2{suffix}", 0) > 5
    assert len(app.model.ambiguous) < 5
    roll_back(server, directory, app, suffix)      # back through the checklist's reverse, the app writing


@pytest.mark.skipif(len(SEEDS) < 2, reason="~25 s of round trips: runs with ADVERSARY_SEEDS=2 or more (the suite's "
                                           "time budget)")
def test_online_with_60_ms_between_checker_and_dynamodb(server, tmp_path):
    """checker in a remote region (every call of its 60 ms later), the app beside its tables at its
    fastest (it never caught up when the replay cost two round trips a key)."""
    url, stop = start_latency_proxy(server.url, 0.06)
    try:
        directory, suffix, app = under_load(server, tmp_path, 60, checker_url=url)   # the fastest app
        done = checker(server, directory, "migrate", "--yes", "--fence-quiet", "1")
    finally:
        stop()
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = settle_and_judge(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, done.stderr[-3000:])
    assert app.tables_written.get(f"songs{suffix}", 0) > 50


def test_offline_the_apps_writes_are_refused_not_lost(server, tmp_path):
    directory, suffix, app = under_load(server, tmp_path, 7, online=False)
    done = checker(server, directory, *MIGRATE, "--offline")
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = settle_and_judge(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, done.stderr[-3000:])
    assert app.model.denied > 0          # the fence refused its writes for the whole copy: it saw errors


def test_no_switch_then_the_switch_later_loses_nothing_of_the_gap(server, tmp_path):
    directory, suffix, app = under_load(server, tmp_path, 5)
    verified = checker(server, directory, *MIGRATE, "--no-switch")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert app.table() == f"songs{suffix}"
    time.sleep(1.0)                      # the app goes on writing the source
    switched = checker(server, directory, *MIGRATE)
    assert switched.returncode == 0, switched.stdout + switched.stderr
    verdict = settle_and_judge(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, switched.stderr[-3000:])


PHASES = ["turning on", "caught up from the stream", "verifying every item", "fenced:", "stay quiet",
          "waiting for the update"]


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_every_phase_boundary_then_the_same_command_finishes(server, tmp_path, seed):
    """One migration killed again and again: at each phase boundary in turn (a run resumed by the
    last one's rerun), a random few milliseconds after the line that starts it; then the same
    command, run once more, finishes; the oracle finds nothing wrong."""
    import random
    chance = random.Random(seed)
    directory, suffix, app = under_load(server, tmp_path, 100 + seed)
    for line in PHASES:
        seen = checker_killed_at(server, directory, line, *MIGRATE, delay=chance.uniform(0, 0.05))
        assert line in seen, (line, seen[-2000:])
    rerun = checker(server, directory, *MIGRATE)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    verdict = settle_and_judge(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, rerun.stderr[-3000:])


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_moments_then_the_same_command_finishes(server, tmp_path, seed):
    """Killed at seeded random moments, wherever the run is then (inside a batch, between the fence
    and its check, mid-switch, mid-drain), each run resuming the one before; then the same command,
    run once more, finishes and the oracle finds nothing wrong."""
    import random
    chance = random.Random(1000 + seed)
    directory, suffix, app = under_load(server, tmp_path, 200 + seed)
    seen = [checker_killed_at(server, directory, None, *MIGRATE, delay=chance.uniform(0.5, 6.0)) for _ in range(4)]
    rerun = checker(server, directory, *MIGRATE)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    verdict = settle_and_judge(server, app, f"songs_v2{suffix}")
    assert verdict == CLEAN, (verdict, "".join(seen)[-3000:], rerun.stderr[-3000:])


@pytest.mark.parametrize("seed", SEEDS)
def test_a_rollback_killed_at_every_phase_boundary_then_rerun_loses_nothing(server, tmp_path, seed):
    """The online rollback is a migration of its own, from the new table back: killed at each of
    its phase boundaries in turn (each run resuming the one before), then run once more, it
    switches back and the old table holds every acknowledged write."""
    import random
    chance = random.Random(500 + seed)
    directory, suffix, app = under_load(server, tmp_path, 300 + seed)
    done = checker(server, directory, *MIGRATE)
    assert done.returncode == 0, done.stdout + done.stderr
    time.sleep(0.5)                      # the app writes the new table
    for line in PHASES:
        seen = checker_killed_at(server, directory, line, *ROLLBACK, delay=chance.uniform(0, 0.05))
        assert line in seen, (line, seen[-2000:])
    roll_back(server, directory, app, suffix, copied_here=False)
