"""The formatters, on results built by hand: what each format says, and that junit stays XML."""
from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from checker.diff import CAPACITY_GATE, NOT_COMPARED, Change
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


@pytest.mark.parametrize("method, formats", [("checks", ("text", "json", "junit")), ("plan", ("text", "json")),
                                             ("policy", ("text", "json"))])
def test_one_registry_says_which_formats_show_what(method, formats):
    assert formats_for(method) == formats
    assert set(FORMATTERS) == {"text", "json", "junit"}
