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
    ("2025-10-04T23:20:00Z", 1_759_620_000_000),
    ("2025-10-04T23:20:00", 1_759_620_000_000),
    ("2025-10-05T01:20:00+02:00", 1_759_620_000_000),
])
def test_accepted_forms(text, expected):
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text, message", [
    ("yesterday", "is not a duration"), ("1759606800", "epoch seconds"), ("15 minutes", "is not a duration"),
    ("9" * 400, "not between 2000-01-01 and now"), ("100000w", "not between"), ("1970-01-01T00:00:00Z", "not between"),
    ("3000-01-01T00:00:00Z", "not between"), ("1h 30m", "is not a duration"),
])
def test_rejected_forms(text, message):
    with pytest.raises(ValueError, match=message):
        parse_since(text, NOW)
