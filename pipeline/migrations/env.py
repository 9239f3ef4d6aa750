"""Alembic environment, configured from code: ``reunite.pipeline.db`` passes the connection in
``config.attributes["connection"]``; there is no alembic.ini.

Developers making a new revision after changing ``schema.py``::

    from alembic import command
    from reunite.pipeline.db import alembic_config, open_database
    open_database("sqlite:///dev.db").dispose()  # a database at the current head
    command.revision(
        alembic_config("sqlite:///dev.db"), "what changed", autogenerate=True, rev_id="0002"
    )

then review the file: autogenerate misses partial-index conditions, CHECK constraints and
``sqlite_autoincrement``. ``render_as_batch`` makes its ALTERs work on SQLite (copy-and-move) and
PostgreSQL (plain ALTER TABLE) alike.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from reunite.pipeline.schema import Base

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    # `--sql` output for a DBA who applies the schema by hand (PostgreSQL).
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: use reunite.pipeline.db.alembic_config(url)")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()
