"""Which targets a webhook may call (item 5).

Refused unless `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`: plain `http`, and hosts that resolve to a
loopback, private, link-local (cloud metadata lives there), shared, multicast, reserved or
unspecified address, or to a known metadata address. Checked twice: on the URL when an
endpoint is created or changed (`check_url`), and on every connection the delivery client
opens (`transport.Connections._open`), which connects to the very address it checked, so a name
that resolves elsewhere later (DNS rebinding) is refused too. Redirects are never followed
(`delivery`), so a public URL cannot bounce a message to a private one.
"""

import asyncio
import ipaddress
import socket
from typing import Final
from urllib.parse import urlsplit

from app.webhooks.errors import UnsafeTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)


def refusal(address: str) -> str | None:
    """Why `address` may not be called, or None when it is a public address."""
    ip: IPAddress = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind, test in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
    ):
        if test:
            return f"a {kind} address"
    if not ip.is_global:
        return "not a public address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order (tests replace this)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: dict[str, None] = {}
    for *_rest, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def public_addresses(host: str, port: int) -> list[str]:
    """The addresses of `host`, every one of them public; raises `UnsafeTarget` otherwise."""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeTarget(f"The host {host} does not resolve") from exc
        if not addresses:
            raise UnsafeTarget(f"The host {host} does not resolve")
    for address in addresses:
        why = refusal(address)
        if why is not None:
            shown = host if literal is not None else f"{host} ({address})"
            raise UnsafeTarget(f"{shown} is {why}")
    return addresses


async def check_url(url: str, *, allow_private: bool) -> None:
    """Item 5: refuse an endpoint URL that may not be called (422 `unsafe-webhook-target`)."""
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeTarget("The URL must use https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("The URL may not carry credentials")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("The URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget("The URL's port is not valid") from exc
    if not allow_private:
        await public_addresses(host, port)
