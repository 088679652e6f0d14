"""Secrets never reach output: what counts as one, and the redactor that masks it everywhere.

A secret is masked in every encoding it may come back in (as is, percent-encoded, with `+` for
spaces, JSON-escaped, and the credential alone after "Bearer "), before any text is cut short, so
a truncated excerpt never shows part of one. The CLI passes everything it prints through one
Redactor that knows every secret of the run: header and query values the checklist marks
sensitive, credentials in URLs (user name and password, `--endpoint-url`'s included), and every
value a `${VAR}` put into the checklist.

Text that came from elsewhere (an endpoint's answer, a log line) may hold secrets checker was
never told: `Redactor.remote` also masks the values of secret-looking fields, in JSON at any depth
(JSON inside a JSON string too), Python dict reprs, `key=value` text and query strings,
`Bearer`/`Basic` credentials, the word after "token", "secret", "password", "api key" in free
text when it holds a digit, and values that are credentials by their shape (a JWT, an AWS access
key id, an opaque run of 32+ letters and digits that is not a UUID).
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
SENSITIVE = re.compile(r"auth|token|secret|key|password|passwd|pwd|signature|^sig$|session|cookie|credential|^code$"
                       r"|^x-amz-security", re.IGNORECASE)
MIN_SECRET = 4      # shorter values would mask ordinary words
MIN_VARIABLE_SECRET = 3   # a ${VAR} value is a secret the user named: masked from 3 characters
# a field name (JSON key, dict key, query or key=value name) whose value is a secret
_FIELD = r"[A-Za-z0-9_.-]*(?:auth(?!or)|token|secret|key|passw(?:or)?d|pwd|signature|session|cookie|credential)[A-Za-z0-9_.-]*"
_FIELD_VALUE = re.compile(
    r"""(?P<q>\\?["'])(?P<name>""" + _FIELD + r""")(?P=q)(?P<sep>\s*:\s*)"""
    r"""(?P<value>\\?"(?:[^"\\]|\\[^"])*\\?"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]{\[]+)""", re.IGNORECASE)
_KEY_EQUALS = re.compile(r"(?P<name>(?<![A-Za-z0-9_.-])" + _FIELD + r"|(?<![A-Za-z0-9_])sig)=(?P<value>[^\s&;,\"']+)",
                         re.IGNORECASE)
_CREDENTIAL = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE)
# free text: "refreshing with token AQD...", "the api key is k-1234..." (the next word, holding a digit)
_PHRASE = re.compile(r"\b(?P<word>(?:access|refresh|id|api|auth|session|client)?[ _-]?(?:token|secret|passw(?:or)?d"
                     r"|pwd|api[ _-]?key|credentials?))(?P<sep>\s+(?:is\s+|was\s+|of\s+)?|\s*[=:]\s*)"
                     r"(?P<value>(?=[^\s\"',;)]*\d)[^\s\"',;)]{8,})", re.IGNORECASE)
# a value that is a credential by its shape, whatever surrounds it: a JWT, an AWS access key id,
# and any opaque run of 32+ letters and digits (a refresh token, an API key) that is not a UUID
_SHAPES = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
                     r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
                     r"|(?<![A-Za-z0-9_+=-])(?![0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                     r"(?![A-Za-z0-9_+=-]))(?=[A-Za-z0-9_+=-]*\d)(?=[A-Za-z0-9_+=-]*[A-Za-z])[A-Za-z0-9_+=-]{32,}"
                     r"(?![A-Za-z0-9_+=-])")


