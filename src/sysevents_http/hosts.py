"""Which names a server answers while it requires no key: a defence against DNS rebinding.

A web page can make a browser send requests to a name it controls that
resolves, a moment later, to 127.0.0.1: to the browser they are same-origin,
and they reach a developer's open server. Such requests carry the attacker's
name in ``Host``. While no key is required, the API answers only requests
naming this machine's loopback names and addresses, or a name listed in
``allowed_hosts`` (``*``: any).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def host_name(host: str) -> str:
    """The name or address of a ``Host`` header, without its port and brackets, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host[1:]
    name, _, port = host.rpartition(":")
    if name and port.isdigit() and ":" not in name:
        return name
    return host


def is_loopback_name(name: str) -> bool:
    """Whether ``name`` (a host name or address) stands for this machine only."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    """Whether a request with this ``Host`` header may be answered without a key."""
    if host is None:
        return False  # HTTP/1.1 requires one; without it, nothing says where the request went
    name = host_name(host)
    listed = {host_name(a) for a in allowed}
    return "*" in listed or name in listed or is_loopback_name(name)
