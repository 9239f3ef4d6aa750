"""Errors as ``application/problem+json`` (RFC 9457): a stable type, a title, the status, and a
detail that says what to do. Every ``ReuniteError`` maps to one status here, in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reunite import errors
from reunite.pipeline.describe import DescriptionError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[errors.ReuniteError], int, str]] = [
    (errors.AuthenticationError, 401, "Not authenticated"),
    (errors.PermissionDeniedError, 403, "Not allowed for your role"),
    (errors.NotFoundError, 404, "Not found"),
    (errors.UnknownCameraError, 404, "Unknown camera"),
    (errors.ConflictError, 409, "Conflict with the current state"),
    (errors.JobConflictError, 409, "Conflict with a running job"),
    (errors.UploadTooLargeError, 413, "Upload too large"),
    (errors.UnsupportedMediaError, 415, "Unsupported file type"),
    (errors.BadImageError, 422, "Unreadable image"),
    (errors.NoPersonFoundError, 422, "No person found in the photo"),
    (errors.InvalidOptionError, 422, "Invalid request"),
    (DescriptionError, 422, "Description not understood"),
    (errors.StoreError, 503, "Storage unavailable"),
    (errors.DiskFullError, 507, "Storage full"),
]


class RateLimitedError(errors.ReuniteError):
    """Too many requests of one kind from one user or client; ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def problem(
    status: int, title: str, detail: str, request: Request, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://reunite.example/problems/{status}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: errors.ReuniteError) -> tuple[int, str]:
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            return status, title
    return 400, "Bad request"


def install(app: FastAPI) -> None:
    @app.exception_handler(RateLimitedError)
    async def rate_limited(request: Request, exc: RateLimitedError) -> JSONResponse:
        return problem(
            429, "Too many requests", str(exc), request, {"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(errors.ReuniteError)
    async def reunite_error(request: Request, exc: errors.ReuniteError) -> JSONResponse:
        status, title = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return problem(status, title, str(exc), request, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where}: {error.get('msg')}")
        return problem(422, "Invalid request", "; ".join(parts) or "invalid request", request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code, str(exc.detail), str(exc.detail), request, exc.headers or None
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the server failed; the error was logged", request)
