"""Sign-in, users, the audit log, researcher endpoints and the health check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from reunite.api import schemas
from reunite.api.security import Supervisor, Svc, client_of, issue_token, record, require
from reunite.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from reunite.models.registry import Registry
from reunite.pipeline import accounts, audit
from reunite.pipeline.case_schema import Role, User

router = APIRouter()


@router.get("/health", response_model=schemas.Health, tags=["service"])
def health(svc: Svc) -> schemas.Health:
    """Liveness and what is being served; the only endpoint without authentication."""
    version = svc.ws.active_version()
    return schemas.Health(
        status="ok",
        index_version=version.id if version else None,
        model=version.model if version else None,
    )


@router.post("/auth/token", response_model=schemas.Token, tags=["auth"])
def login(
    svc: Svc, request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> schemas.Token:
    """OAuth2 password flow: a short-lived bearer token for the user."""
    client = client_of(request) or "?"
    key = f"{form.username.lower()}|{client}"
    svc.login_limiter.check(key, "failed sign-ins")  # only failures count against the limit
    actor = audit.Actor(form.username.lower()[:64], None, client)
    try:
        with svc.ws.db.session() as session:
            user = accounts.authenticate(session, form.username, form.password)
            token, lifetime = issue_token(svc, user)
            role = Role(user.role)
    except AuthenticationError:
        svc.login_limiter.add(key)
        record(svc, actor, "login", outcome="refused")
        raise
    record(svc, audit.Actor(actor.username, role.value, client), "login")
    return schemas.Token(access_token=token, expires_in=lifetime, role=role)


def _user_out(user: User) -> schemas.UserOut:
    return schemas.UserOut(
        username=user.username,
        role=Role(user.role),
        disabled=user.disabled,
        created_at=user.created_at,
    )


def _check_grant(granter: Role, role: Role | None) -> None:
    if role == Role.ADMIN and granter != Role.ADMIN:
        raise PermissionDeniedError("only an admin may make or change an admin")


@router.get("/users", response_model=list[schemas.UserOut], tags=["users"])
def list_users(svc: Svc, user: Supervisor, request: Request) -> list[schemas.UserOut]:
    with svc.ws.db.session() as session:
        out = [_user_out(u) for u in session.scalars(select(User).order_by(User.username))]
    record(svc, user, "user_list", request=request)
    return out


@router.post("/users", status_code=201, response_model=schemas.UserOut, tags=["users"])
def add_user(svc: Svc, user: Supervisor, request: Request, body: schemas.UserIn) -> schemas.UserOut:
    _check_grant(user.role, body.role)
    with svc.ws.db.session() as session:
        out = _user_out(accounts.add_user(session, body.username, body.password, body.role))
    record(svc, user, "user_add", request=request, params={"user": out.username, "role": out.role})
    return out


@router.patch("/users/{username}", response_model=schemas.UserOut, tags=["users"])
def change_user(
    svc: Svc, user: Supervisor, request: Request, username: str, body: schemas.UserPatch
) -> schemas.UserOut:
    with svc.ws.db.session() as session:
        target = accounts.get_user(session, username)
        _check_grant(user.role, Role(target.role))
        _check_grant(user.role, body.role)
        if body.disabled is not None:
            target.disabled = body.disabled
        if body.role is not None:
            target.role = body.role.value
        if body.password is not None:
            accounts.set_password(session, username, body.password)
        out = _user_out(target)
    changes = body.model_dump(exclude_none=True, exclude={"password"})
    if body.password is not None:
        changes["password"] = "changed"
    record(svc, user, "user_change", request=request, params={"user": username, **changes})
    return out


@router.get("/audit", response_model=list[schemas.AuditOut], tags=["audit"])
def read_audit(
    svc: Svc,
    user: Supervisor,
    request: Request,
    username: str | None = None,
    action: str | None = None,
    case_id: schemas.OptionalId = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: schemas.OptionalId = None,
    limit: schemas.Limit = 100,
) -> list[schemas.AuditOut]:
    """The audit log, newest first; page with ``before_seq``."""
    rows = audit.query(
        svc.ws.db,
        username=username,
        action=action,
        case_id=case_id,
        since=since,
        until=until,
        before_seq=before_seq,
        limit=limit,
    )
    params = {k: v for k, v in request.query_params.items()}
    record(svc, user, "audit_view", request=request, params=params)
    return [
        schemas.AuditOut(
            seq=r.seq,
            time=r.time,
            username=r.username,
            role=r.role,
            action=r.action,
            case_id=r.case_id,
            purpose=r.purpose,
            params=r.params,
            result_ids=r.result_ids,
            outcome=r.outcome,
            client=r.client,
        )
        for r in rows
    ]


@router.get("/audit/verify", response_model=schemas.AuditVerification, tags=["audit"])
def verify_audit(svc: Svc, user: Supervisor, request: Request) -> schemas.AuditVerification:
    """Recompute the hash chain: says whether any entry was edited or deleted."""
    count, problems = audit.verify(svc.ws.db)
    seq, digest = audit.head(svc.ws.db)
    record(svc, user, "audit_verify", request=request, outcome="ok" if not problems else "broken")
    return schemas.AuditVerification(
        entries=count,
        intact=not problems,
        problems=[f"entry {p.seq} {p.problem}" for p in problems],
        head_seq=seq,
        head_hash=digest,
    )


Researcher = Annotated[object, Depends(require(Role.RESEARCHER, Role.SUPERVISOR))]


@router.get("/research/models", response_model=list[schemas.ModelInfo], tags=["research"])
def research_models(svc: Svc, user: Researcher) -> list[schemas.ModelInfo]:
    """The re-ID models with their evaluation figures (synthetic data only, no sightings)."""
    registry = Registry(data_dir=svc.ws.data_dir)
    return [
        schemas.ModelInfo(
            name=e.card.name,
            version=e.card.version,
            architecture=e.card.architecture,
            embedding_dim=e.card.embedding_dim,
            metrics=e.card.metrics,
            threshold=e.card.threshold,
        )
        for e in registry.entries()
    ]


@router.get("/research/models/{name}", response_model=schemas.ModelInfo, tags=["research"])
def research_model(svc: Svc, user: Researcher, name: str) -> schemas.ModelInfo:
    entry = Registry(data_dir=svc.ws.data_dir).find(name)
    if entry is None:
        raise NotFoundError(f"there is no model {name!r}")
    c = entry.card
    return schemas.ModelInfo(
        name=c.name,
        version=c.version,
        architecture=c.architecture,
        embedding_dim=c.embedding_dim,
        metrics=c.metrics,
        threshold=c.threshold,
    )
