"""The database (``reunite.pipeline.db`` / ``schema``) on real SQLite files: migrations, pragmas,
constraints the pipeline relies on, UTC times, and refusal of databases it must not touch."""

from __future__ import annotations

import re
import sqlite3
import struct
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

import reunite.pipeline.db as db_module
from reunite.errors import StoreError
from reunite.pipeline.db import Database, alembic_config, head_revision, open_database
from reunite.pipeline.schema import (
    Base,
    Camera,
    Crop,
    Embedding,
    IndexVersion,
    IngestChunk,
    Job,
    NaiveDatetimeError,
    Sighting,
    Source,
)

T0 = datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "not" / "yet" / "there" / "reunite.db"


@pytest.fixture
def db(db_path: Path):
    database = open_database(f"sqlite:///{db_path}")
    yield database
    database.dispose()


def add_source(db: Database, camera_id: str = "c1") -> int:
    with db.session() as session:
        session.add(Camera(id=camera_id, name=f"Camera {camera_id}", x=1.0, y=2.0))
        source = Source(camera_id=camera_id, uri="/footage/a.mp4", kind="video", fingerprint="f1")
        session.add(source)
        session.flush()
        return source.id


def new_sighting(source_id: int, track_id: int = 1, chunk_index: int = 0, **kw) -> Sighting:
    fields = dict(
        camera_id="c1",
        source_id=source_id,
        chunk_index=chunk_index,
        track_id=track_id,
        start_time=T0,
        end_time=T0 + timedelta(seconds=4),
        frames=8,
        quality=0.7,
        x1=10.0,
        y1=20.0,
        x2=60.0,
        y2=180.0,
    )
    fields.update(kw)
    return Sighting(**fields)


def new_crop(index: int = 0) -> Crop:
    return Crop(
        sha256=f"{index:064x}",
        frame_index=index,
        time=T0,
        x1=10.0,
        y1=20.0,
        x2=60.0,
        y2=180.0,
        quality=0.5,
        width=50,
        height=160,
    )


def running_job(lock_key: str | None, status: str = "running") -> Job:
    return Job(kind="ingest", status=status, lock_key=lock_key, started_at=T0)


def count(db: Database, model) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# -- opening and migrating ---------------------------------------------------------------------


def test_open_creates_the_folder_and_reopening_keeps_data_and_revision(db_path: Path):
    # Bad input tried: opening an existing, already migrated database again (twice) must neither
    # re-run the migration nor lose rows.
    with open_database(f"sqlite:///{db_path}") as first:
        add_source(first)
    assert db_path.is_file()
    for _ in range(2):
        with open_database(f"sqlite:///{db_path}") as again:
            assert count(again, Camera) == 1
            with again.engine.connect() as conn:
                heads = MigrationContext.configure(conn).get_current_heads()
                assert heads == (head_revision(),)
                tables = set(inspect(conn).get_table_names())
    assert len(head_revision()) == 4  # revisions are numbered 0001, 0002, ...
    assert set(Base.metadata.tables) | {"alembic_version"} <= tables


def test_every_connection_gets_wal_foreign_keys_busy_timeout_and_normal_sync(db: Database):
    # Two connections held at once: the pragmas must be set per connection, not only on the first.
    with db.engine.connect() as a, db.engine.connect() as b:
        for conn in (a, b):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_concurrent_openers_of_fresh_databases_all_succeed(tmp_path: Path):
    # Bad input tried: six threads racing to create the schema of two new files. Without the
    # database lock the losers fail with "table ... already exists"; without the process lock,
    # Alembic's module-global state is shared between threads migrating different files.
    paths = [tmp_path / "race0.db", tmp_path / "race1.db"]
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def opener(path: Path) -> None:
        barrier.wait()
        try:
            open_database(f"sqlite:///{path}").dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener, args=(paths[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for path in paths:
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
                (head_revision(),)
            ]


def test_a_database_of_a_newer_unknown_revision_is_refused(db_path: Path):
    # Bad input tried: a database stamped by a future Reunite with a revision we do not know.
    open_database(f"sqlite:///{db_path}").dispose()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0042_from_the_future'")
    with pytest.raises(StoreError, match=r"0042_from_the_future.*newer Reunite"):
        open_database(f"sqlite:///{db_path}")


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path: Path):
    # Bad input tried: a text file given as the database.
    path = tmp_path / "notes.db"
    content = b"shopping list: milk, eggs\n" * 200
    path.write_bytes(content)
    with pytest.raises(StoreError, match=r"notes\.db is not a SQLite database"):
        open_database(f"sqlite:///{path}")
    assert path.read_bytes() == content


