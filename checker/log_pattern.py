"""CloudWatch Logs filter patterns for unstructured log events, evaluated by checker itself.

A logs check must not trust a server's evaluation it never checked: moto's FilterLogEvents, for
one, ignores a `-"..."` exclusion and answers nothing, which made every pattern with an exclusion
a silent pass. So the server is sent only the plain words every event must contain (what every
backend evaluates the same way, and what keeps a busy log group's pages few), and checker applies
the whole pattern to each event it reads, as CloudWatch Logs defines it:

    ERROR                    events containing ERROR (case-sensitive)
    ERROR Invoke             containing both
    "Task timed out"         containing the phrase
    ERROR -"No tracks"       containing ERROR and not the phrase
    ?ERROR ?Exception        containing either

JSON (`{ $.level = "ERROR" }`), space-delimited (`[ip, user, ...]`) and regular-expression
(`%...%`) patterns are not evaluated here: `parse` says so, and the check says it could not look.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN = re.compile(r'([-?]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')
PLAIN_WORD = re.compile(r"^[A-Za-z0-9_]+$")


class UnsupportedPattern(ValueError):
    """A pattern checker cannot evaluate itself."""


@dataclass(frozen=True)
class TextPattern:
    """A parsed unstructured pattern: every `required` term, none of `excluded`, and one of
    `any_of` when there are any."""

    required: tuple = ()
    excluded: tuple = ()
    any_of: tuple = ()

    def matches(self, message: str) -> bool:
        return (all(term in message for term in self.required)
                and not any(term in message for term in self.excluded)
                and (not self.any_of or any(term in message for term in self.any_of)))

    def server_pattern(self) -> str:
        """What the server is sent: the required plain words (a superset of the matches), or
        nothing (every event, filtered here)."""
        return " ".join(term for term in self.required if PLAIN_WORD.match(term))


def parse(pattern: str) -> TextPattern:
    """A TextPattern, or UnsupportedPattern naming why checker cannot evaluate it."""
    text = pattern.strip()
    if text in ("", '""'):
        return TextPattern()
    if text[0] in "{[" or (text.startswith("%") and text.endswith("%")):
        kind = {"{": "a JSON", "[": "a space-delimited"}.get(text[0], "a regular-expression")
        raise UnsupportedPattern(f"{kind} filter pattern, which checker cannot evaluate itself")
    required: list = []
    excluded: list = []
    any_of: list = []
    position = 0
    for match in TOKEN.finditer(text):
        if text[position:match.start()].strip():
            raise UnsupportedPattern(f"cannot read {text[position:match.start()]!r} in the pattern")
        position = match.end()
        sign, quoted, bare = match.group(1), match.group(2), match.group(3)
        term = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        if bare is not None and '"' in bare:
            raise UnsupportedPattern(f"an unbalanced quote in {bare!r}")
        if not term:
            continue
        {"-": excluded, "?": any_of, "": required}[sign].append(term)
    return TextPattern(tuple(required), tuple(excluded), tuple(any_of))
