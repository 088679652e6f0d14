"""A failing endpoint is blamed on a missing table only with evidence (checks.blame_tables)."""
from __future__ import annotations

import pytest

from checker.checks import blame_tables
from checker.results import CheckResult, Status

MISSING = CheckResult("table:liked_songs", "tables", Status.FAIL, "table liked_songs does not exist",
                      checker_command="apply")
OTHER = CheckResult("table:track", "tables", Status.FAIL, "table track lacks index(es) byArtist of its spec",
                    checker_command="apply")


def endpoint(found: str, answered) -> CheckResult:
    return CheckResult("endpoint:health", "endpoints", Status.FAIL, f"GET https://x.example/health: {found}",
                       found=found, answered=answered)


@pytest.mark.parametrize("found, answered, bound, blamed", [
    ("host x.example does not resolve (DNS)", None, {"liked_songs"}, []),              # no answer at all
    ("no answer: ConnectionRefusedError", None, {"liked_songs"}, []),
    ("HTTP 404: {\"message\":\"Not Found\"}", 404, {"liked_songs"}, []),                # a route that does not exist
    ("HTTP 403: Forbidden", 403, set(), []),
    ('HTTP 502: {"errorType":"ResourceNotFoundException"}', 502, {"user"}, ["liked_songs", "track"]),  # DynamoDB's error
    ("HTTP 500: could not read liked_songs", 500, {"user"}, ["liked_songs"]),         # the answer names it
    ("HTTP 400: liked_songs unavailable", 400, set(), ["liked_songs"]),
    ("HTTP 502: Internal server error", 502, {"liked_songs", "user"}, ["liked_songs"]),  # a 5xx, a bound table
    ("HTTP 502: Internal server error", 502, {"user"}, []),                            # ... not bound: no evidence
    ("HTTP 400: No tracks to be added", 400, set(), []),                              # "tracks" is not track
    ("HTTP 400: liked_songs_metadata is gone", 400, set(), []),                       # nor liked_songs
    ("HTTP 503: Service Unavailable", 503, set(), ["liked_songs", "track"]),           # no bindings declared
])
def test_a_table_is_named_only_with_evidence(found, answered, bound, blamed):
    results = blame_tables([MISSING, OTHER, endpoint(found, answered)], frozenset(bound))
    checked = results[-1]
    causes = [d for d in checked.details if d.startswith("probably because")]
    if not blamed:
        assert causes == [] and checked.checker_command == "", checked
    else:
        named = [name for name in ("liked_songs", "track") if f"table {name} " in causes[0]]
        assert named == blamed, causes
        assert checked.checker_command == "apply"
    assert results[:2] == [MISSING, OTHER]


def logs_failing(*lines: str) -> CheckResult:
    return CheckResult("logs:ERROR", "logs", Status.FAIL, "logs:ERROR: 2 event(s)", details=lines)


@pytest.mark.parametrize("lines, answered, bound, blamed", [
    # the function's ERROR line names the table: a 5xx is blamed on it alone, bound or not
    (('ERROR Invoke Error {"errorType":"ResourceNotFoundException","message":"table track not found"}',), 502,
     {"liked_songs", "track"}, ["track"]),
    (("[ERROR] reading liked_songs failed",), 500, set(), ["liked_songs"]),
    (("[ERROR] reading liked_songs failed",), 404, set(), []),                   # a route that does not exist
    (("[ERROR] upstream timeout",), 502, {"liked_songs"}, ["liked_songs"]),        # no name: the bound rule
])
def test_the_functions_log_lines_are_evidence_for_a_5xx(lines, answered, bound, blamed):
    results = blame_tables([MISSING, OTHER, endpoint(f"HTTP {answered}: Internal server error", answered),
                            logs_failing(*lines)], frozenset(bound))
    checked = results[2]
    causes = [d for d in checked.details if d.startswith("probably because")]
    named = [name for name in ("liked_songs", "track") if causes and f"table {name} " in causes[0]]
    assert named == blamed, causes
