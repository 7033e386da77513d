"""``GET``/``HEAD /store/{bin_dir}/{name}``: the built files, byte for byte what ``images[].sha256`` names.

``Store.resolve`` is the gate: it refuses anything that is not a plain file of a valid ``bin_dir`` inside
the store (``..``, encoded separators, absolute paths, symlinks out). ``FileResponse`` sets
``Content-Length`` (auc compares it with what it wrote) and answers ``HEAD`` without a body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse

from sysup.api.schemas import ERROR_RESPONSES
from sysup.api.state import ApiState, api_state

router = APIRouter(tags=["store"])


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The file"},
    404: ERROR_RESPONSES[404],
}


@router.get("/store/{bin_dir}/{name}", response_class=FileResponse, responses=_FILE_RESPONSES)
@router.head(
    "/store/{bin_dir}/{name}",
    response_class=FileResponse,
    responses=_FILE_RESPONSES,
    operation_id="head_file",
)
async def store_file(bin_dir: str, name: str, state: Annotated[ApiState, Depends(api_state)]) -> FileResponse:
    """A file of a finished build; 404 for anything else."""
    path = await run_in_threadpool(state.store.resolve, bin_dir, name)
    return FileResponse(path, media_type=media_type_of(name))


def media_type_of(name: str) -> str:
    """Text for logs and manifests, JSON for ``profiles.json``, bytes for everything else (images)."""
    if name.endswith((".log", ".txt", ".manifest")):
        return "text/plain; charset=utf-8"
    if name.endswith(".json"):
        return "application/json"
    return "application/octet-stream"
