"""``POST /api/v1/build`` and ``GET``/``HEAD /api/v1/build/{request_hash}``.

The POST validates against the catalog and enqueues; it never builds inline (auc gives up after 15 s), and a
request whose image is already built is answered 200 at once. The GET of a finished build is the hot path:
its rendered answer is kept in memory (:attr:`AsudApp.finished`) and answered by ``asud.http.fastpath``
without Klein or Redis; so is a POST repeating a request answered 200 moments ago (the cache hit).

A client that hangs up never cuts a submission short: Klein cancels the route, but the submission and its
statistics run on under a shield (``asud.http.shield``) — the build's life is the records', not the
request's.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.web.iweb import IRequest

from asud.build.fields import InvalidRequest
from asud.build.request import BuildRequest, parse_build_request_json
from asud.build.stages import BuildStatus
from asud.http.build_answers import NOT_FOUND_BODY, RenderedBuild, expires_in, render_build
from asud.http.errors import json_app
from asud.http.rate_limit import client_name, limit_build_rate
from asud.http.responses import json_answer, json_bytes
from asud.http.shield import shielded
from asud.http.state import AsudApp

__all__ = ["Accepted", "BuildApi", "answer_cache_hit", "replay_key_of"]

#: What a request hash can look like; anything else is answered 404 without asking Redis.
_HASH = re.compile(r"[0-9A-Za-z_-]{1,128}")


@attrs.frozen
class Accepted:
    """What a cache-hit POST needs besides the finished answer: its hash and its statistics fields."""

    request_hash: str
    stats: dict[str, Any]


def replay_key_of(build_request: BuildRequest) -> str:
    """Requests equal but for ``client`` share their answer."""
    echo = build_request.to_json()
    echo.pop("client", None)
    return json_bytes(echo).decode("utf-8")


def _stats_client(client: str, user_agent: str | None) -> str:
    return (user_agent or client) if client == "unknown" else client


def _user_agent(request: IRequest) -> str | None:
    value = request.getHeader(b"user-agent")
    return value.decode("latin-1") if value else None


def remember(state: AsudApp, view: Any, rendered: RenderedBuild) -> None:
    """Keep a finished answer in memory, never past the moment its result expires."""
    state.finished.put(view.request_hash, rendered, max_age=expires_in(view, state.clock.seconds()))


def cached_answer(state: AsudApp, build_request: BuildRequest, replay_key: str,
                  user_agent: str | None) -> RenderedBuild | None:
    """The finished answer of a request answered 200 less than ``FINISHED_CACHE_SECONDS`` ago, counted in
    the statistics (not waited for); ``None`` when it must go the full way."""
    accepted: Accepted | None = state.accepted.get(replay_key)
    rendered = state.finished.get(accepted.request_hash) if accepted is not None else None
    if accepted is None or rendered is None:
        return None
    if state.stats is not None:
        client = client_name(build_request.client, user_agent)
        state.stats.record_request(
            api="v1", client=_stats_client(client, user_agent), request_hash=accepted.request_hash,
            cache_hit=True, **accepted.stats,
        )
    return rendered  # type: ignore[no-any-return]


def answer_cache_hit(state: AsudApp, body: bytes, user_agent: str | None) -> RenderedBuild | None:
    """For the fast path: :func:`cached_answer` of a raw POST body; ``None`` for anything but a hit."""
    if not state.accepted:
        return None
    try:
        build_request = parse_build_request_json(body)
    except InvalidRequest:
        return None
    return cached_answer(state, build_request, replay_key_of(build_request), user_agent)


def _as_answer(request: IRequest, rendered: RenderedBuild) -> bytes:
    return json_answer(request, rendered.body, rendered.status_code, rendered.headers)


class BuildApi:
    """The v1 build surface."""

    app = json_app()

    def __init__(self, state: AsudApp) -> None:
        from asud.http.build_log import BuildLogs

        self.state = state
        self.logs = BuildLogs(state)

    def resource(self) -> object:
        return self.app.resource()

    @app.route("/api/v1/build", methods=["POST"])
    def post_build(self, request: IRequest) -> Deferred[bytes]:
        """Ask for an image: 200 when it is built already, 202 while it is queued or building, 4xx at once
        when it cannot be built (unknown version, target, profile or package), 429 when this client sent too
        many build requests or has too many builds queued, 529 when the queue is full."""
        return ensureDeferred(self._post(request))

    async def _post(self, request: IRequest) -> bytes:
        state = self.state
        identity = await limit_build_rate(state, request)  # before the body, as every POST counts
        build_request = parse_build_request_json(request.content.read())  # InvalidRequest → 400
        user_agent = _user_agent(request)
        replay_key = replay_key_of(build_request)
        rendered = cached_answer(state, build_request, replay_key, user_agent)
        if rendered is not None:
            return _as_answer(request, rendered)
        client = client_name(build_request.client, user_agent)
        if build_request.client != client:
            build_request = attrs.evolve(build_request, client=client)
        stats_client = _stats_client(client, user_agent)
        # Validation and submission are one chain: once a request is read, its build is asked for even if
        # the client hangs up (LuCI will poll for it), and a submission is never cut in half.
        work = self._validate(build_request).addCallback(self._submit, identity, stats_client, replay_key)
        return _as_answer(request, await shielded(work))

    def _validate(self, build_request: BuildRequest) -> Deferred[Any]:
        """Validate against the current catalog; a selection resolved before against that catalog (a
        refused one sent again, a queued one polled) is answered from its cache, without a thread."""
        from asud.build.resolutions import resolutions_of
        from asud.build.validate import validate_request

        catalog = self.state.current_catalog()
        return validate_request(build_request, catalog, self._limits(), resolutions_of(catalog))

    def _limits(self) -> Any:
        if self.state.limits is None:
            from asud.build.validate import RequestLimits

            self.state.limits = RequestLimits.from_config(self.state.config)
        return self.state.limits

    def _submit(
        self, validated: Any, identity: str, stats_client: str, replay_key: str
    ) -> Deferred[RenderedBuild]:
        """Submit, count, render and remember: one chain that finishes even if the client left."""
        state = self.state

        def submitted(view: Any) -> RenderedBuild:
            done = BuildStatus(view.status) is BuildStatus.DONE
            if state.stats is not None:  # statistics never fail and are not waited for
                state.stats.record_validated(validated, api="v1", client=stats_client, cache_hit=done)
            rendered = render_build(view)
            if done:
                remember(state, view, rendered)
                request = validated.request
                state.accepted.put(replay_key, Accepted(validated.request_hash, {
                    "distro": request.distro, "version": request.version, "target": request.target,
                    "profile": validated.profile, "packages": tuple(request.packages),
                    "has_defaults": validated.has_defaults,
                }))
            else:
                state.finished.discard(view.request_hash)
            return rendered

        return state.build_records().submit(validated, client=identity).addCallback(submitted)

    @app.route("/api/v1/build/<string:request_hash>", methods=["GET", "HEAD"])
    def get_build(self, request: IRequest, request_hash: str) -> bytes | Deferred[bytes]:
        """The state of a build; ``HEAD`` answers the same status and ``X-Imagebuilder-Status`` /
        ``X-Queue-Position`` headers without a body (owut polls that way)."""
        rendered = self.state.finished.get(request_hash)
        if rendered is not None:
            return _as_answer(request, rendered)
        if not _HASH.fullmatch(request_hash):
            return json_answer(request, NOT_FOUND_BODY, 404)
        return ensureDeferred(self._lookup(request, request_hash))

    async def _lookup(self, request: IRequest, request_hash: str) -> bytes:
        state = self.state
        view = await shielded(state.build_records().get(request_hash))
        if view is None:
            return json_answer(request, NOT_FOUND_BODY, 404)
        rendered = render_build(view)
        if BuildStatus(view.status) is BuildStatus.DONE:
            remember(state, view, rendered)
        return _as_answer(request, rendered)

    @app.route("/api/v1/build/<string:request_hash>/log", methods=["GET", "HEAD"])
    def get_build_log(self, request: IRequest, request_hash: str) -> bytes | Deferred[Any]:
        """The build's log: so far (text), followed to its end (``?follow=1``), or as Server-Sent Events
        (``Accept: text/event-stream``, resumable by ``Last-Event-ID``); see ``asud.http.build_log``."""
        if not _HASH.fullmatch(request_hash):
            return json_answer(request, NOT_FOUND_BODY, 404)
        return self.logs.answer(request, request_hash)
