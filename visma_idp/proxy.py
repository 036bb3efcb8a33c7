"""The client's address behind reverse proxies (``TRUSTED_PROXIES``).

Rules:

- Without ``TRUSTED_PROXIES`` (the default) no forwarding header is read:
  the client is the TCP peer.
- Only the header named by ``FORWARDED_HEADER`` is read (``X-Forwarded-For``
  by default, or RFC 7239 ``Forwarded``), never both: a proxy rewrites the
  header it writes and passes the other one along untouched, so a client
  could put any address in that one.
- Addresses and networks: the header is read only when the TCP peer is one
  of them. The chain is walked from the right (the hop nearest to us) and
  every trusted address is skipped; the first address that is not trusted is
  the client. When every hop is trusted, the leftmost one is.
- A number of hops N: every request is taken to come through exactly N
  proxies (the server must be reachable only through them). The client is
  the N-th address from the right; with fewer than N addresses, the peer.
- Whatever is wrong with the header (not an address, ``unknown``, an
  obfuscated name, broken RFC 7239 syntax, more than ``MAX_HOPS`` trusted
  hops) where the client should be: the peer. Never an error.
- The answer is set once, as the WSGI ``REMOTE_ADDR``, by a middleware in
  front of the app, so ``request.remote_addr`` (the audit log, the throttles
  and quotas, the sessions' IP) is the client everywhere. The TCP peer stays
  in ``environ["visma_idp.peer_addr"]``.
- Host, scheme, port and prefix headers (``X-Forwarded-Host``/``-Proto``,
  ``Forwarded: host=``) are never read: every URL comes from the issuer.

Werkzeug's ``ProxyFix`` was not used: it knows only hop counts, reads only
``X-Forwarded-*``, and copies the header's text into ``REMOTE_ADDR`` without
checking that it is an address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Trusted = int | tuple[Network, ...]

MAX_HOPS = 20  # more proxies than this in one chain is a misconfiguration or an attack
PEER_KEY = "visma_idp.peer_addr"
HEADERS = {"x-forwarded-for": "HTTP_X_FORWARDED_FOR", "forwarded": "HTTP_FORWARDED"}


# -- the settings -------------------------------------------------------------------


def parse_trusted_proxies(value: Any) -> Trusted | None:
    """Parse ``TRUSTED_PROXIES``: a number of hops, or addresses/networks.

    Args:
        value: an int, a digit string, a list of strings (TOML) or one string
            of addresses and networks separated by spaces or commas.

    Returns:
        The number of hops, a tuple of networks, or None (trust no header).

    Raises:
        ValueError: naming the entry that is neither.
    """
    if isinstance(value, bool):
        raise ValueError("must be a number of hops or a list of addresses/networks, not true/false")
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        value = int(value)
    if isinstance(value, int):
        if value < 0 or value > MAX_HOPS:
            raise ValueError(f"a number of hops must be between 0 and {MAX_HOPS} at most")
        return value or None
    items = [str(v) for v in value] if isinstance(value, list | tuple) else re.split(r"[\s,]+", str(value).strip())
    networks: list[Network] = []
    for item in filter(None, (i.strip() for i in items)):
        try:
            network = ip_network(item, strict=True)
        except ValueError as exc:
            if "host bits" in str(exc):
                raise ValueError(f"{item} has host bits set (did you mean {ip_network(item, strict=False)}?)") from None
            raise ValueError(f"{item!r} is neither an IP address nor a network like 10.0.0.0/8 "
                             "(or give the whole setting as a number of hops)") from None
        if network.prefixlen == 0:
            raise ValueError(f"{item} trusts every address, so anyone could choose their own: name the proxies")
        if isinstance(network, IPv6Network) and network.prefixlen >= 96 and network[0].ipv4_mapped:
            mapped = network[0].ipv4_mapped
            assert mapped is not None
            network = ip_network(f"{mapped}/{network.prefixlen - 96}")
        networks.append(network)
    return tuple(networks) or None


def parse_forwarded_header(value: Any) -> str:
    """Parse ``FORWARDED_HEADER``; returns the lower-case header name."""
    text = str(value).strip().lower()
    if text not in HEADERS:
        raise ValueError("must be X-Forwarded-For or Forwarded")
    return text


# -- reading one header ---------------------------------------------------------------


def _address(text: str) -> Address | None:
    """An address from one hop: ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``,
    ``[2001:db8::1]`` or ``[2001:db8::1]:80``; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1:] and not re.fullmatch(r":[0-9]{1,5}", text[end + 1:])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text, port = text.split(":")
        if not re.fullmatch(r"[0-9]{1,5}", port):
            return None
    try:
        found = ip_address(text)
    except ValueError:
        return None
    if isinstance(found, IPv6Address):
        if found.scope_id is not None:  # fe80::1%eth0 means something only on the proxy's host
            return None
        if found.ipv4_mapped is not None:
            return found.ipv4_mapped
    return found


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
_PAIR = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*([;,]|$)")


