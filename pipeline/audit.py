"""The audit log: every search, match view, crop view, case change and login, hash-chained.

Each entry's hash covers its own fields and the previous entry's hash (SHA-256 over canonical
JSON), and ``seq`` numbers are dense from 1. ``verify`` recomputes the chain: an edited row, a
deleted row in the middle, or rows re-ordered all show. Deleting the newest rows leaves a valid
but shorter chain; deployments that must detect that too export ``head()`` regularly to
write-once storage (the CLI prints it) and compare.

Two writers appending at once both compute ``seq = last + 1``; the primary key lets only one
win, and the loser retries on the new head, so the chain never forks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reunite.errors import StoreError
from reunite.pipeline.case_schema import AuditEntry
from reunite.pipeline.db import Database
from reunite.pipeline.schema import utcnow

GENESIS = "0" * 64
_RETRIES = 20


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user, or the system itself (username None) for scanners and jobs."""

    username: str | None
    role: str | None
    client: str | None = None


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "time": entry.time.isoformat(),
        "username": entry.username,
        "role": entry.role,
        "action": entry.action,
        "case_id": entry.case_id,
        "purpose": entry.purpose,
        "params": entry.params,
        "result_ids": entry.result_ids,
        "outcome": entry.outcome,
        "client": entry.client,
    }


def record(
    db: Database,
    actor: Actor,
    action: str,
    *,
    outcome: str = "ok",
    case_id: int | None = None,
    purpose: str | None = None,
    params: dict[str, Any] | None = None,
    result_ids: Sequence[Any] = (),
) -> int:
    """Append one entry in its own transaction and return its ``seq``: an audit row must not
    vanish with a rollback of the action it describes (a refused request is audited too)."""
    params = json.loads(json.dumps(params or {}, default=str))  # what JSON storage gives back
    for _ in range(_RETRIES):
        try:
            with db.session() as session:
                last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
                entry = AuditEntry(
                    seq=1 if last is None else last.seq + 1,
                    time=utcnow(),
                    username=actor.username,
                    role=actor.role,
                    action=action,
                    case_id=case_id,
                    purpose=purpose,
                    params=params,
                    result_ids=list(result_ids),
                    outcome=outcome,
                    client=actor.client,
                    prev_hash=GENESIS if last is None else last.hash,
                )
                entry.hash = _digest(entry.prev_hash, _fields(entry))
                session.add(entry)
                seq = entry.seq
            return seq
        except IntegrityError:
            continue  # another writer took this seq: append after it
    raise StoreError("could not append to the audit log: too many concurrent writers")


@dataclass(frozen=True, slots=True)
class AuditProblem:
    seq: int
    problem: str


def verify(db: Database, batch: int = 1000) -> tuple[int, list[AuditProblem]]:
    """Check the whole chain; returns (entries checked, problems found)."""
    problems: list[AuditProblem] = []
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for entry in _iter_entries(db, batch):
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                AuditProblem(entry.seq, f"entries {expected_seq}..{entry.seq - 1} are missing")
            )
        if entry.prev_hash != prev_hash:
            problems.append(AuditProblem(entry.seq, "does not follow the entry before it"))
        if _digest(entry.prev_hash, _fields(entry)) != entry.hash:
            problems.append(AuditProblem(entry.seq, "was changed after it was written"))
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return count, problems


def head(db: Database) -> tuple[int, str]:
    """(seq, hash) of the newest entry: export it to detect truncation later."""
    with db.session() as session:
        last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        return (0, GENESIS) if last is None else (last.seq, last.hash)


def _iter_entries(db: Database, batch: int) -> Iterator[AuditEntry]:
    after = 0
    while True:
        with db.session() as session:
            rows = list(
                session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq > after)
                    .order_by(AuditEntry.seq)
                    .limit(batch)
                )
            )
            session.expunge_all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def query(
    db: Database,
    *,
    username: str | None = None,
    action: str | None = None,
    case_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """Newest first, filtered; page with ``before_seq``."""
    stmt = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if username:
        stmt = stmt.where(AuditEntry.username == username)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if case_id is not None:
        stmt = stmt.where(AuditEntry.case_id == case_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.time >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.time < until)
    if before_seq is not None:
        stmt = stmt.where(AuditEntry.seq < before_seq)
    with db.session() as session:
        rows = list(session.scalars(stmt))
        session.expunge_all()
    return rows