def test_another_programs_sqlite_database_is_refused_and_not_modified(tmp_path: Path):
    # Bad input tried: a valid SQLite file of another program (tables, no Reunite version).
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    with pytest.raises(StoreError, match=r"recipes.*another program"):
        open_database(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {"recipes"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user:secret@host/db", r"mysql is not supported"),  # partial indexes missing
        ("not a url", r"is not a database URL"),
    ],
)
def test_unsupported_or_malformed_urls_are_refused(url: str, message: str):
    with pytest.raises(StoreError, match=message) as info:
        open_database(url)
    assert "secret" not in str(info.value)  # passwords never reach messages


def test_a_folder_given_as_the_database_is_refused(tmp_path: Path):
    # Bad input tried: --db pointing at a folder instead of a file.
    with pytest.raises(StoreError, match="is a folder"):
        open_database(f"sqlite:///{tmp_path}")


def test_in_memory_database_is_shared_by_sessions_and_threads():
    # Without a single shared connection each session would see its own empty database.
    with open_database("sqlite://") as memory:
        add_source(memory)
        seen: list[int] = []
        worker = threading.Thread(target=lambda: seen.append(count(memory, Camera)))
        worker.start()
        worker.join()
        assert seen == [1]


# -- models vs migrations ----------------------------------------------------------------------


def test_migrations_and_models_do_not_drift(db: Database):
    # What `alembic check` does: compare the migrated database with the models.
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def _norm(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def test_what_autogenerate_ignores_also_matches(db: Database):
    # Alembic does not compare CHECK constraints, partial-index conditions, ON DELETE rules or
    # AUTOINCREMENT; the pipeline's safety rests on them, so they are compared here.
    with db.engine.connect() as conn:
        insp = inspect(conn)
        for table in Base.metadata.sorted_tables:
            checks = {
                c.name: _norm(str(c.sqltext))
                for c in table.constraints
                if c.__class__.__name__ == "CheckConstraint"
            }
            reflected = {
                c["name"]: _norm(c["sqltext"]) for c in insp.get_check_constraints(table.name)
            }
            assert reflected == checks, table.name

            wheres = {
                i.name: _norm(str(i.dialect_options["sqlite"]["where"]))
                for i in table.indexes
                if i.dialect_options["sqlite"]["where"] is not None
            }
            reflected_wheres = {
                i["name"]: _norm(str(i["dialect_options"]["sqlite_where"]))
                for i in insp.get_indexes(table.name)
                if "sqlite_where" in i.get("dialect_options", {})
            }
            assert reflected_wheres == wheres, table.name

            on_delete = {fk.name: fk.ondelete for fk in table.foreign_key_constraints}
            reflected_fks = {
                fk["name"]: fk["options"].get("ondelete")
                for fk in insp.get_foreign_keys(table.name)
            }
            assert reflected_fks == on_delete, table.name

            sql = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": table.name}
            ).scalar()
            assert ("AUTOINCREMENT" in sql) == bool(table.kwargs.get("sqlite_autoincrement"))
    assert reflected_wheres is not None


def test_downgrade_to_nothing_and_upgrade_again(db: Database):
    # The downgrade must really undo the upgrade (tables in dependency order, no leftovers).
    config = alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
        command.upgrade(config, "head")
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


# -- constraints -------------------------------------------------------------------------------


def test_foreign_keys_are_enforced(db: Database):
    # Bad input tried: a crop of a sighting that does not exist.
    add_source(db)
    crop = new_crop()
    crop.sighting_id = 999
    with pytest.raises(IntegrityError, match="FOREIGN KEY"), db.session() as session:
        session.add(crop)
    assert count(db, Crop) == 0


