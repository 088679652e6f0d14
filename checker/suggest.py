""""Did you mean ...?" for a misspelt name: one helper for every place a user names something
from a known set (IAM actions, indexes, spec fields, check kinds)."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """" (did you mean X?)" for the closest choice, compared case-insensitively; "" when none is close."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{by_lower[close[0]]}?)" if close else ""
