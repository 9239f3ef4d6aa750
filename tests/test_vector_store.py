"""The camera-day sharded FAISS store: exact results, filters, changes, persistence, damage."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
import pytest

from reunite.errors import InvalidOptionError, NotFoundError, VectorIndexError
from reunite.pipeline import vector_store as vs
from reunite.pipeline.vector_store import FaissShardStore, SearchFilter

faiss.omp_set_num_threads(1)

DIM = 24
MODEL = "test-model@1"
T0 = datetime(2024, 5, 1, tzinfo=UTC)  # midnight: days are T0, T0+1d, ...
CAMERAS = ("cam-1", "gate/north", "Bahnhofstraße 7")


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def random_rows(n: int, seed: int = 0, days: int = 3):
    """n random sightings over ``days`` days and the three cameras, with ids 100, 101, ..."""
    rng = np.random.default_rng(seed)
    vectors = unit(rng.standard_normal((n, DIM)))
    ids = np.arange(100, 100 + n, dtype=np.int64)
    minutes = rng.integers(0, days * 1440, n)
    times = [
        T0 + timedelta(minutes=int(m), seconds=int(s))
        for m, s in zip(minutes, ids % 60, strict=True)
    ]
    cameras = [CAMERAS[i % len(CAMERAS)] for i in range(n)]
    return ids, vectors, cameras, times


def brute_force(queries, ids, vectors, cameras, times, k, where=None):
    """The reference: numpy inner products over the rows the filter allows, sorted."""
    where = where or SearchFilter()
    keep = np.array(
        [
            (where.start is None or t >= where.start)
            and (where.end is None or t < where.end)
            and (where.cameras is None or c in where.cameras)
            for c, t in zip(cameras, times, strict=True)
        ],
        dtype=bool,
    )
    scores = queries @ vectors[keep].T
    order = np.lexsort((np.broadcast_to(ids[keep], scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), ids[keep][order]


@pytest.fixture
def filled(tmp_path):
    rows = random_rows(600)
    store = FaissShardStore.open(tmp_path / "index", model=MODEL, dim=DIM)
    store.add(*rows)
    return store, rows


def test_flat_search_equals_brute_force(filled):
    # Bad input tried: queries that are not normalised and k larger than some windows hold.
    store, (ids, vectors, cameras, times) = filled
    queries = np.random.default_rng(1).standard_normal((7, DIM)).astype(np.float32)
    windows = [
        SearchFilter(),
        SearchFilter(start=T0 + timedelta(hours=30), end=T0 + timedelta(hours=50)),
        SearchFilter(cameras=frozenset({"gate/north"})),
        SearchFilter(start=T0 + timedelta(hours=12), cameras=frozenset(CAMERAS[1:])),
        SearchFilter(end=T0 + timedelta(hours=3)),
    ]
    for where in windows:
        scores, found = store.search(queries, 15, where)
        want_scores, want_ids = brute_force(queries, ids, vectors, cameras, times, 15, where)
        assert found.dtype == np.int64 and scores.dtype == np.float32
        np.testing.assert_array_equal(found, want_ids)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


def test_time_boundaries_are_start_inclusive_end_exclusive(tmp_path):
    # Bad input tried: sightings exactly on the window's edges and one millisecond either side.
    store = FaissShardStore.open(tmp_path, model=MODEL, dim=DIM)
    edge_start, edge_end = T0 + timedelta(hours=23), T0 + timedelta(days=1, hours=1)
    times = [
        edge_start - timedelta(milliseconds=1),
        edge_start,
        edge_end - timedelta(milliseconds=1),
        edge_end,
    ]
    vectors = unit(np.ones((4, DIM)))
    store.add(np.array([1, 2, 3, 4]), vectors, ["c"] * 4, times)
    _, found = store.search(vectors[:1], 10, SearchFilter(start=edge_start, end=edge_end))
    assert sorted(found[0][found[0] >= 0].tolist()) == [2, 3]
    assert found[0, 2:].tolist() == [-1] * 8


def test_empty_windows_give_padded_results(filled):
    # Bad input tried: start == end, start after end, an empty camera set, a window with no data,
    # an unknown camera.
    store, _ = filled
    queries = unit(np.ones((2, DIM)))
    empty = [
        SearchFilter(start=T0 + timedelta(hours=5), end=T0 + timedelta(hours=5)),
        SearchFilter(start=T0 + timedelta(days=2), end=T0 + timedelta(days=1)),
        SearchFilter(cameras=frozenset()),
        SearchFilter(start=T0 + timedelta(days=40)),
        SearchFilter(cameras=frozenset({"no-such-camera"})),
    ]
    for where in empty:
        scores, found = store.search(queries, 5, where)
        assert scores.shape == found.shape == (2, 5)
        assert (found == -1).all() and np.isneginf(scores).all()


def test_k_beyond_the_matches_is_padded(filled):
    # Bad input tried: k = 1000 over a 600-row store, and k = 0.
    store, _ = filled
    scores, found = store.search(unit(np.ones((1, DIM))), 1000)
    assert (found[0, :600] >= 0).all() and (found[0, 600:] == -1).all()
    assert np.isneginf(scores[0, 600:]).all() and np.all(np.diff(scores[0, :600]) <= 0)
    assert len(set(found[0, :600].tolist())) == 600
    with pytest.raises(InvalidOptionError):
        store.search(unit(np.ones((1, DIM))), 0)


def test_readding_an_id_replaces_it_even_in_another_shard(filled):
    # Bad input tried: an existing id re-added with another camera and day, and an id repeated
    # inside one batch (the last one wins).
    store, (_ids, _vectors, cameras, times) = filled
    new = unit(np.random.default_rng(9).standard_normal((2, DIM)))
    before = store.count()
    store.add(np.array([100, 100]), new, ["elsewhere", "elsewhere"], [T0, T0 + timedelta(days=9)])
    assert store.count() == before
    old_key = (cameras[0], times[0].date())
    assert 100 not in store.shard_ids(old_key).tolist()
    assert store.shard_ids(("elsewhere", (T0 + timedelta(days=9)).date())).tolist() == [100]
    np.testing.assert_allclose(store.get_vectors(np.array([100])), new[1:], atol=1e-6)
    _, found = store.search(new[1:], 1)
    assert found[0, 0] == 100


def test_remove_and_get_vectors(filled):
    # Bad input tried: removing unknown ids, asking for vectors of removed and unknown ids.
    store, (ids, vectors, cameras, times) = filled
    assert store.remove(np.array([100, 101, 999_999])) == 2
    assert store.remove(np.array([100])) == 0
    assert store.count() == 598
    np.testing.assert_allclose(store.get_vectors(ids[[5, 2, 7]]), vectors[[5, 2, 7]], atol=1e-6)
    with pytest.raises(NotFoundError, match="101"):
        store.get_vectors(np.array([102, 101]))
    _, found = store.search(vectors[:2], 600)
    assert not {100, 101} & set(found.ravel().tolist())
    # Rows stay aligned with FAISS's after removals and re-adds: still exact.
    store.remove(ids[10:300:7])
    store.add(ids[20:23], vectors[30:33], ["moved"] * 3, [T0 + timedelta(hours=1)] * 3)
    present = np.setdiff1d(np.arange(600), np.r_[0, 1, np.arange(10, 300, 7), 20, 21, 22])
    ref_ids = np.r_[ids[present], ids[20:23]]
    ref_vectors = np.r_[vectors[present], vectors[30:33]]
    ref_cameras = [cameras[i] for i in present] + ["moved"] * 3
    ref_times = [times[i] for i in present] + [T0 + timedelta(hours=1)] * 3
    where = SearchFilter(start=T0 + timedelta(minutes=30), end=T0 + timedelta(days=2))
    want = brute_force(vectors[:9], ref_ids, ref_vectors, ref_cameras, ref_times, 20, where)
    got = store.search(vectors[:9], 20, where)
    np.testing.assert_array_equal(got[1], want[1])


def test_remove_before_drops_old_days_and_filters_the_cutoff_day(filled):
    # Bad input tried: a cutoff mid-day (the cutoff day must be filtered, not dropped).
    store, (ids, vectors, _cameras, times) = filled
    store.flush()
    old_files = {
        e["file"] for e in json.loads((store.root / "manifest.json").read_text())["shards"]
    }
    cutoff = T0 + timedelta(days=1, hours=6)
    expected = sum(t < cutoff for t in times)
    assert store.remove_before(cutoff) == expected
    assert store.count() == 600 - expected
    assert all(key[1] >= cutoff.date() for key in store.shards())
    assert all(info.min_time >= cutoff for info in store.shards().values())
    store.flush()
    # The first day's files are gone from disk, not just from the manifest.
    first_day = {f for f in old_files if T0.date().isoformat() in f}
    assert first_day and not any((store.root / f).exists() for f in first_day)
    reopened = FaissShardStore.open(store.root, model=MODEL, dim=DIM)
    _, found = reopened.search(vectors, 600)
    kept = {int(i) for i, t in zip(ids, times, strict=True) if t >= cutoff}
    assert set(found.ravel().tolist()) - {-1} == kept


def test_replace_and_drop_shard(filled):
    # Bad input tried: a replacement with a time on another day, and ids living in other shards.
    store, (ids, vectors, cameras, times) = filled
    key = (CAMERAS[0], T0.date())
    other = next(int(i) for i, c, t in zip(ids, cameras, times, strict=True) if c == CAMERAS[1])
    with pytest.raises(InvalidOptionError, match="not on that UTC day"):
        store.replace_shard(key, np.array([1]), vectors[:1], [T0 + timedelta(days=1)])
    new = unit(np.random.default_rng(3).standard_normal((2, DIM)))
    store.replace_shard(key, np.array([other, 5]), new, [T0, T0 + timedelta(hours=1)])
    assert store.shard_ids(key).tolist() == [5, other]
    assert store.shards()[key].count == 2
    assert all(other not in store.shard_ids(k) for k in store.shards() if k != key)
    np.testing.assert_allclose(store.get_vectors(np.array([other])), new[:1], atol=1e-6)
    store.drop_shard(key)
    store.drop_shard(key)  # again: a no-op
    assert key not in store.shards() and store.shard_ids(key).size == 0
    with pytest.raises(NotFoundError):
        store.get_vectors(np.array([5]))


def test_persistence_round_trip(filled):
    # Bad input tried: reopening twice with a changed search-time option (allowed).
    store, (ids, vectors, _, _) = filled
    store.flush()
    queries = vectors[::50]
    want = store.search(queries, 10, SearchFilter(start=T0 + timedelta(hours=20)))
    reopened = FaissShardStore.open(store.root, model=MODEL, dim=DIM, create=False)
    got = reopened.search(queries, 10, SearchFilter(start=T0 + timedelta(hours=20)))
    np.testing.assert_array_equal(want[1], got[1])
    np.testing.assert_allclose(want[0], got[0])
    assert reopened.count() == 600 and reopened.verify() == []
    assert reopened.shards().keys() == store.shards().keys()
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert manifest["count"] == 600 and manifest["model"] == MODEL and manifest["dim"] == DIM
    for entry in manifest["shards"]:
        info = reopened.shards()[(entry["camera"], date.fromisoformat(entry["day"]))]
        assert info.sha256 == entry["sha256"] and info.count == entry["count"]
        assert info.min_time.isoformat() == entry["min_time"]
    np.testing.assert_allclose(reopened.get_vectors(ids[::7]), vectors[::7], atol=1e-6)


def test_other_model_dim_kind_or_corrupt_manifest_is_refused(tmp_path):
    # Bad input tried: another model, another dimension, another kind, a garbled manifest, a
    # manifest pointing outside the index, and no index with create=False.
    root = tmp_path / "ix"
    with pytest.raises(VectorIndexError, match="missing"):
        FaissShardStore.open(root, model=MODEL, dim=DIM, create=False)
    store = FaissShardStore.open(root, model=MODEL, dim=DIM)
    store.add(*random_rows(10))
    store.flush()
    with pytest.raises(VectorIndexError, match="new index version"):
        FaissShardStore.open(root, model="other@2", dim=DIM)
    with pytest.raises(VectorIndexError, match="dimension"):
        FaissShardStore.open(root, model=MODEL, dim=DIM * 2)
    with pytest.raises(VectorIndexError, match="kind"):
        FaissShardStore.open(root, model=MODEL, dim=DIM, kind="hnsw")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["shards"][0]["file"] = "../../etc/passwd"
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VectorIndexError, match="corrupt"):
        FaissShardStore.open(root, model=MODEL, dim=DIM)
    (root / "manifest.json").write_text('{"format": "reunite-faiss-sh')
    with pytest.raises(VectorIndexError, match="unreadable"):
        FaissShardStore.open(root, model=MODEL, dim=DIM)


def test_bad_vectors_times_and_options_are_refused(tmp_path):
    # Bad input tried: wrong dimension, unnormalised vectors, NaN, naive datetimes, negative ids,
    # mismatched lengths, an empty camera id, unknown kinds and options.
    store = FaissShardStore.open(tmp_path, model=MODEL, dim=DIM)
    good = unit(np.ones((1, DIM)))
    with pytest.raises(VectorIndexError, match="dimension"):
        store.add(np.array([1]), np.ones((1, DIM + 1), np.float32), ["c"], [T0])
    with pytest.raises(VectorIndexError, match="normalise"):
        store.add(np.array([1]), good * 3, ["c"], [T0])
    with pytest.raises(VectorIndexError, match="NaN"):
        store.add(np.array([1]), np.full((1, DIM), np.nan, np.float32), ["c"], [T0])
    with pytest.raises(InvalidOptionError, match="naive"):
        store.add(np.array([1]), good, ["c"], [datetime(2024, 5, 1)])
    with pytest.raises(InvalidOptionError, match="naive"):
        store.search(good, 1, SearchFilter(start=datetime(2024, 5, 1)))
    with pytest.raises(InvalidOptionError, match="set of camera ids"):
        store.search(good, 1, SearchFilter(cameras="cam-1"))  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match=">= 0"):
        store.add(np.array([-1]), good, ["c"], [T0])
    with pytest.raises(InvalidOptionError, match="one camera"):
        store.add(np.array([1, 2]), np.repeat(good, 2, 0), ["c"], [T0, T0])
    with pytest.raises(InvalidOptionError, match="camera"):
        store.add(np.array([1]), good, [""], [T0])
    with pytest.raises(InvalidOptionError, match="kind"):
        FaissShardStore.open(tmp_path / "x", model=MODEL, dim=DIM, kind="annoy")
    with pytest.raises(InvalidOptionError, match="efSearch"):
        FaissShardStore.open(tmp_path / "x", model=MODEL, dim=DIM, kind="flat", efSearch=5)
    with pytest.raises(InvalidOptionError, match="divide"):
        FaissShardStore.open(tmp_path / "x", model=MODEL, dim=DIM, kind="ivfpq", m=5)
    assert store.count() == 0


def test_odd_camera_ids_get_safe_distinct_folders(tmp_path):
    # Bad input tried: "/", "..", non-ASCII, ids differing only in case, a very long id.
    odd = ["a/b", "a_b", "..", "Ünter den Linden 北口", "A", "a", "x" * 300]
    store = FaissShardStore.open(tmp_path / "ix", model=MODEL, dim=DIM)
    vectors = unit(np.random.default_rng(2).standard_normal((len(odd), DIM)))
    store.add(np.arange(len(odd)), vectors, odd, [T0] * len(odd))
    store.flush()
    folders = {p.name for p in (tmp_path / "ix" / "shards").iterdir()}
    assert len(folders) == len(odd)
    assert all(p.is_relative_to(tmp_path / "ix") for p in (tmp_path / "ix").rglob("*"))
    assert all(len(name) < 80 and name.isascii() and "/" not in name for name in folders)
    reopened = FaissShardStore.open(tmp_path / "ix", model=MODEL, dim=DIM)
    assert {key[0] for key in reopened.shards()} == set(odd)
    for i, camera in enumerate(odd):
        _, found = reopened.search(vectors[i : i + 1], 3, SearchFilter(cameras=frozenset({camera})))
        assert found[0].tolist() == [i, -1, -1]


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_finds_flipped_bytes_and_missing_files_and_search_survives(filled, caplog):
    # Bad input tried: one flipped bit in an index file, a deleted index file, a deleted
    # metadata file; then an add into a damaged shard before it is rebuilt.
    store, (ids, vectors, cameras, times) = filled
    store.flush()
    assert store.verify() == []
    manifest = json.loads((store.root / "manifest.json").read_text())
    flipped, deleted, no_meta = manifest["shards"][:3]
    _flip_byte(store.root / flipped["file"])
    (store.root / deleted["file"]).unlink()
    (store.root / no_meta["meta_file"]).unlink()
    problems = store.verify()
    assert len(problems) == 3, problems
    for entry, word in ((flipped, "corrupt"), (deleted, "missing"), (no_meta, "missing")):
        assert any(entry["camera"] in p and entry["day"] in p and word in p for p in problems), (
            problems
        )

    with caplog.at_level(logging.WARNING, logger="reunite.pipeline.vector_store"):
        reopened = FaissShardStore.open(store.root, model=MODEL, dim=DIM)
        _scores, found = reopened.search(vectors[:5], 600)  # no crash
    assert sum("left out of searches" in r.getMessage() for r in caplog.records) == 3
    bad_keys = {(e["camera"], date.fromisoformat(e["day"])) for e in (flipped, deleted, no_meta)}
    lost = {
        int(i) for i, c, t in zip(ids, cameras, times, strict=True) if (c, t.date()) in bad_keys
    }
    assert set(found.ravel().tolist()) - {-1} == set(ids.tolist()) - lost
    assert reopened.count() == 600 - len(lost)

    # New sightings of a damaged camera-day are kept, and the shard stays flagged until rebuilt.
    key = (flipped["camera"], date.fromisoformat(flipped["day"]))
    fresh = unit(np.ones((1, DIM)))
    reopened.add(np.array([5000]), fresh, [key[0]], [T0.replace(day=key[1].day)])
    reopened.flush()
    assert any("rebuild it with replace_shard" in p and key[0] in p for p in reopened.verify())
    for entry in (flipped, deleted, no_meta):
        key = (entry["camera"], date.fromisoformat(entry["day"]))
        rows = [
            i for i, (c, t) in enumerate(zip(cameras, times, strict=True)) if (c, t.date()) == key
        ]
        reopened.replace_shard(key, ids[rows], vectors[rows], [times[i] for i in rows])
    reopened.flush()
    assert reopened.verify() == []
    assert reopened.count() == 600


def test_window_queries_do_not_read_shards_outside_the_window(filled):
    # Bad input tried: every shard file outside the window is corrupt; a query of the window
    # must neither load nor notice them.
    store, (_, vectors, _, _) = filled
    store.flush()
    for entry in json.loads((store.root / "manifest.json").read_text())["shards"]:
        if entry["day"] != (T0 + timedelta(days=2)).date().isoformat():
            _flip_byte(store.root / entry["file"])
    reopened = FaissShardStore.open(store.root, model=MODEL, dim=DIM)
    where = SearchFilter(start=T0 + timedelta(days=2, hours=1), cameras=frozenset(CAMERAS[:2]))
    _, found = reopened.search(vectors[:3], 5, where)
    assert (found >= 0).all()
    loaded = {key for key, shard in reopened._shards.items() if shard.index is not None}
    assert loaded == {(c, (T0 + timedelta(days=2)).date()) for c in CAMERAS[:2]}
    assert not any(shard.damaged for shard in reopened._shards.values())


class _Crash(Exception):
    pass


def test_a_flush_killed_before_the_manifest_leaves_the_old_state(filled, monkeypatch):
    # Bad input tried: the process dies after writing new shard files (or halfway through
    # them), before the manifest switches to them.
    store, (ids, vectors, _cameras, _times) = filled
    store.flush()
    before = store.search(vectors[:4], 10)
    store.remove(ids[:50])
    store.add(np.array([7000]), vectors[:1], ["new-cam"], [T0])
    real_write = vs._atomic_write
    for fail_at in ("manifest.json", ".meta.npz"):

        def dying_write(path, data, fail_at=fail_at):
            if path.name.endswith(fail_at):
                raise _Crash
            real_write(path, data)

        monkeypatch.setattr(vs, "_atomic_write", dying_write)
        with pytest.raises(_Crash):
            store.flush()
        reopened = FaissShardStore.open(store.root, model=MODEL, dim=DIM)
        assert reopened.count() == 600 and reopened.verify() == []
        after = reopened.search(vectors[:4], 10)
        np.testing.assert_array_equal(before[1], after[1])
    # Once writes work again the same store flushes its changes and sweeps the stray files.
    monkeypatch.setattr(vs, "_atomic_write", real_write)
    store.flush()
    reopened = FaissShardStore.open(store.root, model=MODEL, dim=DIM)
    assert reopened.count() == 551 and reopened.verify() == []
    on_disk = {p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()}
    named = {
        f
        for e in json.loads((store.root / "manifest.json").read_text())["shards"]
        for f in (e["file"], e["meta_file"])
    }
    assert on_disk == named | {"manifest.json"}


def test_a_flush_killed_after_the_manifest_leaves_the_new_state(filled, monkeypatch):
    # Bad input tried: the process dies after the manifest switch, before old files are deleted.
    store, (ids, vectors, _, _) = filled
    store.flush()
    store.remove(ids[:10])

    def dying_remove(paths):
        raise _Crash

    monkeypatch.setattr(vs, "_remove_files", dying_remove)
    with pytest.raises(_Crash):
        store.flush()
    monkeypatch.undo()
    reopened = FaissShardStore.open(store.root, model=MODEL, dim=DIM)
    assert reopened.count() == 590 and reopened.verify() == []
    strays = reopened._stray_files(reopened._disk_files)
    assert strays  # the superseded files are still there ...
    reopened.add(np.array([9000]), vectors[:1], ["c"], [T0])
    reopened.flush()
    assert not any((store.root / f).exists() for f in strays)  # ... until the next flush


def test_hnsw_recall_on_clustered_data_and_rebuild_on_remove(tmp_path):
    # Bad input tried: removals from HNSW shards (which FAISS cannot delete from) and a
    # boundary-day time filter on an HNSW shard.
    rng = np.random.default_rng(4)
    dim, people, per_person = 64, 300, 5
    centres = unit(rng.standard_normal((people, dim)))
    person = np.repeat(np.arange(people), per_person)
    vectors = unit(centres[person] + 0.12 * rng.standard_normal((len(person), dim)))
    ids = np.arange(len(person), dtype=np.int64)
    times = [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 2 * 1440, len(ids))]
    cameras = [f"c{i % 2}" for i in range(len(ids))]
    store = FaissShardStore.open(tmp_path, model=MODEL, dim=dim, kind="hnsw", M=16, efSearch=64)
    store.add(ids, vectors, cameras, times)
    queries = unit(centres[:100] + 0.12 * rng.standard_normal((100, dim)))

    def recall(where: SearchFilter, present: np.ndarray) -> float:
        _, found = store.search(queries, 10, where)
        cams, when = [cameras[i] for i in present], [times[i] for i in present]
        _, truth = brute_force(queries, ids[present], vectors[present], cams, when, 10, where)
        return np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])

    everyone = np.arange(len(ids))
    assert recall(SearchFilter(), everyone) >= 0.95
    assert recall(SearchFilter(start=T0 + timedelta(hours=20)), everyone) >= 0.95
    assert store.remove(ids[::3]) == len(ids[::3])
    present = np.setdiff1d(everyone, ids[::3])
    assert recall(SearchFilter(), present) >= 0.95
    store.flush()
    store = FaissShardStore.open(tmp_path, model=MODEL, dim=dim, kind="hnsw")
    assert store.kind_options["M"] == 16 and store.verify() == []
    assert recall(SearchFilter(), present) >= 0.95


def test_ivfpq_stays_flat_when_small_and_trains_when_large(tmp_path):
    # Bad input tried: a shard below the training threshold (must stay exact), then one above
    # it, and removals from the trained one.
    rng = np.random.default_rng(5)
    dim = 16
    store = FaissShardStore.open(tmp_path, model=MODEL, dim=dim, kind="ivfpq", nlist=4, nbits=4)
    assert store._train_min == 640
    small = unit(rng.standard_normal((50, dim)))
    store.add(np.arange(50), small, ["small"] * 50, [T0] * 50)
    centres = unit(rng.standard_normal((70, dim)))
    big = unit(np.repeat(centres, 10, 0) + 0.05 * rng.standard_normal((700, dim)))
    late = T0 + timedelta(hours=2)
    store.add(np.arange(1000, 1700), big, ["big"] * 700, [T0, late] * 350)
    store.flush()
    entries = json.loads((tmp_path / "manifest.json").read_text())["shards"]
    kinds = {e["camera"]: e["index"] for e in entries}
    assert kinds == {"small": "flat", "big": "ivfpq"}
    _, found = store.search(small[:5], 1, SearchFilter(cameras=frozenset({"small"})))
    assert found[:, 0].tolist() == list(range(5))
    _, found = store.search(big[::70], 10, SearchFilter(cameras=frozenset({"big"})))
    same_person = (found - 1000) // 10 == (np.arange(0, 700, 70) // 10)[:, None]
    assert same_person.mean() >= 0.9
    _, found = store.search(big[::70], 5, SearchFilter(start=late, cameras=frozenset({"big"})))
    assert (found >= 0).all() and (found % 2 == 1).all()  # the odd ones are the late ones
    # get_vectors returns the originals, not PQ approximations.
    np.testing.assert_array_equal(
        store.get_vectors(np.array([1003, 7])), np.stack([big[3], small[7]])
    )
    assert store.remove(np.arange(1000, 1100)) == 100
    unflushed = FaissShardStore.open(tmp_path, model=MODEL, dim=dim, kind="ivfpq")
    assert unflushed.count() == 750  # the removal is not on disk until flush
    store.flush()
    reopened = FaissShardStore.open(tmp_path, model=MODEL, dim=dim, kind="ivfpq")
    assert reopened.count() == 650 and reopened.verify() == []
    _, found = reopened.search(big[:1], 700, SearchFilter(cameras=frozenset({"big"})))
    assert not set(range(1000, 1100)) & set(found.ravel().tolist())
