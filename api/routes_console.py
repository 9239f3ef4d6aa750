"""The control-room web console: static files under ``/console/``, ``/`` redirects there.

The page holds no data (everything comes from the token-protected API), so it is served without a
token. Files are served by a route of our own rather than a ``StaticFiles`` mount: the content
types are fixed here (a browser refuses an ES module sent as ``text/plain``, and ``mimetypes``
depends on the host's tables), only the files in ``console/`` can be reached, and the routes stay
out of the OpenAPI schema.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from reunite.errors import NotFoundError

router = APIRouter(include_in_schema=False)

CONSOLE_DIR = Path(__file__).resolve().parent / "console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def console_file(path: str) -> Path:
    """The file under ``CONSOLE_DIR`` for a URL path; ``NotFoundError`` for anything else
    (``..``, hidden files, other types), so nothing outside the folder is ever read."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        parts = ["index.html"]
    if any(p.startswith(".") or "\\" in p for p in parts):
        raise NotFoundError(f"the console has no file {path!r}")
    target = CONSOLE_DIR.joinpath(*parts).resolve()
    if (
        not target.is_relative_to(CONSOLE_DIR)
        or not target.is_file()
        or target.suffix not in CONTENT_TYPES
    ):
        raise NotFoundError(f"the console has no file {path!r}")
    return target


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console")
def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.api_route("/console/{path:path}", methods=["GET", "HEAD"])
def console(path: str) -> FileResponse:
    """A console file. ``no-cache`` (revalidate by ETag) rather than the API's ``no-store``:
    these files are the same for everyone and hold nothing personal."""
    target = console_file(path)
    return FileResponse(
        target,
        media_type=CONTENT_TYPES[target.suffix],
        headers={"Cache-Control": "no-cache"},
    )
