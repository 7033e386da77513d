"""Make the OpenAPI spec tell the truth about error answers, for every route at once.

FastAPI documents a ``422`` list-shaped validation error on every route with parameters, but sysup answers
schema errors with ``400`` and a string ``detail`` (``sysup.api.errors``), and a few answers come from layers
no route declares: ``413`` (``BodyLimitMiddleware``), ``503`` (database unreachable), ``429``/``529`` (build
limits). ``document_errors(app)`` adds these to each operation where they can happen, with the one error shape
all of them share (``detail`` is always a string; the v1 API adds ``status``, the 2017 API ``error``), so a
client generated from the spec — or schemathesis — sees every status the server really sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

#: The shape every error answer has in common.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "status": {"type": "integer"},
        "error": {"type": "string"},
    },
    "required": ["detail"],
}

_DESCRIPTIONS = {
    "400": "Invalid request (a string detail)",
    "404": "Not found",
    "413": "Request body too large",
    "429": "Too many build requests from this client; see Retry-After",
    "503": "A dependency (the database) is briefly unavailable; see Retry-After",
    "529": "Too many queued builds; see Retry-After",
}


def _errors_for(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    codes = ["400", "503"]
    if "{" in path or path.startswith("/store/"):
        codes.append("404")
    if method in ("post", "put", "patch"):
        codes.append("413")
    if method == "post" and path.endswith(("/build", "/upgrade-request", "/build-request")):
        codes += ["429", "529"]
    return codes


def _document(schema: dict[str, Any]) -> dict[str, Any]:
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            validation = responses.get("422", {})
            if "HTTPValidationError" in str(validation):  # FastAPI's default; sysup answers 400 instead
                del responses["422"]
            for code in _errors_for(path, method, operation):
                responses.setdefault(code, {
                    "description": _DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": ERROR_SCHEMA}},
                })
    return schema


def document_errors(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that documents the error answers of every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                openapi_version=app.openapi_version, tags=app.openapi_tags, servers=app.servers,
            ))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