class Redactor:
    """Collects secret values and masks them in any text."""

    def __init__(self):
        self.secrets: set = set()
        self.exact: set = set()    # ${VAR} values of any length: masked where they make a whole URL part

    def add(self, value, minimum: int = MIN_SECRET) -> None:
        value = str(value or "").strip()
        if len(value) < minimum:
            return
        forms = {value}
        parts = value.split(" ")
        if len(parts) > 1:  # "Bearer abc": the credential alone may be echoed too
            forms.update(p for p in parts if len(p) >= MIN_SECRET and p.lower() not in ("bearer", "basic"))
        for form in list(forms):
            forms.update({quote(form, safe=""), quote_plus(form), json.dumps(form)[1:-1]})
        self.secrets.update(f for f in forms if len(f) >= minimum)

    def add_variables(self, values) -> None:
        """Values a ${VAR} put in the checklist: secrets the user named, masked from 3 characters."""
        for value in values:
            self.add(value, minimum=MIN_VARIABLE_SECRET)
            if str(value or "").strip():
                self.exact.add(str(value).strip())

    def url(self, url: str) -> str:
        """A URL as it may be shown: credentials and sensitive query values masked, every known
        secret masked, and a path segment or query value that is a ${VAR} value masked whatever its
        length (`/hooks/${HOOK_TOKEN}`, `&sig=${SAS_SIG}`, even when the value is short)."""
        parts = urlsplit(masked_url(url))
        path = "/".join(MASK if unquote(segment) in self.exact else segment for segment in parts.path.split("/"))
        query = "&".join(self._query_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
        return self(urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment)))

    def _query_pair(self, pair: str) -> str:
        name, sep, value = pair.partition("=")
        return f"{name}={MASK}" if sep and unquote_plus(value) in self.exact else pair

    def add_url(self, url: str) -> None:
        """The user name, password and sensitive query values of a URL."""
        userinfo = split_userinfo(url)[1]
        if userinfo is not None:
            user, _, password = userinfo.partition(":")
            self.add(user)
            self.add(password)
        try:
            parts = urlsplit(without_userinfo(url)[0])
            for name, value in parse_qsl(parts.query):
                if SENSITIVE.search(name):
                    self.add(value)
        except ValueError:
            pass

    def add_headers(self, headers: dict) -> None:
        for name, value in (headers or {}).items():
            if SENSITIVE.search(str(name)):
                self.add(value)

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def remote(self, text: str) -> str:
        """Text from elsewhere: the known secrets, then every secret-looking field's value."""
        return mask_secret_fields(self(text))

    def excerpt(self, text: str, limit: int = 200) -> str:
        """Mask (as remote text), then cut: a secret is never shown in part."""
        text = self.remote(text)
        return text[:limit] + ("..." if len(text) > limit else "")


def _masked_value(value: str) -> str:
    for quote_mark in ('\\"', '"', "'"):
        if value.startswith(quote_mark):
            return f"{quote_mark}{MASK}{quote_mark}"
    return MASK


def mask_secret_fields(text: str) -> str:
    """The values of secret-looking fields masked, whatever the notation (see the module's docstring)."""
    text = _FIELD_VALUE.sub(lambda m: f"{m['q']}{m['name']}{m['q']}{m['sep']}{_masked_value(m['value'])}", text)
    text = _KEY_EQUALS.sub(lambda m: f"{m['name']}={MASK}", text)
    text = _CREDENTIAL.sub(lambda m: f"{m['scheme']} {MASK}", text)
    text = _PHRASE.sub(lambda m: f"{m['word']}{m['sep']}{MASK}", text)
    return _SHAPES.sub(MASK, text)


SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def split_userinfo(url: str) -> tuple:
    """(scheme://, the user name and password as written or None, the rest of the URL), found
    before any parser sees it: a password holding `/`, `?` or `#` makes urlsplit take part of it
    for the host or the path, which would then be shown. `https://host/users/@me` has none."""
    scheme = SCHEME.match(url)
    if not scheme or "@" not in url[scheme.end():]:
        return url[:scheme.end()] if scheme else "", None, url[scheme.end():] if scheme else url
    rest = url[scheme.end():]
    first = rest.split("@", 1)[0]
    if not any(c in first for c in "/?#"):
        return scheme.group(), first, rest[len(first) + 1:]
    info = rest.rsplit("@", 1)[0]           # a password with / ? or # in it: up to the last @
    user, colon, after = info.partition(":")
    port_like = re.fullmatch(r"\d*", re.split(r"[/?#]", after, maxsplit=1)[0])
    if colon and not any(c in user for c in "/?#") and not port_like:
        return scheme.group(), info, rest[len(info) + 1:]
    return scheme.group(), None, rest


def without_userinfo(url: str) -> tuple:
    """(the URL without its user name and password, whether it had any)."""
    scheme, userinfo, rest = split_userinfo(url)
    return (scheme + rest, True) if userinfo is not None else (url, False)


def masked_url(url: str) -> str:
    """The URL with its credentials and sensitive query values replaced by the mask."""
    url, had_userinfo = without_userinfo(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        userinfo = f"{MASK}:{MASK}@" if had_userinfo else ""
        query = urlencode([(n, MASK if SENSITIVE.search(n) else v) for n, v in parse_qsl(parts.query)], safe="*")
        return urlunsplit((parts.scheme, userinfo + host, parts.path, query, parts.fragment))
    except ValueError:
        return "<a malformed URL>"
