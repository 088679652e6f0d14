"""--since: durations, ISO times, epoch milliseconds."""
from __future__ import annotations

import pytest

from checker.checks.logs import parse_since

NOW = 1_759_606_800_000  # 2025-10-04T19:40:00Z


@pytest.mark.parametrize("text, expected", [
    ("15m", NOW - 15 * 60_000), ("2h", NOW - 7_200_000), ("1d", NOW - 86_400_000), ("90s", NOW - 90_000),
    ("1.5h", NOW - 5_400_000), ("1w", NOW - 7 * 86_400_000), ("1h30m", NOW - 5_400_000),
    ("2d12h", NOW - 216_000_000),
    ("1759606800000", 1_759_606_800_000),
    ("2025-10-04T16:00:00Z", 1_759_593_600_000),
    ("2025-10-04T16:00:00", 1_759_593_600_000),          # no offset: UTC
    ("2025-10-04T18:00:00+02:00", 1_759_593_600_000),
    ("2025-10-04T19:44:00Z", NOW + 240_000),              # a few minutes of clock skew are allowed
])
def test_accepted_forms(text, expected):
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text, message", [
    ("yesterday", "is not a duration"), ("1759606800", "epoch seconds"), ("15 minutes", "is not a duration"),
    ("9" * 400, "not between 2000-01-01 and now"), ("100000w", "not between"), ("1970-01-01T00:00:00Z", "not between"),
    ("3000-01-01T00:00:00Z", "in the future"), ("1h 30m", "is not a duration"),
    ("2025-10-04T21:00:00", "in the future"),  # a local time east of UTC, written without its offset
])
def test_rejected_forms(text, message):
    with pytest.raises(ValueError, match=message):
        parse_since(text, NOW)


def test_a_time_without_an_offset_is_said_to_be_utc():
    from checker.checks.logs import since_note
    assert since_note("2025-10-04T16:00:00") == " (--since had no offset: taken as UTC)"
    assert since_note("2025-10-04T16:00:00Z") == since_note("15m") == since_note(None) == ""