def _forwarded_hops(value: str) -> list[str | None] | None:
    """The ``for=`` node of each element of an RFC 7239 header (None for an
    element without one); None when the header does not parse."""
    hops: list[str | None] = []
    node: str | None = None
    pos = 0
    while pos < len(value):
        match = _PAIR.match(value, pos)
        if match is None:
            return None
        name, raw, separator = match.groups()
        if name.lower() == "for":
            node = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        pos = match.end()
        if separator != ";":
            hops.append(node)
            node = None
            if separator == "," and pos == len(value):
                return None  # a trailing comma
    return hops or None


def _hops(header: str, forwarded: bool) -> list[str | None] | None:
    if forwarded:
        return _forwarded_hops(header)
    hops: list[str | None] = [hop.strip() for hop in header.split(",")]
    return hops


def client_address(*, peer: str | None, header: str | None, trusted: Trusted, forwarded: bool) -> str | None:
    """The client's address for one request.

    Args:
        peer: the TCP peer (the WSGI ``REMOTE_ADDR``).
        header: the value of the configured forwarding header, if any.
        trusted: the parsed ``TRUSTED_PROXIES`` (hops or networks).
        forwarded: True when the header is RFC 7239 ``Forwarded``.

    Returns:
        The client's address in its normal spelling, or ``peer`` unchanged
        when the header may not or cannot be used.
    """
    if not header:
        return peer
    if isinstance(trusted, int):
        hops = _hops(header, forwarded)
        if not hops or len(hops) < trusted:
            return peer
        found = _address(hops[-trusted] or "")
        return str(found) if found is not None else peer
    peer_address = _address(peer or "")
    if peer_address is None or not _within(peer_address, trusted):
        return peer
    hops = _hops(header, forwarded)
    if not hops:
        return peer
    last: Address | None = None
    for hop in reversed(hops[-MAX_HOPS:]):
        found = _address(hop or "")
        if found is None:
            return peer
        if not _within(found, trusted):
            return str(found)
        last = found
    if len(hops) > MAX_HOPS or last is None:
        return peer
    return str(last)


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


# -- the middleware ---------------------------------------------------------------------


def init_app(app: Flask, settings: Mapping[str, Any]) -> None:
    """Put :class:`TrustedProxies` in front of ``app`` when ``TRUSTED_PROXIES`` is set."""
    if settings["TRUSTED_PROXIES"] is not None:
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, trusted=settings["TRUSTED_PROXIES"], header=settings["FORWARDED_HEADER"])


class TrustedProxies:
    """WSGI middleware: ``REMOTE_ADDR`` becomes the client's address (see the module's rules)."""

    def __init__(self, app: Callable[..., Any], *, trusted: Trusted, header: str) -> None:
        self.app = app
        self.trusted = trusted
        self.environ_key = HEADERS[header]
        self.forwarded = header == "forwarded"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR")
        environ[PEER_KEY] = peer
        client = client_address(peer=peer, header=environ.get(self.environ_key), trusted=self.trusted,
                                forwarded=self.forwarded)
        if client is not None:
            environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)
