"""Matching over a real FAISS shard store: fusion of several query photos, filters, re-ranking,
and bad queries (wrong dimension, empty, k < 1, an unknown fusion rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from reunite.errors import InvalidOptionError
from reunite.models.embedder import l2_normalise
from reunite.pipeline.matching import match
from reunite.pipeline.vector_store import FaissShardStore, SearchFilter

DIM = 32
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture()
def people(tmp_path):
    """40 people, 5 sightings each on 4 cameras over two days, noisy around a person's centre."""
    rng = np.random.default_rng(3)
    centres = l2_normalise(rng.normal(size=(40, DIM)))
    vectors, ids, cameras, times, owners = [], [], [], [], []
    for person in range(40):
        for j in range(5):
            vectors.append(centres[person] + 0.25 * rng.normal(size=DIM) / np.sqrt(DIM))
            ids.append(person * 10 + j)
            cameras.append(f"c{j % 4}")
            times.append(T0 + timedelta(hours=10 * j + person * 0.1))
            owners.append(person)
    store = FaissShardStore.open(tmp_path / "index", model="test@1", dim=DIM)
    store.add(np.array(ids, np.int64), l2_normalise(np.array(vectors)), cameras, times)
    store.flush()
    return store, centres, np.array(ids), np.array(owners), times, cameras


def test_the_right_person_ranks_first_and_scores_are_cosines(people):
    store, centres, *_ = people
    matches = match(store, centres[7], k=5)
    assert [m.sighting_id // 10 for m in matches] == [7] * 5
    assert all(0.5 < m.score <= 1.0 for m in matches)
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_two_photos_fuse_by_max_and_by_mean(people):
    store, centres, *_ = people
    queries = np.stack([centres[3], centres[9]])
    by_max = match(store, queries, k=10, fusion="max")
    assert {m.sighting_id // 10 for m in by_max} == {3, 9}, "max fusion: either photo's person"
    for m in by_max:
        assert m.score == pytest.approx(max(m.per_query))
    by_mean = match(store, queries, k=10, fusion="mean")
    for m in by_mean:
        assert m.score == pytest.approx(np.mean(m.per_query))


def test_filters_restrict_to_the_window_and_the_cameras(people):
    store, centres, *_ = people
    where = SearchFilter(
        start=T0 + timedelta(hours=15),
        end=T0 + timedelta(hours=35),
        cameras=frozenset({"c2", "c3"}),
    )
    matches = match(store, centres[5], k=20, where=where)
    assert matches, "sightings 2 and 3 of person 5 fall in the window"
    for m in matches:
        j = m.sighting_id % 10
        assert f"c{j % 4}" in {"c2", "c3"}
        assert where.start <= T0 + timedelta(hours=10 * j + (m.sighting_id // 10) * 0.1) < where.end
    empty = SearchFilter(start=T0 - timedelta(days=9), end=T0 - timedelta(days=8))
    assert match(store, centres[5], k=5, where=empty) == []


def test_rerank_keeps_the_right_person_on_top(people):
    store, centres, *_ = people
    matches = match(store, centres[11], k=5, rerank=True)
    assert [m.sighting_id // 10 for m in matches[:3]] == [11, 11, 11]


@pytest.mark.parametrize(
    ("queries", "kwargs", "message"),
    [
        (np.zeros((1, DIM + 1), np.float32), {}, "embeddings of the index"),
        (np.zeros((0, DIM), np.float32), {}, "embeddings of the index"),
        (np.ones(DIM, np.float32), {"k": 0}, "k must be"),
        (np.ones(DIM, np.float32), {"fusion": "vote"}, "fusion must be"),
    ],
)
def test_bad_queries_are_refused_clearly(people, queries, kwargs, message):
    with pytest.raises(InvalidOptionError, match=message):
        match(people[0], queries, **kwargs)
