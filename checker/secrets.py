"""Secrets never reach output: what counts as one, and the redactor that masks it everywhere.

A secret is masked in every encoding it may come back in (as is, percent-encoded, with `+` for
spaces, JSON-escaped, and the credential alone after "Bearer "), before any text is cut short, so
a truncated excerpt never shows part of one. The CLI passes everything it prints through one
Redactor that knows every secret of the run: header and query values the checklist marks
sensitive, credentials in URLs (user name and password, `--endpoint-url`'s included).
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
SENSITIVE = re.compile(r"auth|token|secret|key|password|passwd|signature|session|cookie|credential|^code$"
                       r"|^x-amz-security", re.IGNORECASE)
MIN_SECRET = 4      # shorter values would mask ordinary words
ECHO_LIMIT = 300    # characters of any echoed value (a 40 MB array is not an error message)


class Redactor:
    """Collects secret values and masks them in any text."""

    def __init__(self):
        self.secrets: set = set()

    def add(self, value) -> None:
        value = str(value or "").strip()
        if len(value) < MIN_SECRET:
            return
        forms = {value}
        parts = value.split(" ")
        if len(parts) > 1:  # "Bearer abc": the credential alone may be echoed too
            forms.update(p for p in parts if len(p) >= MIN_SECRET and p.lower() not in ("bearer", "basic"))
        for form in list(forms):
            forms.update({quote(form, safe=""), quote_plus(form), json.dumps(form)[1:-1]})
        self.secrets.update(f for f in forms if len(f) >= MIN_SECRET)

    def add_url(self, url: str) -> None:
        """The user name, password and sensitive query values of a URL."""
        try:
            parts = urlsplit(url)
            self.add(parts.username)
            self.add(parts.password)
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

    def excerpt(self, text: str, limit: int = 200) -> str:
        """Mask, then cut: a secret is never shown in part."""
        text = self(text)
        return text[:limit] + ("..." if len(text) > limit else "")


def masked_url(url: str) -> str:
    """The URL with its credentials and sensitive query values replaced by the mask."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        userinfo = MASK + (f":{MASK}" if parts.password is not None else "") + "@" if parts.username else ""
        query = urlencode([(n, MASK if SENSITIVE.search(n) else v) for n, v in parse_qsl(parts.query)], safe="*")
        return urlunsplit((parts.scheme, userinfo + host, parts.path, query, parts.fragment))
    except ValueError:
        return "<a malformed URL>"


def clip(value, limit: int = ECHO_LIMIT) -> str:
    """A value as it may appear in a message: repr'd, and never longer than `limit`."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
