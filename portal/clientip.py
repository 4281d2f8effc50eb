"""Client IP addresses as the portal compares and keys them: one form per address.

A socket listening on `::` with dual stack (a socket handed to the server by gunicorn, systemd
or another ASGI server; `jourpost serve` itself binds IPv6-only there, as asyncio does) sees an
IPv4 peer as the IPv4-mapped IPv6 address `::ffff:a.b.c.d`, and a proxy listening so writes
that form into X-Forwarded-For. It is the same IPv4 client: it must match the IPv4 entries of
`JOURPOST_TRUSTED_PROXIES` (portal.web.forwarded) and be counted by the login-start limit as
that IPv4 address (portal.account.service), not as a member of the IPv6 /64 `::/64` that holds
every mapped address (and `::1`) alike. So a mapped address is taken as its IPv4 address, and a
network inside `::ffff:0:0/96` as the IPv4 network it maps (`::ffff:10.0.0.0/120` is
10.0.0.0/24). Other IPv6 addresses stay IPv6: a native IPv6 network never matches an IPv4
client, even one that contains the mapped range (`::/0`: list 0.0.0.0/0 to mean IPv4 as well).
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def canonical_address(text: str) -> IPAddress | None:
    """The address `text` names, an IPv4-mapped IPv6 address as its IPv4 address; None when
    `text` is not an IP address (a host name, a unix socket, garbage in a header)."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def canonical_network(entry: str) -> IPNetwork:
    """The network an address or CIDR `entry` names (an address is a one-address network),
    a network inside the IPv4-mapped range as the IPv4 network; ValueError when `entry` is
    neither (host bits set count as neither)."""
    net = ipaddress.ip_network(entry.strip())
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
        mapped = net.network_address.ipv4_mapped
        assert mapped is not None  # inside ::ffff:0:0/96
        return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


def canonical_entry(entry: str) -> str:
    """`entry` (an address or a CIDR network) written in its canonical form: an address as an
    address (`::ffff:10.0.0.5` is `10.0.0.5`), a network as a network; ValueError when it is
    neither."""
    net = canonical_network(entry)
    if "/" not in entry:
        return str(net.network_address)
    return str(net)
