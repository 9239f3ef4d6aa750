"""Authentication (OAuth2 password flow, HS256-signed JWTs), roles, audit and response headers.

Tokens are short-lived (``token_minutes``) and checked against the database on every request: a
disabled user or a changed password takes effect at once, not when the token expires.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reunite.api.service import Service, service
from reunite.errors import AuthenticationError, PermissionDeniedError, UploadTooLargeError
from reunite.pipeline import audit
from reunite.pipeline.case_schema import Role, User

ALGORITHM = "HS256"
PURPOSE_HEADER = "X-Reunite-Purpose"

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def issue_token(svc: Service, user: User) -> tuple[str, int]:
    lifetime = svc.settings.token_minutes * 60
    now = datetime.now(UTC)
    claims = {
        "sub": user.username,
        "role": user.role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, svc.token_key, algorithm=ALGORITHM), lifetime


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as routes see them."""

    user_id: int
    username: str
    role: Role
    client: str | None

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(self.username, self.role.value, self.client)


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def _principal(svc: Service, token: str | None, request: Request) -> Principal:
    if not token:
        raise AuthenticationError("sign in first: send 'Authorization: Bearer <token>'")
    try:
        claims = jwt.decode(
            token, svc.token_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("the token has expired: sign in again") from None
    except jwt.PyJWTError:
        raise AuthenticationError("the token is not valid: sign in again") from None
    with svc.ws.db.session() as session:
        user = session.scalar(select(User).where(User.username == claims["sub"]))
        if user is None or user.disabled:
            raise AuthenticationError("the account is disabled or gone")
        if claims.get("iat", 0) < int(user.password_changed_at.timestamp()):
            raise AuthenticationError("the password was changed since: sign in again")
        return Principal(user.id, user.username, Role(user.role), client_of(request))


def current_user(
    request: Request,
    svc: Annotated[Service, Depends(service)],
    token: Annotated[str | None, Depends(oauth2)],
) -> Principal:
    return _principal(svc, token, request)


def current_user_for_stream(
    request: Request,
    svc: Annotated[Service, Depends(service)],
    token: Annotated[str | None, Depends(oauth2)],
    access_token: str | None = None,
) -> Principal:
    """Like ``current_user``, also accepting ``?access_token=``: a browser's EventSource cannot
    send headers. Tokens are short-lived, and the server logs no query strings."""
    return _principal(svc, token or access_token, request)


def require(*roles: Role) -> Callable[..., Principal]:
    allowed = set(roles) | {Role.ADMIN}

    def check(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise PermissionDeniedError(f"only {names} may do this; you are {user.role.value}")
        return user

    return check


STAFF = (Role.OPERATOR, Role.SUPERVISOR)
Staff = Annotated[Principal, Depends(require(*STAFF))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
Anyone = Annotated[Principal, Depends(current_user)]
Svc = Annotated[Service, Depends(service)]


def purpose_of(request: Request, default: str | None = None) -> str | None:
    value = request.headers.get(PURPOSE_HEADER)
    return value.strip()[:500] if value and value.strip() else default


def record(
    svc: Service,
    user: Principal | audit.Actor,
    action: str,
    *,
    request: Request | None = None,
    purpose: str | None = None,
    **fields: Any,
) -> None:
    actor = user.actor if isinstance(user, Principal) else user
    if purpose is None and request is not None:
        purpose = purpose_of(request)
    audit.record(svc.ws.db, actor, action, purpose=purpose, **fields)


# -- middleware --------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Strict-Transport-Security": "max-age=31536000",
}


class SecurityHeaders(BaseHTTPMiddleware):
    """Security headers on every response; nothing personal is cached by browsers or proxies."""

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes before they are parsed or spooled to disk: by
    Content-Length at once, and by counting for chunked uploads that declare none."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, int(declared))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLargeError(self._message(seen))
            return message

        await self.app(scope, counted, send)

    def _message(self, size: int) -> str:
        return (
            f"the request body has more than {self.limit / 2**20:.0f} MB "
            f"({size / 2**20:.1f} MB seen); photos may be at most the upload limit each"
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        from reunite.api.problems import problem

        response = problem(413, "Upload too large", self._message(size), Request(scope, receive))
        await response(scope, receive, send)
