"""Secrets never shown: URLs with their passwords and secret parameters masked."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
"""What stands in for a secret."""

# Query parameters of a database or Redis URL that carry a secret.
_SECRET_PARAMS = frozenset({"password", "passfile", "sslpassword", "sslkey", "token", "secret"})


def redact_url(url: str) -> str:
    """``url`` with its password and secret query parameters masked; safe to print or log.

    Whatever the text looks like, nothing after the scheme's ``user:`` survives
    unmasked: a URL that does not parse is masked from the first ``:`` after
    the scheme up to the last ``@``.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
            )
        if netloc == parts.netloc and query == parts.query:
            return url
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        scheme, sep, rest = url.partition("://")
        if not sep:
            return MASK
        return (
            f"{scheme}://{MASK}@{rest.rpartition('@')[2]}" if "@" in rest else f"{scheme}://{MASK}"
        )
