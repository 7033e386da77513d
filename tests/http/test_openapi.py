"""``/openapi.json`` is held against the route map, both ways: every routed operation is documented (except
the explorer, old redirects and the web pages), and every documented operation is routed."""

from __future__ import annotations

import re
from typing import Any

from klein.resource import KleinResource

from asud.http.openapi import documented_operations, is_undocumented, template_of
from asud.http.root import MOUNTS, Root, make_resource
from asud.http.state import AsudApp
from tests.support.requirements import require

_PARAMETER = re.compile(r"{(\w+)}")
_SAMPLES = {"path": "releases/24.10.4", "request_hash": "0" * 64, "bin_dir": "0" * 64}


def _routes(root: Root) -> set[tuple[str, str]]:
    """``(METHOD, template)`` of every rule of every loaded surface (HEAD only where asked for)."""
    routes = set()
    for _, resource in root.surfaces:
        assert isinstance(resource, KleinResource)
        for rule in resource._app.url_map.iter_rules():
            template = template_of(rule.rule)
            for method in rule.methods or ():
                if method == "OPTIONS":
                    continue
                routes.add((method, template))
    return routes


def _shape(template: str) -> str:
    """The template with its parameters unnamed (``/api/manifest/{}``)."""
    return _PARAMETER.sub("{}", template)


def _sample(template: str) -> str:
    return _PARAMETER.sub(lambda match: _SAMPLES.get(match.group(1), "x"), template)


def _routed(root: Root, method: str, template: str) -> str | None:
    """The rule template that answers ``method template`` (with sample values), or ``None``."""
    path = _sample(template)
    for mount, resource in root.surfaces:
        if not mount.matches(path):
            continue
        assert isinstance(resource, KleinResource)
        try:
            rule, _ = resource._app.url_map.bind("asud.test").match(path, method=method, return_rule=True)
        except Exception:
            return None
        return template_of(rule.rule)
    return None


def test_every_routed_operation_is_documented(bare_app: AsudApp) -> None:
    root = make_resource(bare_app)
    assert isinstance(root, Root)
    documented = documented_operations()
    documented_shapes = {(method, _shape(template)) for method, template in documented}
    missing = sorted(
        (method, template) for method, template in _routes(root)
        if not is_undocumented(template) and method != "HEAD"
        and (method, _shape(template)) not in documented_shapes
    )
    assert not missing, f"routed but not in openapi.json: {missing}"
    heads = sorted(op for op in documented if op[0] == "HEAD")
    assert heads == [("HEAD", "/api/v1/build/{request_hash}"), ("HEAD", "/store/{bin_dir}/{name}")]


def test_every_documented_operation_is_routed(bare_app: AsudApp) -> None:
    root = make_resource(bare_app)
    assert isinstance(root, Root)
    loaded = {(mount.module, mount.name) for mount, _ in root.surfaces}
    unrouted: list[Any] = []
    absent: list[Any] = []
    for method, template in sorted(documented_operations()):
        answered_by = _routed(root, method, template)
        if answered_by is not None and _shape(answered_by) == _shape(template):
            continue
        by_length = sorted(MOUNTS, key=lambda mount: -len(mount.prefix))
        owner = next((mount for mount in by_length if mount.matches(_sample(template))), None)
        if owner is not None and (owner.module, owner.name) not in loaded:
            absent.append((method, template, owner.module))
        else:
            unrouted.append((method, template, answered_by))
    assert not unrouted, f"in openapi.json but not routed: {unrouted}"
    require(not absent, f"surfaces not written yet: {sorted({entry[2] for entry in absent})}")
