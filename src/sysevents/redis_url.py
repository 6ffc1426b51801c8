"""Redis URLs: one server (``redis://``, ``rediss://``, ``unix://``) or a cluster.

A Redis Cluster is named by ``redis+cluster://[user:password@]host:port[,host:port…]``
(``rediss+cluster://`` for TLS): the nodes are where the client starts, it
finds the others itself. Parsing needs no Redis driver, so the settings can
check the URL before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SERVER_SCHEMES = frozenset({"redis", "rediss", "unix"})
"""Schemes of one Redis server (as redis-py's ``from_url`` takes them)."""
CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
"""Schemes of a Redis Cluster."""


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """What a ``redis+cluster://`` URL says: the nodes to start from, the credentials, TLS."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    ssl: bool = False


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case (``""`` if it has none)."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def is_cluster(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster."""
    return scheme_of(url) in CLUSTER_SCHEMES


def check_redis_url(url: str) -> None:
    """Raise ``ValueError`` saying what is wrong with ``url``, if anything."""
    scheme = scheme_of(url)
    if scheme in CLUSTER_SCHEMES:
        parse_cluster_url(url)
    elif scheme not in SERVER_SCHEMES:
        known = ", ".join(f"{s}://" for s in sorted(SERVER_SCHEMES | CLUSTER_SCHEMES))
        raise ValueError(f"not a Redis URL (scheme {scheme or 'missing'}): use one of {known}")


def _node(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 address
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"a cluster node must be written host:port, not {text!r}")
    return host, int(port)


def parse_cluster_url(url: str) -> ClusterUrl:
    """The nodes, credentials and TLS of a ``redis+cluster://`` URL; ``ValueError`` if malformed."""
    scheme = scheme_of(url)
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL: the scheme is {scheme or 'missing'}")
    parts = urlsplit(url)
    if parts.path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has only database 0: the URL takes no other path")
    if parts.query or parts.fragment:
        raise ValueError("a Redis Cluster URL takes no query parameters")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = tuple(_node(part.strip()) for part in hosts.split(",") if part.strip())
    if not nodes:
        raise ValueError("a Redis Cluster URL names at least one node: host:port[,host:port…]")
    return ClusterUrl(nodes, username, password, scheme == "rediss+cluster")
