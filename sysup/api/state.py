"""What the API keeps for its lifetime, typed, on ``app.state.api`` (made in the lifespan, not at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from sysup.api.hot_cache import HotCache

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from asud.store.files import Store
    from sysup.api.build_responses import RenderedBuild
    from sysup.build_requests.validate import RequestLimits
    from sysup.builds.service import BuildService
    from sysup.catalog.queries import Catalog
    from sysup.config import Settings

#: Finished build answers kept in process (count) and for how long (seconds). Short, because a result can
#: expire or be purged by another process; a POST always goes to the build service and drops the entry.
FINISHED_CACHE_ENTRIES = 4096
FINISHED_CACHE_SECONDS = 30.0
#: Overview/branches/latest and per-profile documents: how many and for how long (seconds).
DOCUMENT_CACHE_ENTRIES = 2048
DOCUMENT_CACHE_SECONDS = 10.0


@dataclass
class ApiState:
    """The resources every route uses."""

    settings: Settings
    engine: Engine
    catalog: Catalog
    builds: BuildService
    store: Store
    limits: RequestLimits
    #: The Huey instance builds are enqueued on (kept so the lifespan can close its storage).
    huey: Any
    finished: HotCache[str, RenderedBuild] = field(
        default_factory=lambda: HotCache(FINISHED_CACHE_ENTRIES, FINISHED_CACHE_SECONDS)
    )
    documents: HotCache[tuple[str, ...], bytes] = field(
        default_factory=lambda: HotCache(DOCUMENT_CACHE_ENTRIES, DOCUMENT_CACHE_SECONDS)
    )
    #: POST bodies (JSON without ``client``) answered 200 → ``routes_build.Accepted``; with ``finished``
    #: this answers a repeated POST of a built image without validating it again.
    accepted: HotCache[str, Any] = field(
        default_factory=lambda: HotCache(FINISHED_CACHE_ENTRIES, FINISHED_CACHE_SECONDS)
    )


def state_of(connection: HTTPConnection) -> ApiState:
    """The :class:`ApiState` of the app serving ``connection``."""
    state: ApiState = connection.app.state.api
    return state


async def api_state(connection: HTTPConnection) -> ApiState:
    """:func:`state_of` as a FastAPI dependency; ``async`` so resolving it never costs a threadpool hop."""
    return state_of(connection)
