"""``feeds.conf`` feed names."""

from __future__ import annotations

from asud.upstream.feeds_conf import parse_feeds_conf


def test_feed_names() -> None:
    text = (
        "src-git packages https://git.openwrt.org/feed/packages.git^7ea3a8b\n"
        "src-git luci https://git.openwrt.org/project/luci.git^0a6b1b4\n"
        "# src-git video https://git.openwrt.org/feed/video.git\n"
        "\n"
        "src-link custom /home/me/feed\n"
        "src-git routing https://git.openwrt.org/feed/routing.git^1bd1f3c\n"
    )
    assert parse_feeds_conf(text) == ["packages", "luci", "custom", "routing"]
