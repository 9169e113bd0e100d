"""Addresses of either family, the one way every program reads them.

A host is a name (``localhost``), an IPv4 address (``127.0.0.1``) or an IPv6
address, bare (``::1``) or in brackets (``[::1]``).  :func:`resolve` turns it
into one address and the socket family it needs: IPv4 when the name has an
IPv4 address (``localhost`` stays 127.0.0.1, as it always was here), else
IPv6.  A socket of that family then takes ``(address, port)`` in ``bind``
and ``sendto``; an IPv6 socket's ``recvfrom`` gives back a 4-tuple
``(address, port, flowinfo, scope_id)``, so callers compare and print
addresses through :func:`show`, never by unpacking two items.

A host and a port together are written ``HOST:PORT``, an IPv6 address in
brackets, ``[::1]:41194`` (RFC 3986 §3.2.2): :func:`split_host_port`
refuses a bare IPv6 address there, which would be ambiguous.

Errors are :class:`AddressError` (a ValueError) with a one-line message;
each program turns it into its own usage error (exit 2).
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["AddressError", "bind_address", "family_name", "loopback", "resolve",
           "show", "split_host_port", "unbracket"]

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
ANY = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}  # noqa: S104 - named, not bound here


class AddressError(ValueError):
    """A host that cannot be used: the message says why, in one line."""


def unbracket(host: str) -> str:
    """``[::1]`` -> ``::1``; any other host as it is."""
    if len(host) > 2 and host[0] == "[" and host[-1] == "]":
        return host[1:-1]
    return host


def family_name(family: int) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"


def loopback(family: int) -> str:
    """This machine's loopback address in ``family``."""
    return LOOPBACK[family]


def resolve(host: str, what: str, family: int = socket.AF_UNSPEC) -> tuple[int, str]:
    """(family, address) of ``host``: its IPv4 address if it has one (and
    ``family`` allows it), else its IPv6 address.  ``what`` names the host in
    the error: "cannot resolve {what} 'HOST'" (``the link address``)."""
    name = unbracket(host)
    if not name:
        raise AddressError(f"{what}: an empty host name")
    if name.rstrip(".").lower().rsplit(".", 1)[-1] == "invalid":
        # RFC 6761 §6.4: such a name never resolves, and software may say
        # so without asking a name server (the tests' unresolvable names
        # are of this kind, so that they send nothing off this machine).
        raise AddressError(f"cannot resolve {what} {host!r}: a name under .invalid "
                           f"never resolves (RFC 6761)")
    try:
        infos = socket.getaddrinfo(name, None, family, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        where = "" if family == socket.AF_UNSPEC else f" as an {family_name(family)} address"
        raise AddressError(f"cannot resolve {what} {host!r}{where}: {exc}") from None
    infos = [i for i in infos if i[0] in LOOPBACK]
    if not infos:
        raise AddressError(f"{what} {host!r} has no IPv4 or IPv6 address")
    best = min(infos, key=lambda i: i[0] != socket.AF_INET)
    return best[0], best[4][0]


def bind_address(bind: str | None, family: int, peer: str, what: str,
                 given: str | None = None) -> str:
    """The local address to bind, in the peer's ``family``: ``bind`` (a name
    or address of that family) if given, else the loopback, which is safe
    (nothing from another machine gets in) and all a peer on this machine
    needs; a ``peer`` off the loopback then needs --bind.  ``given``: the
    peer as the user wrote it, for the messages."""
    shown = _shown(given, peer)
    if bind is None:
        if not ipaddress.ip_address(peer).is_loopback:
            raise AddressError(
                f"{what} {shown} is not on this machine's loopback: give --bind ADDRESS, "
                f"this machine's address towards it ({ANY[family]} for every address)")
        return loopback(family)
    try:
        return resolve(bind, "--bind", family)[1]
    except AddressError:
        raise AddressError(
            f"--bind {bind}: not an {family_name(family)} address, as {what} {shown} "
            f"is ({loopback(family)}, or {ANY[family]} for every address)") from None


def _shown(given: str | None, address: str) -> str:
    """A host for a message: as the user wrote it, and the address a name
    stands for (an address literal is shown as written)."""
    if given is None:
        return address
    try:
        ipaddress.ip_address(unbracket(given))
        return given
    except ValueError:
        return f"{given} ({address})"


def show(host: str, port: int | str) -> str:
    """``HOST:PORT`` as a person writes it: ``[::1]:41194``, ``127.0.0.1:41194``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str, what: str) -> tuple[str, str]:
    """``HOST:PORT`` -> (HOST, PORT) as text; an IPv6 address in brackets
    (``[::1]:41194``), the brackets removed."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or not host or not port:
            raise AddressError(f"{what}: expected [ipv6]:port, got {text!r}")
        return host, port
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port:
        raise AddressError(f"{what}: expected host:port, got {text!r}")
    if ":" in host:
        raise AddressError(f"{what}: an IPv6 address takes brackets before its port, "
                           f"[{host}]:{port}, not {text!r}")
    return host, port
