"""User accounts: roles, argon2 password hashes, enable/disable.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106's recommendations); a
hash made with older parameters is upgraded on the next successful login.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from reunite.errors import AuthenticationError, ConflictError, InvalidOptionError, NotFoundError
from reunite.pipeline.case_schema import Role, User
from reunite.pipeline.schema import utcnow

MIN_PASSWORD_LENGTH = 12
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the time of a failed login the same
# for known and unknown names (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidOptionError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
        )


def add_user(session: Session, username: str, password: str, role: Role | str) -> User:
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise InvalidOptionError(
            f"user name {username!r} must be 2-64 characters of a-z, 0-9, '.', '_' or '-'"
        )
    try:
        role = Role(role)
    except ValueError:
        raise InvalidOptionError(
            f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}"
        ) from None
    check_password_strength(password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ConflictError(f"user {username!r} exists already")
    user = User(username=username, password_hash=_hasher.hash(password), role=role.value)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFoundError(f"there is no user {username!r}")
    return user


def set_disabled(session: Session, username: str, disabled: bool = True) -> User:
    user = get_user(session, username)
    user.disabled = disabled
    return user


def set_password(session: Session, username: str, password: str) -> User:
    check_password_strength(password)
    user = get_user(session, username)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = utcnow()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The user, if the password is right and the account enabled; one message for every failure
    so that a caller cannot tell which names exist."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("wrong user name or password") from None
    if user is None or user.disabled:
        raise AuthenticationError("wrong user name or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user
