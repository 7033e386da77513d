"""Who a client is, and the per-client limit on build POSTs (v1 and 2017 API alike): the HTTP side of
rate limiting (the counters are ``asud.store.rate_limit``'s, reached through ``AsudApp.rate_limits``).

A client is its **network address** (``ip:<IPv4>`` or ``ip:<IPv6 /64>``): the peer's, or, when the peer is
a reverse proxy on this host (loopback), the last address it added to ``X-Forwarded-For`` (what uvicorn
did for sysup with its default ``--forwarded-allow-ips``). Not the ``client`` field or the User-Agent:
those are chosen by the sender (one host could rotate them to escape any limit) and shared by every router
of a kind (every LuCI says ``luci/<version>``), so a limit by name would throttle strangers together. The
same identity bounds the builds one client may have queued at once (``BuildRecords.submit``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet.defer import maybeDeferred
from twisted.web.iweb import IRequest

from asud.errors import RateLimited
from asud.http.shield import shielded
from asud.http.state import AsudApp

__all__ = ["TRUSTED_PROXIES", "client_identity", "client_name", "limit_build_rate", "peer_host"]

#: Peers whose ``X-Forwarded-For`` is believed (a proxy on this host).
TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def peer_host(request: IRequest) -> str:
    """The client's address: the peer, or the proxy's ``X-Forwarded-For`` when the peer is loopback."""
    address = request.getClientAddress()
    host = str(getattr(address, "host", "") or "")
    if host not in TRUSTED_PROXIES:
        return host
    forwarded = request.getHeader(b"x-forwarded-for")
    if not forwarded:
        return host
    hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
    for hop in reversed(hops):  # the nearest hop the trusted proxies did not add
        if hop not in TRUSTED_PROXIES:
            return hop
    return hops[0] if hops else host


def client_identity(request: IRequest) -> str:
    """``ip:<address>`` of the client; IPv6 addresses are grouped by /64 (one site, one client)."""
    host = peer_host(request)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:64] or 'unknown'}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


def client_name(client: str | None, user_agent: str | None) -> str:
    """The client named in the body, else auc's User-Agent (auc sends no ``client``), else ``unknown``."""
    if client:
        return client
    if user_agent and user_agent.lower().startswith("auc"):
        return user_agent
    return "unknown"


async def limit_build_rate(state: AsudApp, request: IRequest) -> str:
    """The client's identity, or ``RateLimited`` (429) when it is over ``rate_limit_per_minute``.

    Only accepted POSTs count: a refused one does not extend the wait (LuCI re-POSTs every 5 s while it
    has no 202 and would otherwise never get through). ``state.rate_limits`` is ``None`` when there is no
    limit; its ``hit(identity)`` answers ``None`` (allowed) or the seconds to wait.
    """
    identity = client_identity(request)
    limiter: Any = state.rate_limits
    if limiter is not None:
        wait = await shielded(maybeDeferred(limiter.hit, identity))
        if wait is not None:
            detail = f"too many build requests from this client; retry in {wait} s"
            raise RateLimited(detail, retry_after=wait)
    return identity
