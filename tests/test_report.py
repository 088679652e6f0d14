"""The formatters, on results built by hand: what each format says, and that junit stays XML."""
from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from checker.model import CAPACITY_GATE, NOT_COMPARED, Change
from checker.report import FORMATTERS, formats_for, formatter
from checker.results import ApplyResult, ChangeOutcome, CheckResult, Outcome, Status, summarize

RESULTS = [
    CheckResult("table:user", "tables", Status.PASS, "table user is ACTIVE"),
    CheckResult("iam:user", "iam", Status.WARN, "conditional", found="conditional allow"),
    CheckResult("endpoint:health", "endpoints", Status.FAIL, "GET /: HTTP 503", expected="HTTP 200",
                found="HTTP 503", remediation="curl -i", details=("line one",)),
    CheckResult("logs:ERROR", "logs", Status.ERROR, "not checked"),
    CheckResult("bindings", "bindings", Status.SKIP, "no bindings"),
]


def test_summary_counts_every_status_and_only_fail_and_error_fail_the_run():
    assert summarize(RESULTS) == {"total": 5, "pass": 1, "warn": 1, "fail": 1, "error": 1, "skip": 1, "ok": False}
    assert summarize(RESULTS[:2] + RESULTS[4:])["ok"] is True


def test_text_shows_details_only_for_what_did_not_pass():
    text = formatter("text").checks(RESULTS)
    lines = text.splitlines()
    assert lines[0] == "PASS  table:user: table user is ACTIVE"
    assert "      fix:      curl -i" in lines and "      | line one" in lines
    assert lines[-1] == "5 checks: 1 passed, 1 warnings, 1 failed, 1 errors, 1 skipped"


def test_json_statuses_are_the_words():
    document = json.loads(formatter("json").checks(RESULTS))
    assert [r["status"] for r in document["results"]] == ["pass", "warn", "fail", "error", "skip"]


def test_junit_maps_statuses_and_survives_control_characters():
    nasty = CheckResult("endpoint:x", "endpoints", Status.FAIL, "body \x00\x1b[31m\x07 end", found="\x0c")
    root = ElementTree.fromstring(formatter("junit").checks(RESULTS + [nasty]))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("6", "2", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["logs:ERROR"].find("error") is not None and cases["bindings"].find("skipped") is not None
    assert cases["endpoint:x"].find("failure").get("message") == "body \\x00\\x1b[31m\\x07 end"


def test_plan_text_marks_gated_manual_and_not_compared_changes():
    changes = [Change("user", "create-table", "create it", True),
               Change("track", "update-billing", "switch", True, gate=CAPACITY_GATE),
               Change("track", "replace-index", "by hand", False),
               Change("user", NOT_COMPARED, "WarmThroughput is stated", False, target="WarmThroughput")]
    text = formatter("text").plan(changes, 2)
    assert "  + user   create-table" in text
    assert text.splitlines()[2].endswith("[needs --allow-capacity-changes]")
    assert text.splitlines()[3].endswith("[manual step]")
    assert "1 automatic (run `checker apply`), 1 unlocked by `checker apply --allow-capacity-changes`, " \
           "1 need a manual step." in text
    assert text.splitlines()[-1].endswith("[not compared]")
    document = json.loads(formatter("json").plan(changes, 2))
    assert len(document["changes"]) == 3 and document["not_compared"][0]["action"] == NOT_COMPARED


def test_apply_text_counts_outcomes():
    change = Change("user", "create-table", "create it", True)
    result = ApplyResult([ChangeOutcome(change, Outcome.APPLIED),
                          ChangeOutcome(change, Outcome.HELD, "needs the flag"),
                          ChangeOutcome(change, Outcome.NOT_IN_EFFECT, "not there")])
    text = formatter("text").apply(result, None)
    assert text.splitlines()[-1] == "1 applied, 1 failed, not run or not in effect, 1 held back, 0 need a manual step."
    assert not result.ok


@pytest.mark.parametrize("method, formats", [("checks", ("text", "json", "junit", "markdown", "github", "html")),
                                             ("plan", ("text", "json", "markdown", "github", "html")),
                                             ("validate", ("text", "json", "markdown", "github", "sarif")),
                                             ("policy", ("text", "json"))])
def test_one_registry_says_which_formats_show_what(method, formats):
    assert formats_for(method) == formats
    assert set(FORMATTERS) == {"text", "json", "junit", "markdown", "github", "sarif", "html"}


def test_junit_says_how_long_each_check_and_each_suite_took():
    from checker.checks import timed
    measured = CheckResult("endpoint:health", "endpoints", Status.PASS, "ok", seconds=0.25)
    results = timed([measured, *RESULTS[:2]], elapsed=1.25)   # the other two share what is left: 0.5 s each
    assert [r.seconds for r in results] == [0.25, 0.5, 0.5]
    suite = ElementTree.fromstring(formatter("junit").checks(results)).find("testsuite")
    assert [c.get("time") for c in suite.findall("testcase")] == ["0.250", "0.500", "0.500"]
    assert suite.get("time") == "1.250"


def run_on_a_terminal(args: list, cwd, env: dict) -> str:
    """What `checker ARGS` writes to a terminal (a pseudo-terminal as its stdout)."""
    import os
    import pty
    import subprocess
    import sys
    main, child = pty.openpty()
    command = [os.path.join(os.path.dirname(sys.executable), "checker"), *args]
    process = subprocess.Popen(command, cwd=cwd, stdout=child, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_only_and_never_with_no_color(project, endpoint):
    args = ["plan", "--endpoint-url", endpoint]
    coloured = run_on_a_terminal(args, project, {})
    assert "\x1b[32m+\x1b[0m user" in coloured
    assert "\x1b[" not in run_on_a_terminal(args, project, {"NO_COLOR": "1"})
    import subprocess
    import sys
    piped = subprocess.run([sys.executable, "-m", "checker", *args], cwd=project, capture_output=True, text=True)
    assert "+ user" in piped.stdout and "\x1b[" not in piped.stdout


def test_colour_paints_status_words_and_plan_symbols_only():
    text = formatter("text").checks(RESULTS)
    from checker.report import colour
    painted = colour(text)
    assert painted.splitlines()[0] == "\x1b[32mPASS\x1b[0m  table:user: table user is ACTIVE"
    assert "\x1b[1;31mFAIL\x1b[0m  endpoint:health" in painted
    assert colour('  "PASS": 1') == '  "PASS": 1'      # JSON is left alone
