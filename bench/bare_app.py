"""The yardstick of the GET figure: a bare FastAPI endpoint answering the same JSON bytes from memory.

Run as ``uvicorn bench.bare_app:app`` with ``BENCH_BARE_BODY`` naming a file of the body to serve.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response

_body: list[bytes] = [b"{}"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    _body[0] = Path(os.environ["BENCH_BARE_BODY"]).read_bytes()
    yield


app = FastAPI(lifespan=_lifespan)


@app.get("/api/v1/build/{request_hash}")
async def get_build(request_hash: str) -> Response:
    return Response(_body[0], media_type="application/json")
