"""Text as checker shows it: a value clipped to a readable length, control characters escaped.
The ground floor: imports nothing of checker."""
from __future__ import annotations

import re

ECHO_LIMIT = 300    # characters of any echoed value (a 40 MB array is not an error message)


def clip(value, limit: int = ECHO_LIMIT) -> str:
    """A value as it may appear in a message: repr'd, and never longer than `limit`."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")   # a tab forges nothing: kept


def escape_controls(text) -> str:
    """Control characters (C0 but tab, DEL, C1, Unicode line separators) as visible escapes: \\n, \\x1b."""
    text = str(text)
    if not CONTROLS.search(text):
        return text
    named = {"\n": "\\n", "\r": "\\r"}
    return CONTROLS.sub(lambda m: named.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                            else f"\\u{ord(m.group()):04x}"), text)
