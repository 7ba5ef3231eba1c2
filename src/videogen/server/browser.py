"""Defences against web pages: a Host check against DNS rebinding, and no cross-site writes.

DNS rebinding: a page on attacker.example points its name at 127.0.0.1 and then reads this server as
if it were its own site; the browser still sends ``Host: attacker.example``. So a server accepts only
Host names that a hostile page cannot own:

- ``localhost`` and loopback addresses (127.0.0.1, [::1]), with any port, always;
- when it listens on a non-loopback address, also any IP address: a page whose origin is an IP
  address is the server itself, so rebinding needs a DNS name, and DNS names need the next rule;
- the names given to ``--allowed-hosts`` (``*`` accepts any Host).

Cross-site writes: a page elsewhere can make a browser POST here (a form, a no-CORS fetch) although
it cannot read the answer. POST, PUT, PATCH and DELETE (and WebSocket handshakes) whose ``Origin`` is
not the server's own, or that say ``Sec-Fetch-Site: cross-site``, are refused with 403, API key or
not. Requests without these headers do not come from a browser page (curl, scripts) and pass.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from videogen.errors import UserError
from videogen.server.errors import error_response
from videogen.server.settings import Settings

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def host_name(host: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8000`` -> ``::1``, ``Box:80`` -> ``box``."""
    host = host.strip().lower()
    if host.startswith("[") and "]" in host:
        return host[1 : host.index("]")]
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else host


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _is_loopback(name: str) -> bool:
    address = _ip(name)
    return name == "localhost" or (address is not None and address.is_loopback)


@dataclass(frozen=True)
class HostRule:
    """Which Host headers a server answers (see the module's docstring)."""

    names: frozenset[str]
    any_address: bool
    any_host: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> HostRule | None:
        """The rule for a server listening on ``settings.host``; None for one built in-process."""
        if settings.host is None:
            return None
        names = {host_name(part) for entry in settings.allowed_hosts for part in entry.split(",")}
        names.discard("")
        for name in names - {"*"}:
            if not (_NAME.fullmatch(name) or _ip(name)):
                raise UserError(
                    f"allowed_hosts: {name!r} is not a host name; give names such as example.com or "
                    "192.168.1.5, or * for any"
                )
        listens = host_name(settings.host)
        if not _is_loopback(listens) and _ip(listens) is None:
            names.add(listens)  # --host my-box: its own name
        return cls(frozenset(names), any_address=not _is_loopback(listens), any_host="*" in names)

    def allows(self, host: str | None) -> bool:
        """A request without a Host header (HTTP/1.0) is not a browser's, so it passes."""
        if host is None or self.any_host:
            return True
        name = host_name(host)
        address = _ip(name)
        return _is_loopback(name) or name in self.names or (self.any_address and address is not None)


def same_origin(origin: str, host: str | None) -> bool:
    """``Origin: http://127.0.0.1:8000`` is this server's when the request's Host is ``127.0.0.1:8000``."""
    try:
        authority = urlsplit(origin).netloc
    except ValueError:  # an unbalanced [ in the header
        return False
    return host is not None and authority != "" and authority.lower() == host.strip().lower()


class BrowserSafety:
    """ASGI middleware in front of everything: the Host check, then the cross-site write check."""

    def __init__(self, app: ASGIApp, hosts: HostRule | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self.refusal(scope)
            if refusal is not None:
                status, message, field = refusal
                await error_response(status, message, field)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, message, header at fault) for a request this server does not answer."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        if self.hosts is not None and not self.hosts.allows(host):
            return (
                421,
                f"Host: {host!r} is not a name of this server, which answers localhost and its "
                f"addresses; to accept it, start the server with --allowed-hosts {host_name(host or '')}",
                "Host",
            )
        if scope["type"] == "http" and scope["method"] not in STATE_CHANGING:
            return None
        if headers.get("sec-fetch-site") == "cross-site":
            return 403, "cross-site request refused: Sec-Fetch-Site: cross-site", "Sec-Fetch-Site"
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, host):
            return (
                403,
                f"cross-site request refused: Origin {origin!r} is not this server's (Host {host!r})",
                "Origin",
            )
        return None
