"""The FastAPI application: ``create_app(settings)`` wires the routers, error handling, security
middleware and the alert scanner around one ``Service``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from reunite import __version__
from reunite.api import (
    alerts,
    problems,
    routes_admin,
    routes_cases,
    routes_console,
    routes_data,
    schemas,
)
from reunite.api.security import BodyLimit, SecurityHeaders
from reunite.api.service import Service
from reunite.config import Settings
from reunite.pipeline.cases import MAX_PHOTOS_PER_CASE

BODY_PHOTOS = 3
"""A request body may carry this many photos at the upload limit (more: add them one by one)."""


def create_app(settings: Settings | None = None, *, scan_alerts: bool = True) -> FastAPI:
    """The API over the workspace ``settings`` name; ``scan_alerts=False`` leaves raising alerts
    to another process (``reunite alerts scan``)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = Service(settings)
        app.state.service = svc
        task = asyncio.create_task(alerts.scanner(svc)) if scan_alerts else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            svc.close()

    app = FastAPI(
        title="Reunite",
        version=__version__,
        summary="Missing-person search over district CCTV: cases, matches, alerts.",
        description=(
            "Every endpoint but /health needs a bearer token from /auth/token. Every search, "
            "match list, crop view and case change is audited; state the purpose of a search "
            "in the X-Reunite-Purpose header (case searches default to the case). Photos: JPEG, "
            f"PNG or WebP, at most {settings.max_upload_mb:g} MB and "
            f"{settings.max_upload_megapixels:g} megapixels; a case holds at most "
            f"{MAX_PHOTOS_PER_CASE}. Errors are application/problem+json (RFC 9457)."
        ),
        lifespan=lifespan,
    )
    problems.install(app)
    errors = schemas.problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
    for router in (routes_admin.router, routes_cases.router, routes_data.router, alerts.router):
        app.include_router(router, responses=errors)
    app.include_router(routes_console.router)  # the web console: /, /console/
    limit = int(settings.max_upload_mb * 2**20) * BODY_PHOTOS + 2**20
    app.add_middleware(BodyLimit, limit=limit)
    app.add_middleware(SecurityHeaders)  # outermost: refusals get the headers too
    return app
