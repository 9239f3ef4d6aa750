"""Batch jobs recorded in the database, so that an operator sees what runs and a killed job resumes.

A job holds a *lock key* ("camera:c1" for an ingest, "index" for a reindex or purge) for as long
as it runs; the database's partial unique index on running jobs' lock keys makes a second job on
the same key fail at insert time, on SQLite and PostgreSQL alike, without any lock server. A
holder that died without cleaning up (kill -9, power loss) is recognised — its process is gone on
this host, or its heartbeat is old when it ran elsewhere — and marked ``interrupted`` so that the
new job can take over and resume from the last checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reunite.errors import JobConflictError, NotFoundError
from reunite.pipeline.db import Database
from reunite.pipeline.schema import Job

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"
STALE_AFTER = timedelta(minutes=2)
"""A job on another host whose heartbeat is older than this is taken to be dead."""
MAX_ERRORS_KEPT = 200


def now() -> datetime:
    return datetime.now(UTC)


class JobHandle:
    """The running job: checkpoints, progress and errors are written in the caller's transaction,
    so that a chunk of work and the checkpoint that says it is done commit together."""

    def __init__(self, db: Database, job_id: int) -> None:
        self.db = db
        self.id = job_id

    def checkpoint(
        self, session: Session, checkpoint: dict[str, Any], done: int, total: int | None = None
    ) -> None:
        job = session.get(Job, self.id)
        job.checkpoint = dict(checkpoint)
        job.progress_done = done
        if total is not None:
            job.progress_total = total
        job.heartbeat_at = now()

    def add_errors(self, session: Session, errors: list[str]) -> None:
        if not errors:
            return
        job = session.get(Job, self.id)
        job.errors = [*(job.errors or []), *errors][-MAX_ERRORS_KEPT:]

    def get(self, session: Session) -> Job:
        return session.get(Job, self.id)


def _holder_alive(job: Job) -> bool:
    if job.host == socket.gethostname():
        if job.pid is None or not psutil.pid_exists(job.pid):
            return False
        try:
            return psutil.Process(job.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    beat = job.heartbeat_at or job.started_at
    return beat is not None and now() - beat < STALE_AFTER


def _acquire(db: Database, kind: str, lock_key: str, params: dict[str, Any]) -> int:
    for _ in range(3):
        try:
            with db.session() as session:
                job = Job(
                    kind=kind,
                    status=RUNNING,
                    lock_key=lock_key,
                    params=params,
                    checkpoint={},
                    progress_done=0,
                    progress_total=0,
                    errors=[],
                    pid=os.getpid(),
                    host=socket.gethostname(),
                    created_at=now(),
                    started_at=now(),
                    heartbeat_at=now(),
                )
                session.add(job)
                session.flush()
                return job.id
        except IntegrityError:
            with db.session() as session:
                holder = session.scalars(
                    select(Job).where(Job.lock_key == lock_key, Job.status == RUNNING)
                ).first()
                if holder is None:
                    continue
                if _holder_alive(holder):
                    started = f"{holder.started_at:%Y-%m-%d %H:%M:%S}"
                    raise JobConflictError(
                        f"job {holder.id} ({holder.kind}) already works on {lock_key} "
                        f"(pid {holder.pid} on {holder.host}, started {started} UTC); wait for "
                        "it to finish or stop it first"
                    ) from None
                log.warning(
                    "job %s on %s died without finishing (pid %s gone); marking it interrupted",
                    holder.id,
                    lock_key,
                    holder.pid,
                )
                holder.status = INTERRUPTED
                holder.finished_at = now()
                holder.message = "the process died; a later job took over and resumed its work"
    raise JobConflictError(f"could not take the lock {lock_key}; try again")


@contextmanager
def run_job(db: Database, kind: str, lock_key: str, params: dict[str, Any]) -> Iterator[JobHandle]:
    """Record a job, hold its lock while the body runs, and record how it ended.

    Ctrl-C marks it ``interrupted``, any other exception ``failed`` with the message; either way
    the exception propagates and the work already checkpointed stays.
    """
    handle = JobHandle(db, _acquire(db, kind, lock_key, params))
    status, message = DONE, None
    try:
        yield handle
    except KeyboardInterrupt:
        status, message = INTERRUPTED, "interrupted (Ctrl-C); run the same command to resume"
        raise
    except BaseException as error:
        status, message = FAILED, f"{type(error).__name__}: {error}"
        raise
    finally:
        with db.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == handle.id)
                .values(status=status, message=message, finished_at=now(), heartbeat_at=now())
            )


def list_jobs(session: Session, limit: int = 50) -> list[Job]:
    """The newest jobs first; running jobs whose process is gone are shown as interrupted."""
    jobs = list(session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))
    session.expunge_all()  # what follows is for display only, never written back
    for job in jobs:
        if job.status == RUNNING and not _holder_alive(job):
            job.status = INTERRUPTED
            job.message = job.message or "the process died; run the same command to resume"
    return jobs


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}; `reunite jobs` lists them")
    return job
