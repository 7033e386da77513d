"""Upgrade checks: ``POST /api/upgrade-check`` + ``GET /api/upgrade-check/{hash}`` (the 2017 API) and
``POST /api/v1/upgrade-check`` + ``GET /api/v1/upgrade-check/{hash}``.

Both flavours run :func:`asud.upgrades.check.check_upgrade` and store the answer in Redis under the same
request hash (``AsudApp.upgrade_checks``, an ``UpgradeCheckStore``), so any daemon can answer the GET,
and either flavour's GET reads what the other stored. The 2017 answers keep that API's shapes (errors
``{"error", "detail"}`` through :func:`asud.http.legacy.legacy_error`, ``X-Missing-Param``, 422 +
``X-Unknown-Package``, and "up to date" as 204 whose hash travels in ``X-Request-Hash``). The v1 answers use
the v1 error shape and say "up to date" with 200 ``"upgrade": false``, so a JSON client never has to
special-case an empty body.

The offered version follows ``[upgrade_policy]`` of the configuration.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.web.iweb import IRequest

from asud.build.fields import decode_json_body
from asud.errors import AsudError, NotFound, Unavailable
from asud.http.errors import json_app
from asud.http.legacy import legacy_error, read_json_body
from asud.http.responses import json_answer
from asud.http.shield import shielded
from asud.http.state import AsudApp
from asud.upgrades.check import UpgradeCheck, check_upgrade
from asud.upgrades.policy import UpgradePolicy
from asud.upgrades.request import UpgradeCheckRequest, parse_legacy_request, parse_v1_request

__all__ = ["UpgradeApi", "legacy_answer", "v1_answer"]


def legacy_answer(request: IRequest, request_hash: str, check: UpgradeCheck | None) -> bytes:
    """The 2017 answer: 204 + ``X-Request-Hash`` when up to date, else 200 with the offer."""
    if check is None:
        request.setResponseCode(204)
        request.setHeader(b"X-Request-Hash", request_hash.encode("ascii"))
        return b""
    body: dict[str, Any] = {}
    if check.version is not None:
        body["version"] = check.version
    body["upgrades"] = {name: list(pair) for name, pair in check.upgrades.items()}
    body["packages"] = check.packages
    if check.unavailable:
        body["unavailable"] = check.unavailable
    body["request_hash"] = request_hash
    return json_answer(request, body)


def v1_answer(request_hash: str, check: UpgradeCheck | None) -> dict[str, Any]:
    """The v1 answer body: always 200, ``upgrade`` says whether anything is newer."""
    if check is None:
        return {"status": 200, "upgrade": False, "request_hash": request_hash}
    body: dict[str, Any] = {"status": 200, "upgrade": True, "request_hash": request_hash}
    if check.version is not None:
        body["version"] = check.version
    body["version_code"] = check.version_code
    body["upgrades"] = {name: {"from": old, "to": new} for name, (new, old) in check.upgrades.items()}
    body["packages"] = check.packages
    body["package_changes"] = [change.to_json() for change in check.package_changes]
    body["unavailable"] = check.unavailable
    return body


class UpgradeApi:
    """The four upgrade-check routes. The app's handlers answer in the v1 shape; the 2017 routes catch
    ``AsudError`` themselves and answer in theirs."""

    app = json_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state
        self.policy = UpgradePolicy(**attrs.asdict(state.config.upgrade_policy))

    def resource(self) -> Any:
        return self.app.resource()

    def _store(self) -> Any:
        if self.state.upgrade_checks is None:
            raise Unavailable("Stored upgrade checks are not available, retry later")
        return self.state.upgrade_checks

    async def _run(self, check_request: UpgradeCheckRequest) -> UpgradeCheck | None:
        """Check against the catalog and store the answer under the request hash."""
        catalog = self.state.current_catalog()
        store = self._store()
        check = await shielded(check_upgrade(
            catalog,
            distro=check_request.distro,
            version=check_request.version,
            target=check_request.target,
            packages=check_request.packages,
            revision=check_request.revision,
            policy=self.policy,
        ))
        await shielded(store.save(check_request, check))
        return check

    # -- the 2017 API -------------------------------------------------------------------------------------
    @app.route("/api/upgrade-check", methods=["POST"])
    async def post_legacy(self, request: IRequest) -> bytes:
        """200 with the offer; 204 (+ ``X-Request-Hash``) when up to date; 400 + ``X-Missing-Param``; 422 +
        ``X-Unknown-Package`` for packages the installed version does not know (``kernel``, ``libc``,
        ``base-files`` excepted)."""
        config = self.state.config
        try:
            body = read_json_body(request)
            check_request = parse_legacy_request(body, config.distros, config.default_distro)
            check = await self._run(check_request)
        except AsudError as error:
            return legacy_error(request, error)
        return legacy_answer(request, check_request.request_hash, check)

    @app.route("/api/upgrade-check/<string:request_hash>", methods=["GET"])
    async def get_legacy(self, request: IRequest, request_hash: str) -> bytes:
        """The answer stored by the POST, by full hash or an unambiguous 12/15-character prefix."""
        try:
            stored = await shielded(self._store().load(request_hash))
            if stored is None:
                raise NotFound(f"Unknown request hash: {request_hash}")
        except AsudError as error:
            return legacy_error(request, error)
        return legacy_answer(request, stored.request_hash, stored.check)

    # -- v1 -------------------------------------------------------------------------------------------------
    @app.route("/api/v1/upgrade-check", methods=["POST"])
    async def post_v1(self, request: IRequest) -> bytes:
        """Always 200 on success: ``upgrade: true`` with ``version`` (when newer), ``upgrades``
        (``{name: {from, to}}``), ``packages`` (after ``package_changes``) and ``unavailable``;
        ``upgrade: false`` when up to date. 400 for an unknown version, target or package."""
        config = self.state.config
        body = decode_json_body(request.content.read())
        check_request = parse_v1_request(body, config.distros, config.default_distro)
        check = await self._run(check_request)
        return json_answer(request, v1_answer(check_request.request_hash, check))

    @app.route("/api/v1/upgrade-check/<string:request_hash>", methods=["GET"])
    async def get_v1(self, request: IRequest, request_hash: str) -> bytes:
        """The answer stored by the POST (full hash or an unambiguous prefix of at least 12 characters)."""
        stored = await shielded(self._store().load(request_hash))
        if stored is None:
            raise NotFound(f"Unknown request hash: {request_hash}")
        return json_answer(request, v1_answer(stored.request_hash, stored.check))

