"""CloudWatch Logs text filter patterns as checker evaluates them (checker/log_pattern.py)."""
from __future__ import annotations

import pytest

from checker.log_pattern import UnsupportedPattern, parse

LINES = ["ERROR Invoke Error ResourceNotFoundException", "ERROR No tracks to be added", "INFO all good",
         "Task timed out after 3.00 seconds", "error lower case"]


@pytest.mark.parametrize("pattern, matching", [
    ("", LINES),
    ("ERROR", LINES[:2]),
    ("ERROR Invoke", LINES[:1]),
    ('ERROR -"No tracks to be added"', LINES[:1]),
    ('"Task timed out"', LINES[3:4]),
    ("?Invoke ?timed", [LINES[0], LINES[3]]),
    ("ERROR -tracks -Invoke", []),
    ('"say \\"hi\\""', []),
])
def test_text_patterns_match_as_cloudwatch_logs_defines_them(pattern, matching):
    parsed = parse(pattern)
    assert [line for line in LINES if parsed.matches(line)] == matching


def test_the_server_is_sent_only_the_plain_words_every_match_contains():
    assert parse('ERROR Invoke -"No tracks" ?a ?b "two words"').server_pattern() == "ERROR Invoke"
    assert parse("-ERROR").server_pattern() == ""


@pytest.mark.parametrize("pattern, said", [('{ $.level = "ERROR" }', "JSON"), ("[ip, user]", "space-delimited"),
                                           ("%ERR.R%", "regular-expression"), ('ERROR "open', "unbalanced")])
def test_patterns_checker_cannot_evaluate_say_so(pattern, said):
    with pytest.raises(UnsupportedPattern, match=said):
        parse(pattern)
