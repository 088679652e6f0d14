"""CloudWatch Logs filter patterns as checker evaluates them (checker/log_pattern.py): text and JSON."""
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


EVENTS = ['{"level": "ERROR", "latency": 1500, "user": {"id": "dana", "tags": ["a", "b"]}, "ok": false}',
          '{"level": "INFO", "latency": 20, "user": null, "message": "Task timed out after 3.00 seconds"}',
          '{"level": "ERROR-ish", "latency": "slow"}',
          'ERROR not json at all',
          '["a", "list", "not an object"]']


@pytest.mark.parametrize("pattern, matching", [
    ('{ $.level = "ERROR" }', [0]),
    ("{ $.level = ERROR* }", [0, 2]),                       # a bare word, * a wildcard
    ("{ $.level != ERROR }", [1, 2]),
    ("{ $.latency > 1000 }", [0]),                          # numbers only: "slow" is not one
    ("{ $.latency <= 20 }", [1]),
    ("{ $.latency = 1500.0 }", [0]),
    ("{ $.ok IS FALSE }", [0]),
    ("{ $.user IS NULL }", [1]),
    ("{ $.user NOT EXISTS }", [2]),
    ('{ $.user.id = "dana" }', [0]),
    ('{ $.user.tags[1] = "b" }', [0]),
    ("{ $.message = %timed? out% }", [1]),
    ('{ ($.level = "INFO" || $.latency > 1000) && $.latency < 2000 }', [0, 1]),
    ('{ $.level = "ERROR" || $.level = "INFO" }', [0, 1]),
])
def test_json_patterns_match_json_events_as_cloudwatch_logs_defines_them(pattern, matching):
    parsed = parse(pattern)
    assert [n for n, event in enumerate(EVENTS) if parsed.matches(event)] == matching
    assert parsed.server_pattern() == ""          # the server may not evaluate it: every event read, judged here


@pytest.mark.parametrize("pattern, said", [("[ip, user]", "space-delimited"), ("%ERR.R%", "regular-expression"),
                                           ('ERROR "open', "unbalanced"), ("{ $.level = }", "value is missing"),
                                           ("{ level = 1 }", "selector"), ("{ $.a > high }", "compares numbers"),
                                           ("{ ($.a = 1 }", "unclosed"), ("{ $.a IS MAYBE }", "IS NULL"),
                                           ('{ $.a = "x"', "end with }"), ("{ $.a = %(% }", "does not compile")])
def test_patterns_checker_cannot_evaluate_say_so(pattern, said):
    with pytest.raises(UnsupportedPattern, match=said):
        parse(pattern)
