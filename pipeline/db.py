"""Opening the database: SQLite tuned for several processes (WAL, a busy timeout, foreign keys), or
PostgreSQL by URL, always brought to the newest schema before use.

Every open runs the Alembic migrations programmatically (no alembic.ini), inside one transaction
that also serialises concurrent openers: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL. Two processes starting on a fresh database therefore cannot both create the tables,
and a migration that fails leaves the schema as it was (SQLite and PostgreSQL both roll back DDL).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from reunite.errors import DiskFullError, ReuniteError, StoreError
from reunite.pipeline.schema import Base

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
"""The lock and single-active-index rules are partial unique indexes, which other backends
(MySQL, ...) would silently turn into plain unique ones."""
BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write transaction before giving up."""
_PG_MIGRATION_LOCK = 0x5245554E  # "REUN": the advisory lock key that serialises migrations
_ALEMBIC_LOCK = threading.Lock()
"""Alembic keeps the running migration in module globals (``alembic.context``, ``alembic.op``):
two threads migrating at once, even different databases, corrupt each other's state."""


class Database:
    """An open, migrated database. ``session()`` is the unit of work: commit or roll back."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        # expire_on_commit=False: rows read in a session stay readable after it ends (the caller
        # gets plain values back, not objects that would query a closed session).
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return _display(self.engine.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back if it raises.

        Integrity errors propagate unchanged (callers use them, e.g. the job lock); a locked
        or full database becomes a ``StoreError`` / ``DiskFullError`` that says what to do.
        """
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            raise _operational_error(exc, self.display_url) from exc

    def dispose(self) -> None:
        """Close every pooled connection (SQLite then checkpoints the WAL into the file)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"


def open_database(url: str) -> Database:
    """Open (creating if needed) the database at ``url`` and bring its schema to the newest.

    ``sqlite:///path/to/reunite.db`` creates the folder; ``sqlite://`` is an in-memory database
    (one per ``Database``); ``postgresql+psycopg://user:pass@host/db`` needs the psycopg driver.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"{url!r} is not a database URL; use e.g. sqlite:///data/reunite.db or "
            "postgresql+psycopg://user:password@host/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"database URL {_display(parsed)}: {backend} is not supported; Reunite runs on "
            "SQLite (sqlite:///path.db) or PostgreSQL (postgresql+psycopg://...)"
        )
    try:
        engine = _sqlite_engine(parsed) if backend == "sqlite" else _postgres_engine(parsed)
    except ImportError as exc:
        raise StoreError(
            f"the driver for {_display(parsed)} is not installed ({exc}); install it, e.g. "
            "`pip install psycopg[binary]` for postgresql+psycopg URLs"
        ) from None
    try:
        _migrate(engine)
    except ReuniteError:
        engine.dispose()
        raise
    except OperationalError as exc:
        engine.dispose()
        raise _operational_error(exc, _display(parsed)) from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise _open_error(exc, parsed) from exc
    return Database(url, engine)


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration of Reunite's migrations (for tooling; ``open_database`` migrates).

    With ``url``, Alembic commands (``command.revision(..., autogenerate=True)``,
    ``command.upgrade(cfg, "head", sql=True)`` for a SQL script) connect there by themselves.
    """
    config = Config()
    # ConfigParser interpolates '%': escape it in paths and URLs (a password may hold one).
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest schema revision this version of Reunite knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


# -- engines ----------------------------------------------------------------------------------


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    kwargs: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    if in_memory:
        # One connection shared by all threads, or each would see its own empty database.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    elif not url.query.get("uri"):
        path = Path(database)
        if path.is_dir():
            raise StoreError(
                f"{path} is a folder; give the database a file name, e.g. {path}/reunite.db"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder {path.parent} for the database: {exc.strerror}"
            ) from exc
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: the journal-mode switch itself may have to wait for another opener.
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL: readers (the API) never block the writer (an ingest), nor it them.
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() not in ("wal", "memory"):
            log.warning("SQLite refused WAL mode (kept %s); concurrent access will be slower", mode)
        # NORMAL is durable across application crashes in WAL mode; only a power loss may lose the
        # last commits, never corrupt the file.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _postgres_engine(url: URL) -> Engine:
    # pre_ping: a server restart between two jobs must not fail the next one with a dead connection.
    return create_engine(url, pool_pre_ping=True)


# -- migrations --------------------------------------------------------------------------------


def _migrate(engine: Engine) -> None:
    config = alembic_config()
    with _ALEMBIC_LOCK:
        script = ScriptDirectory.from_config(config)
        heads = set(script.get_heads())
    with engine.connect() as connection:
        _lock_for_migration(connection)
        current = set(MigrationContext.configure(connection).get_current_heads())
        unknown = sorted(rev for rev in current if not _known(script, rev))
        if unknown:
            raise StoreError(
                f"the database {_display(engine.url)} has schema revision {', '.join(unknown)}, "
                f"which this version of Reunite does not know (it knows up to "
                f"{', '.join(sorted(heads))}): it was written by a newer Reunite; upgrade Reunite, "
                "or use another database"
            )
        if not current:
            _refuse_foreign(connection, engine.url)
        if current != heads:
            log.debug("migrating %s to schema %s", _display(engine.url), ", ".join(sorted(heads)))
            config.attributes["connection"] = connection
            # Taken after the database lock, and never the other way round: no deadlock.
            with _ALEMBIC_LOCK:
                command.upgrade(config, "heads")
        connection.commit()


def _lock_for_migration(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Takes the write lock now (waiting up to the busy timeout), so the check of the current
        # revision and the upgrade see the same database.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except (RevisionError, CommandError):
        return False


def _refuse_foreign(connection: Connection, url: URL) -> None:
    """Never add tables to a database that another program uses (or that clashes with ours)."""
    tables = set(inspect(connection).get_table_names())
    clash = tables & set(Base.metadata.tables)
    # A SQLite file belongs to one program; a PostgreSQL database may be shared (then only a clash
    # with our table names is refused).
    foreign = tables if connection.dialect.name == "sqlite" else clash
    if foreign:
        raise StoreError(
            f"the database {_display(url)} already holds tables ({', '.join(sorted(foreign)[:8])}) "
            "but no Reunite schema version: it belongs to another program; point the database "
            "URL at a new file or an empty database"
        )


# -- errors ------------------------------------------------------------------------------------


def _display(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _operational_error(exc: OperationalError, where: str) -> ReuniteError:
    reason = str(exc.orig)
    if "disk is full" in reason or "No space left" in reason:
        return DiskFullError(
            f"the disk holding the database {where} is full; the last change was rolled back. "
            "Free some space and run the command again"
        )
    if "database is locked" in reason:
        return StoreError(
            f"the database {where} stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s; "
            "run the command again when the other job has finished (`reunite jobs` lists them)"
        )
    return StoreError(f"the database {where} refused the operation: {reason}")


def _open_error(exc: SQLAlchemyError, url: URL) -> StoreError:
    reason = str(getattr(exc, "orig", None) or exc)
    if isinstance(exc, DatabaseError) and "not a database" in reason:
        return StoreError(
            f"{url.database} is not a SQLite database ({reason}); point the database URL at a "
            "new file or at an existing Reunite database"
        )
    return StoreError(f"cannot open the database {_display(url)}: {reason}")
