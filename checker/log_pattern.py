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

JSON patterns match JSON log events (a message that is a JSON object), as CloudWatch defines
them; the server is sent nothing (it may not evaluate them: every event is read and judged here):

    { $.level = "ERROR" }                    a string field equal (`*` a wildcard; bare words too)
    { $.latency > 1000 }                     numbers: = != < > <= >=
    { $.error IS TRUE }, { $.user IS NULL }  booleans and null
    { $.user NOT EXISTS }                    a field absent
    { $.msg = %timed? out% }                 a regular expression
    { ($.a = 1 || $.b = 2) && $.c[0] = "x" } && || and parentheses; selectors $.a.b and $.a[0]

Space-delimited (`[ip, user, ...]`) and regular-expression (`%...%`) patterns over the whole
message are not evaluated here: `parse` says so, and the check says it could not look.
"""
from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

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


JSON_TOKEN = re.compile(r'\s*(\|\||&&|\(|\)|!=|<=|>=|=|<|>|"(?:[^"\\]|\\.)*"|%(?:[^%\\]|\\.)*%|'
                        r"\$(?:\.[A-Za-z_][\w-]*|\[\d+\])*|[^\s()&|=!<>]+)")
MISSING = object()


@dataclass(frozen=True)
class JsonPattern:
    """A parsed JSON pattern: a tree of ("or"|"and", [children]) and (selector, operator, value)
    comparisons, applied to events whose message is a JSON object."""

    tree: tuple

    def matches(self, message: str) -> bool:
        try:
            document = json.loads(message, parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            return False
        return isinstance(document, dict) and _holds(self.tree, document)

    def server_pattern(self) -> str:
        return ""


def _select(document, path: tuple):
    value = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return MISSING
            value = value[step]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return MISSING
    return value


def _holds(tree: tuple, document) -> bool:
    if tree[0] in ("or", "and"):
        found = (_holds(child, document) for child in tree[1])
        return any(found) if tree[0] == "or" else all(found)
    path, operator, wanted = tree
    value = _select(document, path)
    if operator == "NOT EXISTS":
        return value is MISSING
    if value is MISSING:
        return False
    if operator == "IS":
        return value is wanted if isinstance(wanted, bool) or wanted is None else False
    if isinstance(wanted, Decimal):
        if isinstance(value, bool) or not isinstance(value, Decimal):
            return False
        return {"=": value == wanted, "!=": value != wanted, "<": value < wanted, ">": value > wanted,
                "<=": value <= wanted, ">=": value >= wanted}[operator]
    text = value if isinstance(value, str) else None      # a string compared with a string only
    if isinstance(wanted, re.Pattern):
        same = text is not None and wanted.search(text) is not None
    else:
        same = text is not None and fnmatch.fnmatchcase(text, wanted.replace("[", "[[]").replace("?", "[?]"))
    return same if operator == "=" else (text is not None and not same)


def _tokens(body: str) -> list:
    tokens, position = [], 0
    while position < len(body):
        match = JSON_TOKEN.match(body, position)
        if match is None or not match.group(1):
            if not body[position:].strip():
                break
            raise UnsupportedPattern(f"cannot read {body[position:position + 20]!r} in the JSON pattern")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _literal(literal: str, comparison: str):
    """A comparison's value: a compiled %regex%, a string (quoted or bare, `*` a wildcard) or a number."""
    if not literal or literal in ("&&", "||", "(", ")"):
        raise UnsupportedPattern(f"a value is missing after {comparison} in the JSON pattern")
    wanted: object
    if literal.startswith("%") and literal.endswith("%") and len(literal) > 1:
        try:
            wanted = re.compile(literal[1:-1])
        except re.error as exc:
            raise UnsupportedPattern(f"the regular expression {literal} does not compile: {exc}") from None
    elif literal.startswith('"'):
        wanted = re.sub(r"\\(.)", r"\1", literal[1:-1])
    else:
        try:
            wanted = Decimal(literal)
        except InvalidOperation:
            wanted = literal
    if comparison.split()[-1] not in ("=", "!=") and not isinstance(wanted, Decimal):
        raise UnsupportedPattern(f"{comparison} compares numbers; {literal!r} is not one")
    return wanted


class _JsonParser:
    """Recursive descent over the tokens: || binds looser than &&; parentheses group."""

    def __init__(self, tokens: list):
        self.tokens, self.at = tokens, 0

    def peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def take(self) -> str:
        self.at += 1
        return self.tokens[self.at - 1] if self.at <= len(self.tokens) else ""

    def either(self) -> tuple:
        return self.joined("||", "or", self.both)

    def both(self) -> tuple:
        return self.joined("&&", "and", self.single)

    def joined(self, mark: str, kind: str, part: Callable[[], tuple]) -> tuple:
        """`part`, or (kind, [parts]) when several are joined by `mark`."""
        children = [part()]
        while self.peek() == mark:
            self.take()
            children.append(part())
        return children[0] if len(children) == 1 else (kind, children)

    def single(self) -> tuple:
        if self.peek() == "(":
            self.take()
            inner = self.either()
            if self.take() != ")":
                raise UnsupportedPattern("an unclosed ( in the JSON pattern")
            return inner
        selector = self.take()
        if not selector.startswith("$"):
            raise UnsupportedPattern(f"expected a selector ($.field) in the JSON pattern, found {selector!r}")
        path = tuple(int(step[1:-1]) if step.startswith("[") else step[1:]
                     for step in re.findall(r"\.[A-Za-z_][\w-]*|\[\d+\]", selector))
        word = self.take()
        if word.upper() == "IS":
            value = self.take().upper()
            if value not in ("NULL", "TRUE", "FALSE"):
                raise UnsupportedPattern(f"IS {value} in the JSON pattern (IS NULL, IS TRUE or IS FALSE)")
            return path, "IS", {"NULL": None, "TRUE": True, "FALSE": False}[value]
        if word.upper() == "NOT" and self.take().upper() == "EXISTS":
            return path, "NOT EXISTS", None
        if word not in ("=", "!=", "<", ">", "<=", ">="):
            raise UnsupportedPattern(f"expected a comparison after {selector} in the JSON pattern, found {word!r}")
        return path, word, _literal(self.take(), f"{selector} {word}")


def _parse_json(text: str) -> JsonPattern:
    parser = _JsonParser(_tokens(text[1:-1].strip()))
    tree = parser.either()
    if parser.at != len(parser.tokens):
        raise UnsupportedPattern(f"cannot read {' '.join(parser.tokens[parser.at:])!r} in the JSON pattern")
    return JsonPattern(tree)


def parse(pattern: str):
    """A TextPattern or JsonPattern, or UnsupportedPattern naming why checker cannot evaluate it."""
    text = pattern.strip()
    if text in ("", '""'):
        return TextPattern()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise UnsupportedPattern("a JSON pattern must end with }")
        return _parse_json(text)
    if text[0] == "[" or (text.startswith("%") and text.endswith("%")):
        kind = "a space-delimited" if text[0] == "[" else "a regular-expression"
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
