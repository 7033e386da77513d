"""The shared demo upstream (generated once per session) for the end-to-end ImageBuilder tests."""

from tests.support.upstream import demo_tree, demo_upstream_url

__all__ = ["demo_tree", "demo_upstream_url"]
