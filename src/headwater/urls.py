"""Database and service URLs in messages: the one place that hides their passwords."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit


def url_secrets(url: str) -> list[str]:
    """The password of a URL (user info or a `password=` parameter), raw and unquoted."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [password or "", *(v for k, v in parse_qsl(parts.query) if k == "password")]
    return [s for s in {*found, *(unquote(s) for s in found)} if s]


def redact(url: str) -> str:
    """The URL with its password (in the user info or a `password=` parameter) as ***."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if has_password:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hosts}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    public = urlencode([(k, "***" if k == "password" else v) for k, v in query], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, public, parts.fragment))


def scrub(text: str, url: str) -> str:
    """`text` (a driver's message) with the URL and its password replaced."""
    text = text.replace(url, redact(url))
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text
