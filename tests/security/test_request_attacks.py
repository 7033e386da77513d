"""Hostile build requests are refused at POST time with a 4xx and a string ``detail``: never queued, no 5xx.

The attacks of openwrt/asu ``tests/test_security.py`` (newline in repository names, spaces, slashes, empty
names, non-HTTP schemes) and more: option and newline injection through every field that reaches a command
line or a config file, allow-list bypasses, oversize bodies, huge package lists and deeply nested JSON.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet.defer import Deferred, succeed
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from tests.http.client import Answer
from tests.security.asud_target import ALLOWED_REPOSITORY, Target, asud_target, demo_tree, flush_stats

__all__ = ["asud_target", "demo_tree", "flush_stats"]

_SIZES = itertools.count(700)

REFUSED = {400, 413, 422}


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": [],
                              "rootfs_size_mb": next(_SIZES), "client": "attack-tests/1"}
    values.update(overrides)
    return values


def assert_refused(response: Answer) -> str:
    assert response.status_code in REFUSED, (response.status_code, response.text[:300])
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return str(detail)


async def post(target: Target, payload: Any) -> Answer:
    return await target.server.client.post("/api/v1/build", content=json.dumps(payload).encode(),
                                           headers={"Content-Type": "application/json"})


async def post_raw(target: Target, path: str, content: bytes | IBodyProducer) -> Answer:
    client = target.server.client.client
    response = await client.request("POST", (target.server.url + path).encode(), data=content,
                                    headers={"Content-Type": "application/json"})
    return Answer(response.code, {}, await treq.content(response))


@implementer(IBodyProducer)
class Chunks:
    """A body of unknown length (sent chunked), as a client streaming a huge upload would."""

    length = UNKNOWN_LENGTH

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk = chunk
        self.count = count

    def startProducing(self, consumer: Any) -> Deferred[None]:
        for _ in range(self.count):
            consumer.write(self.chunk)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


REPOSITORY_NAMES = [
    "evil\nsrc/gz pwned http://x.com",  # asu: newline injects a feed line
    "legit\r\nsrc/gz pwned http://evil.com",
    "name with spaces",
    "src/gz",
    "",
    "-o",
    "--allow-untrusted",
    "../../etc",
    "name\x00nul",
    "naïve",
    "a" * 300,
]


@pytest.mark.parametrize("name", REPOSITORY_NAMES)
@pytest_twisted.ensureDeferred
async def test_repository_names(asud_target: Target, name: str) -> None:
    assert_refused(await post(asud_target, body(repositories={name: f"{ALLOWED_REPOSITORY}/x"})))


REPOSITORY_URLS = [
    "ftp://repo.example.org/openwrt/x",  # asu: non-HTTP scheme
    "repo.example.org/openwrt/x",  # asu: no scheme
    "http://repo.example.org/openwrt/x",  # scheme change (allow-list says https)
    "file:///etc/passwd",
    "https://repo.example.org@evil.example/openwrt/x",  # userinfo: the host is evil.example
    "https://evil.example@repo.example.org/openwrt/x",  # userinfo at all
    "https://repo.example.org.evil.example/openwrt/x",  # look-alike host (suffix)
    "https://repo-example.org/openwrt/x",
    "https://xrepo.example.org/openwrt/x",
    "https://repo.example.org:8443/openwrt/x",  # another port
    "https://repo.example.org/openwrt-evil/x",  # path prefix without a segment boundary
    "https://repo.example.org/openwrtx",
    "https://repo.example.org/openwrt/../evil",
    "https://repo.example.org/openwrt/%2e%2e/evil",  # encoded ..
    "https://repo.example.org/openwrt/%252e%252e/evil",  # double-encoded
    "https://repo.example.org/openwrt/x/%2F..%2F..%2Fevil",
    "https://repo.example.org\\@evil.example/openwrt/x",
    "https://repo.example.org/openwrt/x?next=https://evil.example",
    "https://repo.example.org/openwrt/x#frag",
    "https://repo.example.org/openwrt/x\nsrc/gz pwned http://evil.example",
    "https://repo.example.org/openwrt/x pwned",
    "https://repo.ex\u0430mple.org/openwrt/x",  # Cyrillic a (U+0430): a homograph host
    "https://[::1]/openwrt/x",
    "https://127.0.0.1/openwrt/x",
    "-o/openwrt/x",
    "",
]


@pytest.mark.parametrize("url", REPOSITORY_URLS)
@pytest_twisted.ensureDeferred
async def test_repository_urls_outside_the_allow_list(asud_target: Target, url: str) -> None:
    assert_refused(await post(asud_target, body(repositories={"extra": url})))


@pytest_twisted.ensureDeferred
async def test_allowed_repository_is_accepted(asud_target: Target) -> None:
    response = await post(asud_target, body(repositories={"extra": f"{ALLOWED_REPOSITORY}/packages/x86_64"}))
    assert response.status_code == 202, response.text


REPOSITORY_KEYS = [
    "untrusted comment: x\nRWQ../../../../etc/passwd",
    "RWSomething\nsrc/gz pwned http://evil.example",
    "-----BEGIN PUBLIC KEY-----\n$(reboot)\n-----END PUBLIC KEY-----",
    "--allow-untrusted",
    "\x1b[2J",
    "k" * 5000,
]


@pytest.mark.parametrize("key", REPOSITORY_KEYS)
@pytest_twisted.ensureDeferred
async def test_repository_keys(asud_target: Target, key: str) -> None:
    assert_refused(await post(asud_target, body(repository_keys=[key])))


FIELD_ATTACKS = [
    {"profile": "generic; reboot"},
    {"profile": "$(reboot)"},
    {"profile": "generic\nPROFILE=evil"},
    {"profile": "--help"},
    {"profile": "../../../etc/passwd"},
    {"target": "x86/64 V=s"},
    {"target": "../../etc"},
    {"target": "x86/64/../../.."},
    {"version": "24.10.4; reboot"},
    {"version": "../../../../etc"},
    {"version": "24.10.4\n"},
    {"packages": ["--force-depends"]},
    {"packages": ["luci; reboot"]},
    {"packages": ["luci\nPACKAGES=evil"]},
    {"packages": ["$(reboot)"]},
    {"packages": ["../../../bin/sh"]},
    {"packages": ["FILES=/etc"]},
    {"packages": ["V=s"]},
    {"packages": ["a b"]},
    {"packages_versions": {"luci": "1.0; reboot"}},
    {"packages_versions": {"luci\n": "1.0"}},
    {"filesystem": "squashfs; reboot"},
    {"rootfs_size_mb": -1},
    {"rootfs_size_mb": 10**9},
    {"rootfs_size_mb": "100; reboot"},
    {"distro": "../openwrt"},
    {"repositories_mode": "replace; reboot"},
    {"defaults": "x" * 30_000},  # over max_defaults_length
]


@pytest.mark.parametrize("overrides", FIELD_ATTACKS, ids=lambda item: repr(item)[:40])
@pytest_twisted.ensureDeferred
async def test_injection_through_fields(asud_target: Target, overrides: dict[str, Any]) -> None:
    assert_refused(await post(asud_target, body(**overrides)))


@pytest_twisted.ensureDeferred
async def test_huge_package_list(asud_target: Target) -> None:
    assert_refused(await post(asud_target, body(packages=[f"pkg{index}" for index in range(20_000)])))
    assert_refused(await post(asud_target, body(packages=[f"luci-app-{index}" for index in range(501)])))


@pytest_twisted.ensureDeferred
async def test_huge_body_is_refused_before_parsing(asud_target: Target) -> None:
    huge = b'{"version": "24.10.4", "packages": ["' + b"a" * (8 * 1024 * 1024) + b'"]}'
    response = await post_raw(asud_target, "/api/v1/build", huge)
    assert response.status_code == 413
    assert response.json()["status"] == 413
    # No Content-Length: counted while it arrives.
    chunked = await post_raw(asud_target, "/api/v1/build", Chunks(b" " * 65536, 64))
    assert chunked.status_code in {400, 413}
    legacy = await post_raw(asud_target, "/api/upgrade-request", Chunks(b" " * 65536, 64))
    assert legacy.status_code in {400, 413}


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
@pytest_twisted.ensureDeferred
async def test_deeply_nested_json(asud_target: Target, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    for field in ("packages", "repositories", "client"):
        text = f'{{"version": "24.10.4", "target": "x86/64", "profile": "generic", "{field}": {nested}}}'
        response = await post_raw(asud_target, "/api/v1/build", text.encode())
        assert response.status_code in REFUSED, (field, depth, response.status_code)
    legacy = await post_raw(asud_target, "/api/upgrade-request", nested.encode())
    assert legacy.status_code in REFUSED


@pytest.mark.parametrize("payload", [None, [], "string", 7, {"packages": {"a": 1}}, {"version": None}])
@pytest_twisted.ensureDeferred
async def test_wrong_shapes(asud_target: Target, payload: Any) -> None:
    assert_refused(await post(asud_target, payload))
