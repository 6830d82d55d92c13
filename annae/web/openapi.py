"""The OpenAPI schema, with the error answers every operation can give (``docs/api.md``).

FastAPI documents a route's success and, when it has parameters, 422. The service also answers
401/403 (identity and rights), 404 (unknown ids), 400/409 (actions that make no sense now),
413 (body over 64 kB), 429 (rate limits) and 503 + ``Retry-After`` (database unavailable) through
its shared error handlers; :func:`install` adds those to every operation so that clients (and
the fuzz test) see every status code the service can return.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
WHY = {
    400: "An action that makes no sense (bad_request)",
    401: "Missing or wrong credentials (unauthorized)",
    403: "Not allowed for this identity, or a missing CSRF token (forbidden, csrf)",
    404: "Unknown id (not_found)",
    409: "A state change not allowed now (conflict)",
    413: "Request body over 64 kB (too_large)",
    422: "Invalid input: JSON, types, ranges, NUL in text (invalid)",
    429: "Too many requests; see Retry-After (rate_limited)",
    503: "The database is unavailable; see Retry-After (unavailable, not_ready)",
}
API_ERRORS = (400, 401, 403, 404, 409, 422, 429, 503)
BODY_METHODS = ("post", "put", "patch")


def errors_for(path: str, method: str) -> tuple[int, ...]:
    """The error statuses an operation may answer."""
    if path == "/healthz":
        return ()
    if not path.startswith(("/api/", "/channels/")):  # the JSON API and the channels
        return (503,)
    return API_ERRORS + ((413,) if method in BODY_METHODS else ())


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` list the shared error answers on every operation."""

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        retry = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status in errors_for(path, method):
                    entry = {"description": WHY[status], "content": ref}
                    if status in (429, 503):
                        entry["headers"] = retry
                    if status == 422:  # our error body, not FastAPI's {"detail": [...]}
                        responses["422"] = entry
                    responses.setdefault(str(status), entry)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
