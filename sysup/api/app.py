"""The FastAPI application: ``create_app(settings)``.

Importing this module opens nothing. The lifespan creates the engine, the catalog, the build service with
its Huey queue, and the store, and keeps them in :class:`~sysup.api.state.ApiState` on ``app.state.api``.
It does **not** migrate the database: ``sysup serve`` migrates before it starts the server, so several API
processes never race to migrate, and tests migrate their database explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from asud.upgrades.policy import UpgradePolicy
from sysup import __version__
from sysup.api import (
    routes_build,
    routes_json,
    routes_legacy,
    routes_legacy_catalog,
    routes_meta,
    routes_stats,
    routes_store,
    routes_upgrade,
)
from sysup.api.body_limit import BodyLimitMiddleware
from sysup.api.cors import CorsMiddleware
from sysup.api.errors import install_error_handlers
from sysup.api.fast_path import FinishedBuildFastPath
from sysup.api.metrics import install_metrics
from sysup.api.openapi_errors import document_errors
from sysup.api.plain_http import StatusInBodyMiddleware
from sysup.api.responses import JsonResponse
from sysup.api.routes_docs import install_docs
from sysup.api.slashes import DoubleSlashMiddleware
from sysup.api.state import ApiState
from sysup.config import Settings, load_settings
from sysup.web.routes import install_web


def open_state(settings: Settings) -> ApiState:
    """Create every resource the routes use (blocking: run it off the event loop)."""
    from asud.store.files import Store
    from sysup.build_requests.validate import RequestLimits
    from sysup.builds.runtime import create_build_queue, create_build_service
    from sysup.catalog.queries import Catalog
    from sysup.database import create_engine_for, session_factory

    engine = create_engine_for(settings.resolved_database_url)
    sessions = session_factory(engine)
    # This process only enqueues; tasks run in a consumer (embedded in ``sysup serve``, or ``sysup worker``).
    queue = create_build_queue(settings, sessions)
    return ApiState(
        settings=settings,
        engine=engine,
        catalog=Catalog(sessions, settings.distros),
        builds=create_build_service(settings, sessions, queue),
        store=Store(settings.store_dir),
        limits=RequestLimits.from_settings(settings),
        huey=queue.huey,
    )


def close_state(state: ApiState) -> None:
    from sysup.stats.buffer import close_buffer

    close_buffer(state.engine)  # statistics of cache-hit POSTs not written yet
    state.engine.dispose()


def create_app(settings: Settings) -> FastAPI:
    """The sysup HTTP API for ``settings``; resources are opened when the app starts, not here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(open_state, settings)
        app.state.api = state
        app.state.upgrade_policy = UpgradePolicy(**settings.upgrade_policy.model_dump())
        try:
            yield
        finally:
            await run_in_threadpool(close_state, state)

    app = FastAPI(
        title="sysup",
        version=__version__,
        description="Attended Sysupgrade server for OpenWrt: images built with the packages you ask for.",
        lifespan=lifespan,
        default_response_class=JsonResponse,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    document_errors(app)  # the spec lists the 400/404/413/429/503/529 answers every route can give
    for module in (routes_build, routes_meta, routes_json, routes_store, routes_upgrade):
        app.include_router(module.router)
    for module in (routes_legacy, routes_legacy_catalog, routes_stats):
        app.include_router(module.router)
    install_metrics(app)  # GET /metrics and the request-latency middleware
    install_web(app)  # the pages, their /web/api endpoints and /web/static
    app.add_middleware(BodyLimitMiddleware)  # 413 for bodies over 1 MiB (docs/security.md)
    app.add_middleware(StatusInBodyMiddleware)  # innermost: sees the collapsed path (clients/openwrt)
    # Added last = outermost: CORS headers also go on the double-slash redirect.
    app.add_middleware(DoubleSlashMiddleware)
    app.add_middleware(CorsMiddleware)
    # Outermost of all: a finished build's status straight from memory (see fast_path.py).
    app.add_middleware(FinishedBuildFastPath, histogram=app.state.request_latency)
    return app


def app_from_environment() -> FastAPI:
    """An app for settings from ``SYSUP_CONFIG``/``sysup.toml`` and ``SYSUP_*`` (``uvicorn --factory``)."""
    return create_app(load_settings())