def test_deleting_a_sighting_in_sql_deletes_its_crops_and_embeddings(db: Database):
    # A bulk DELETE (as retention does) bypasses the ORM: the database itself must cascade.
    source_id = add_source(db)
    with db.session() as session:
        for track in (1, 2):
            sighting = new_sighting(source_id, track_id=track)
            sighting.crops = [new_crop(track * 10 + i) for i in range(3)]
            sighting.embeddings = [Embedding.from_array("osnet", np.ones(4) * track)]
            session.add(sighting)
    with db.session() as session:
        session.execute(delete(Sighting).where(Sighting.track_id == 1))
    assert count(db, Crop) == 3 and count(db, Embedding) == 1
    with db.session() as session:
        remaining = session.scalars(select(Crop.sha256)).all()
        assert all(int(sha, 16) // 10 == 2 for sha in remaining)
        session.delete(session.scalars(select(Sighting)).one())  # the ORM path
    assert count(db, Crop) == 0 and count(db, Embedding) == 0


def test_a_camera_with_sightings_cannot_be_deleted_but_a_source_takes_its_chunks(db: Database):
    source_id = add_source(db)
    with db.session() as session:
        session.add(
            IngestChunk(
                source_id=source_id, chunk_index=0, frames=50, sightings=0, next_frame_index=50
            )
        )
        session.add(
            IngestChunk(
                source_id=source_id, chunk_index=1, frames=50, sightings=0, next_frame_index=50
            )
        )
    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(delete(Camera).where(Camera.id == "c1"))  # it still has a source
    with db.session() as session:
        session.execute(delete(Source).where(Source.id == source_id))
    assert count(db, IngestChunk) == 0


def test_a_chunk_can_never_be_stored_twice(db: Database):
    # Bad input tried: the same (source, chunk, track) inserted again, as a resumed ingest would.
    source_id = add_source(db)
    with db.session() as session:
        session.add(new_sighting(source_id, track_id=7))
    with pytest.raises(IntegrityError, match="UNIQUE"), db.session() as session:
        session.add(new_sighting(source_id, track_id=7))
    with db.session() as session:  # another track, or the same track in the next chunk: fine
        session.add(new_sighting(source_id, track_id=8))
        session.add(new_sighting(source_id, track_id=7, chunk_index=1))
    assert count(db, Sighting) == 3


def test_one_embedding_per_sighting_and_model(db: Database):
    source_id = add_source(db)
    with db.session() as session:
        sighting = new_sighting(source_id)
        sighting.embeddings = [Embedding.from_array("osnet", np.ones(4))]
        session.add(sighting)
        session.flush()
        sighting_id = sighting.id
    with pytest.raises(IntegrityError, match="UNIQUE"), db.session() as session:
        session.add(Embedding.from_array("osnet", np.zeros(4), sighting_id=sighting_id))
    with db.session() as session:
        session.add(Embedding.from_array("resnet50", np.zeros(8), sighting_id=sighting_id))


def test_two_running_jobs_can_never_hold_the_same_lock(db: Database):
    with db.session() as session:
        session.add(running_job("camera:c1"))
    # Bad input tried: a second running job on the same camera.
    with pytest.raises(IntegrityError, match="UNIQUE"), db.session() as session:
        session.add(running_job("camera:c1"))
    with db.session() as session:
        session.add(running_job("camera:c2"))  # another lock
        session.add(running_job(None))  # no lock at all, twice
        session.add(running_job(None))
        session.add(running_job("camera:c1", status="done"))  # finished jobs keep their key
        session.add(running_job("camera:c1", status="failed"))
    # Once the holder is done, a new job may take the lock.
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.lock_key == "camera:c1", Job.status == "running")
            .values(status="done")
        )
        session.add(running_job("camera:c1"))
    with db.session() as session:
        running = session.scalars(select(Job).where(Job.status == "running")).all()
        assert sorted(str(j.lock_key) for j in running) == [
            "None",
            "None",
            "camera:c1",
            "camera:c2",
        ]


def test_a_misspelt_status_is_refused(db: Database):
    # Bad input tried: "runing" would slip past the lock index if the database accepted it.
    with pytest.raises(IntegrityError, match="CHECK"), db.session() as session:
        session.add(running_job("camera:c1", status="runing"))
    with pytest.raises(IntegrityError, match="CHECK"), db.session() as session:
        session.add(IndexVersion(model="m", dim=4, kind="flat", status="live", path="x"))


def test_at_most_one_active_index_version(db: Database):
    def version(status: str) -> IndexVersion:
        return IndexVersion(model="osnet", dim=512, kind="flat", status=status, path="indexes/v")

    with db.session() as session:
        session.add_all([version("active"), version("retired"), version("retired")])
        session.add(version("building"))
    with pytest.raises(IntegrityError, match="UNIQUE"), db.session() as session:
        session.add(version("active"))


def test_ids_are_never_reused_after_a_delete(db: Database):
    # The vector index refers to sightings by id: a purged id handed out again would make a
    # stale index entry look like the new sighting.
    source_id = add_source(db)
    with db.session() as session:
        first = new_sighting(source_id, track_id=1)
        session.add(first)
    with db.session() as session:
        session.execute(delete(Sighting))
    with db.session() as session:
        second = new_sighting(source_id, track_id=2)
        session.add(second)
    assert second.id > first.id


def test_end_before_start_is_refused(db: Database):
    source_id = add_source(db)
    with pytest.raises(IntegrityError, match="CHECK"), db.session() as session:
        session.add(new_sighting(source_id, end_time=T0 - timedelta(seconds=1)))


# -- times and values --------------------------------------------------------------------------


