"""A client is its address (``X-Forwarded-For`` only from a proxy on this host), IPv6 by /64."""

from __future__ import annotations

import pytest
import pytest_twisted

from asud.http.rate_limit import client_name
from asud.http.state import AsudApp
from tests.http.client import StubClient
from tests.http.surfaces import hello_root


@pytest.mark.parametrize(
    ("forwarded", "identity"),
    [
        (None, "ip:127.0.0.1"),
        ("203.0.113.7", "ip:203.0.113.7"),
        ("198.51.100.1, 203.0.113.7", "ip:203.0.113.7"),  # the hop our proxy added
        ("203.0.113.7, 127.0.0.1", "ip:203.0.113.7"),
        ("2001:db8:1:2::ffff", "ip:2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "ip:192.0.2.1"),
        ("not-an-address", "ip:not-an-address"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_identity_from_a_local_proxy(bare_app: AsudApp, forwarded: str | None, identity: str) -> None:
    client = StubClient(hello_root(bare_app))  # StubTreq's peer is 127.0.0.1: a trusted proxy
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert (await client.get("/api/whoami", headers=headers)).text == identity


def test_client_name_comes_from_the_body_or_auc_user_agent() -> None:
    assert client_name("luci/1", "Mozilla") == "luci/1"
    assert client_name(None, "auc/0.3.2-1") == "auc/0.3.2-1"
    assert client_name(None, "curl/8") == "unknown"
