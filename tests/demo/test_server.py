"""The static server of a generated tree: conditional requests, dot files, and the background runner."""

from __future__ import annotations

from pathlib import Path

import httpx

from sysup.demo_upstream.server import running_upstream
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url  # noqa: F401  (session fixtures)


def test_serves_dot_files_with_validators(demo_upstream_url: str) -> None:  # noqa: F811
    response = httpx.get(f"{demo_upstream_url}/.versions.json")
    assert response.status_code == 200
    assert response.json()["stable_version"] == "25.12.1"
    assert response.headers["etag"] and response.headers["last-modified"]


def test_conditional_requests_answer_304(demo_upstream_url: str) -> None:  # noqa: F811
    url = f"{demo_upstream_url}/releases/24.10.4/targets/x86/64/sha256sums.sig"
    first = httpx.get(url)
    assert first.status_code == 200
    by_etag = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert by_etag.status_code == 304 and by_etag.content == b""
    by_date = httpx.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert by_date.status_code == 304
    changed = httpx.get(url, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == first.content


def test_missing_file_is_404(demo_upstream_url: str) -> None:  # noqa: F811
    assert httpx.get(f"{demo_upstream_url}/releases/99.99.0/.targets.json").status_code == 404


def test_imagebuilders_point_at_the_served_url(demo_tree: DemoTree) -> None:  # noqa: F811
    info, url = demo_tree
    assert info.base_url == url
    response = httpx.get(f"{url}/releases/25.12.1/targets/x86/64/sha256sums")
    assert response.status_code == 200 and "openwrt-imagebuilder-25.12.1-x86-64" in response.text


def test_running_upstream_picks_a_free_port_and_stops(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello\n")
    with running_upstream(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert httpx.get(f"{url}/hello.txt").text == "hello\n"
    try:
        httpx.get(f"{url}/hello.txt", timeout=1)
    except httpx.TransportError:
        return
    raise AssertionError("server still answering after the context manager exited")
