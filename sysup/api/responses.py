"""The JSON response class of the API: orjson, because build results and overviews are large and hot.

FastAPI's own ``ORJSONResponse`` is deprecated; this one also accepts bytes that are already rendered, so
cached documents are served without serialising them again.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    """``application/json`` rendered with orjson; ``bytes`` content is sent as is (pre-rendered JSON).

    A ``JSONResponse`` subclass so that FastAPI documents each route's response model in the OpenAPI spec
    (for any other response class it documents a bare ``{"type": "string"}``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return render_json(content)


def render_json(content: Any) -> bytes:
    """orjson bytes of ``content``; non-string dict keys and dataclasses are allowed."""
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
