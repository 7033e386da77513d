"""A repeated POST of a built image is answered from memory (``routes_build``'s cache hit), and counted."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from sysup.builds.models import Build, BuildRequestRecord, utcnow
from sysup.database import session_factory
from sysup.stats.models import RequestEvent
from tests.api.helpers import build_body


def _finish(api_state: Any, request_hash: str) -> None:
    """Mark the build behind ``request_hash`` done, as a worker would (the test server has none)."""
    sessions = session_factory(api_state.engine)
    with sessions() as session, session.begin():
        key = session.scalar(
            select(BuildRequestRecord.image_key).where(BuildRequestRecord.request_hash == request_hash)
        )
        session.execute(
            update(Build)
            .where(Build.image_key == key)
            .values(
                status="done",
                stage="done",
                result={"images": [], "manifest": {"base-files": "1"}},
                bin_dir=request_hash,
                finished_at=utcnow(),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )


def _set_status(api_state: Any, request_hash: str, status: str) -> None:
    sessions = session_factory(api_state.engine)
    with sessions() as session, session.begin():
        key = session.scalar(
            select(BuildRequestRecord.image_key).where(BuildRequestRecord.request_hash == request_hash)
        )
        session.execute(update(Build).where(Build.image_key == key).values(status=status))


def _cache_hits(api_state: Any, request_hash: str) -> int:
    with session_factory(api_state.engine)() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(RequestEvent)
                .where(RequestEvent.request_hash == request_hash, RequestEvent.cache_hit.is_(True))
            )
            or 0
        )


def test_repeated_post_of_a_built_image_is_answered_from_memory(api_url: str, api_state: Any) -> None:
    body = build_body()
    queued = httpx.post(f"{api_url}/api/v1/build", json=body)
    assert queued.status_code == 202
    request_hash = queued.json()["request_hash"]
    _finish(api_state, request_hash)

    first = httpx.post(f"{api_url}/api/v1/build", json=body)  # the full path finds it done
    assert first.status_code == 200 and first.json()["request_hash"] == request_hash
    # The database now says otherwise; an answer that still says "done" can only come from memory.
    _set_status(api_state, request_hash, "queued")
    again = httpx.post(f"{api_url}/api/v1/build", json={**body, "client": "another-client/2"})
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["x-imagebuilder-status"] == "done"

    other = httpx.post(f"{api_url}/api/v1/build", json=build_body())  # another request: the full path
    assert other.status_code == 202

    deadline = time.monotonic() + 10  # statistics of cache hits are written in batches
    while _cache_hits(api_state, request_hash) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _cache_hits(api_state, request_hash) == 2
    _set_status(api_state, request_hash, "done")


def test_only_a_done_build_is_answered_from_memory(api_url: str, api_state: Any) -> None:
    body = build_body()
    request_hash = httpx.post(f"{api_url}/api/v1/build", json=body).json()["request_hash"]
    assert httpx.post(f"{api_url}/api/v1/build", json=body).status_code == 202  # queued: asked again
    _set_status(api_state, request_hash, "failed")
    assert httpx.post(f"{api_url}/api/v1/build", json=body).status_code == 500
    assert _cache_hits(api_state, request_hash) == 0
