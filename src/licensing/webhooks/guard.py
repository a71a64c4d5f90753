"""Where a webhook may point (API.md, "Keys, limits and outages"): public addresses only.

A webhook URL is chosen by whoever holds a billing key, and the engine POSTs to it from inside
the operator's network. Without a guard it reaches what only the engine should reach (the
database, a cloud's metadata service at 169.254.169.254, an admin port on 127.0.0.1), and the
recorded errors ("Connection refused") turn the event log into a port scanner.

The rule: the URL's host is resolved (an IP literal is itself; a name goes through
``socket.getaddrinfo``), and the URL is refused when **any** of its addresses is not a public
one: loopback, private (10/8, 172.16/12, 192.168/16, and the shared space 100.64/10),
link-local (169.254/16, fe80::/10), unique-local (fc00::/7), unspecified (0.0.0.0, ::),
multicast, reserved, or anything else the IANA registries do not call globally reachable
(documentation and benchmarking ranges too). An IPv6 address that carries an IPv4 one
(IPv4-mapped ``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by the
IPv4 address it carries as well. Addresses inside ``LICENSING_WEBHOOK_ALLOWED_NETWORKS``
(comma-separated CIDRs, none by default) are let through: a receiver on the operator's own
network, or the tests' receiver on 127.0.0.1.

A name that does not resolve is refused like a forbidden one, with the same words, so that the
answer never tells a caller which internal names exist.

The rule is applied twice: at registration (``check_url``: 422 ``webhook_url_forbidden``) and
at each delivery, by ``transport.PinnedBackend``, which resolves once, checks, and connects to
the very addresses it checked (a name that resolves to a public address at registration and to
127.0.0.1 afterwards, DNS rebinding, gets nothing).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import threading
from datetime import timedelta
from typing import Any

import httpx

from licensing.config import Settings, get_settings
from licensing.errors import WebhookUrlForbidden

log = logging.getLogger("licensing.webhooks")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are IPv4
# A lookup is given at least this long, however little of a deadline is left.
MINIMUM_WAIT = timedelta(milliseconds=1)

FORBIDDEN = (
    "url must name a host that resolves to public addresses only: webhooks may not reach loopback, private, "
    "link-local, unique-local, unspecified, multicast or reserved addresses (nor a name that does not resolve) "
    "unless LICENSING_WEBHOOK_ALLOWED_NETWORKS allows them"
)


class ForbiddenAddress(Exception):
    """A host that resolves to at least one address webhooks may not reach."""


class Unresolvable(Exception):
    """A host that does not resolve (in time)."""


@functools.lru_cache(maxsize=16)
def allowed_networks(text: str) -> tuple[Network, ...]:
    """The networks of a ``webhook_allowed_networks`` setting. An entry that is not a CIDR is left
    out, with a warning: a mistyped setting allows less, never more."""
    networks = []
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            log.warning("LICENSING_WEBHOOK_ALLOWED_NETWORKS: %r is not a network (CIDR); it is ignored", entry)
    return tuple(networks)


def allowed_by(settings: Settings | None = None) -> tuple[Network, ...]:
    return allowed_networks((settings or get_settings()).webhook_allowed_networks)


def carried(address: IPAddress) -> list[IPAddress]:
    """The addresses to judge for ``address``: itself, or the IPv4 address an IPv6 one carries."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return [address.ipv4_mapped]
        if address in NAT64:
            return [ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)]
        if address.sixtofour is not None:
            return [address, address.sixtofour]
    return [address]


def is_public(address: IPAddress) -> bool:
    special = (
        address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or not address.is_global
    )
    if isinstance(address, ipaddress.IPv6Address):
        special = special or address.is_site_local
    return not special


def is_forbidden(address: IPAddress, allowed: tuple[Network, ...] = ()) -> bool:
    """Whether webhooks may not reach ``address`` (with ``allowed`` networks let through)."""
    judged = carried(address)
    for candidate in {address, *judged}:
        if any(candidate.version == network.version and candidate in network for network in allowed):
            return False
    return not all(is_public(candidate) for candidate in judged)


def literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is written as one (IPv6 with or without brackets)."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def resolve(host: str, port: int, *, timeout: timedelta | None) -> list[IPAddress]:
    """The addresses of ``host`` (IPv4 and IPv6, in the resolver's order, without repeats).

    ``getaddrinfo`` cannot be interrupted and has no timeout of its own: it runs in a daemon
    thread that is abandoned after ``timeout`` (None: waited for; it ends when the resolver
    gives up)."""
    address = literal(host)
    if address is not None:
        return [address]
    answer: dict[str, Any] = {}

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError) as error:
            answer["error"] = error

    thread = threading.Thread(target=lookup, name="licensing-webhook-dns", daemon=True)
    thread.start()
    thread.join(None if timeout is None else max(timeout, MINIMUM_WAIT).total_seconds())
    if "infos" not in answer:
        raise Unresolvable(host)
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in answer["infos"]:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            found = ipaddress.ip_address(sockaddr[0])
        except ValueError:
            continue
        if found not in addresses:
            addresses.append(found)
    if not addresses:
        raise Unresolvable(host)
    return addresses


def checked_addresses(host: str, port: int, *, allowed: tuple[Network, ...], timeout: timedelta | None) -> list[IPAddress]:
    """The addresses of ``host``, when every one of them may be reached; else ``ForbiddenAddress``
    (or ``Unresolvable``)."""
    addresses = resolve(host, port, timeout=timeout)
    if any(is_forbidden(address, allowed) for address in addresses):
        raise ForbiddenAddress(host)
    return addresses


def host_and_port(url: str) -> tuple[str, int]:
    """The host the sender connects to (IDNA-encoded, IPv6 without brackets) and its port, as
    httpx parses the URL (the parser that sends is the parser that checks)."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.raw_host.decode("ascii"), port


def check_url(url: str, *, settings: Settings | None = None, timeout: timedelta | None = None) -> None:
    """Refuse (422 ``webhook_url_forbidden``, field ``url``) a webhook URL whose host may not be
    reached; ``url`` has passed ``services.valid_url`` (an http(s) URL with a host). Resolving a
    name waits at most ``timeout`` (default: the delivery deadline)."""
    settings = settings or get_settings()
    if timeout is None:
        timeout = settings.webhook_deadline
    try:
        host, port = host_and_port(url)
        checked_addresses(host, port, allowed=allowed_by(settings), timeout=timeout)
    except (ForbiddenAddress, Unresolvable, httpx.InvalidURL, UnicodeError, ValueError):
        raise WebhookUrlForbidden(FORBIDDEN, errors=[{"field": "url", "message": FORBIDDEN}]) from None