def test_utc_datetimes_round_trip_from_any_zone(db: Database):
    # Stored as naive UTC, returned aware in UTC, equal to what was written (microseconds kept).
    source_id = add_source(db)
    paris_summer = timezone(timedelta(hours=2))
    local = datetime(2025, 7, 1, 12, 30, 15, 654321, tzinfo=paris_summer)
    with db.session() as session:
        session.add(
            new_sighting(source_id, start_time=local, end_time=local + timedelta(seconds=3))
        )
    with db.session() as session:
        sighting = session.scalars(select(Sighting)).one()
        assert sighting.start_time == local
        assert sighting.start_time.tzinfo is UTC
        assert sighting.start_time.hour == 10 and sighting.start_time.microsecond == 654321
        raw = session.execute(text("SELECT start_time FROM sightings")).scalar()
        assert raw.startswith("2025-07-01 10:30:15.654321")
        # A bound in another zone compares in UTC: 10:30:15 UTC is after 12:00 at +02:00.
        noon_paris = datetime(2025, 7, 1, 12, 0, tzinfo=paris_summer)
        found = session.scalars(select(Sighting.id).where(Sighting.start_time > noon_paris)).all()
        assert found == [sighting.id]


def test_naive_datetimes_are_refused_and_nothing_is_written(db: Database):
    # Bad input tried: datetime.now() without a zone, and a string instead of a datetime.
    source_id = add_source(db)
    for bad in (datetime(2025, 7, 1, 12, 0), "2025-07-01 12:00:00"):
        with pytest.raises(ValueError, match="datetime") as info, db.session() as session:
            session.add(new_sighting(source_id, start_time=bad))
        assert isinstance(info.value, NaiveDatetimeError)
    assert count(db, Sighting) == 0
    with pytest.raises(ValueError, match="naive"), db.session() as session:
        session.scalars(select(Job).where(Job.created_at > datetime(2025, 1, 1))).all()


def test_embedding_vectors_are_float32_little_endian_and_round_trip(db: Database):
    source_id = add_source(db)
    vector = np.array([0.5, -1.25, 3.0e-8, 7.0], dtype=np.float64)
    with db.session() as session:
        sighting = new_sighting(source_id)
        sighting.embeddings = [Embedding.from_array("osnet", vector)]
        session.add(sighting)
    with db.session() as session:
        stored = session.scalars(select(Embedding)).one()
        assert stored.dim == 4
        assert stored.vector == struct.pack("<4f", *vector)
        back = stored.array()
        assert back.dtype == np.float32 and back.flags.writeable
        np.testing.assert_array_equal(back, vector.astype(np.float32))
    # Bad input tried: a matrix, an empty vector, NaN.
    for bad in (np.ones((2, 4)), np.array([]), np.array([1.0, np.nan])):
        with pytest.raises(ValueError):
            Embedding.from_array("osnet", bad)
    corrupt = Embedding(id=5, model="osnet", dim=4, vector=b"\x00" * 12)
    with pytest.raises(StoreError, match="corrupt"):
        corrupt.array()


def test_json_lists_and_dicts_track_in_place_changes(db: Database):
    with db.session() as session:
        job = running_job("index")
        session.add(job)
    with db.session() as session:
        job = session.get(Job, job.id)
        job.errors.append("frame 12: unreadable")
        job.checkpoint["chunk"] = 3
    with db.session() as session:
        job = session.get(Job, job.id)
        assert job.errors == ["frame 12: unreadable"] and job.checkpoint == {"chunk": 3}
        assert job.params == {} and job.progress_done == 0 and job.created_at.tzinfo is UTC


# -- sessions ----------------------------------------------------------------------------------


def test_session_commits_on_success_rolls_back_on_error_and_rows_stay_readable(db: Database):
    with db.session() as session:
        camera = Camera(id="c9", name="Station", x=0.0, y=0.0)
        session.add(camera)
    assert camera.name == "Station"  # readable after the session ended (no expired attributes)
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(Camera(id="c10", name="Market", x=0.0, y=0.0))
        session.flush()
        raise RuntimeError("the body failed")
    with db.session() as session:
        assert session.scalars(select(Camera.id)).all() == ["c9"]


def test_a_database_locked_past_the_busy_timeout_is_a_store_error(db_path, monkeypatch):
    # Another process holds the write lock and never lets go; the wait must end in a clear error.
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_S", 0.3)
    with open_database(f"sqlite:///{db_path}") as database:
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            start = time.monotonic()
            with pytest.raises(StoreError, match="locked"), database.session() as session:
                session.add(Camera(id="c1", name="Gate", x=0.0, y=0.0))
            assert time.monotonic() - start >= 0.25
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with database.session() as session:  # usable again once the lock is gone
            session.add(Camera(id="c1", name="Gate", x=0.0, y=0.0))
