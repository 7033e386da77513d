"""Fixtures: the demo upstream (a child process serving the generated tree)."""

from tests.support.upstream import demo_tree, demo_upstream_url

__all__ = ["demo_tree", "demo_upstream_url"]
