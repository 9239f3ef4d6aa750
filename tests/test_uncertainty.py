"""Bootstrap intervals over identities: the fast matrix form against an explicit resampling loop,
the property that makes it a cluster bootstrap, and the figures ``reunite eval`` reports."""

from __future__ import annotations

import numpy as np
import pytest

from reunite.evaluation.rank import QueryScores
from reunite.evaluation.subgroups import subgroup_metrics
from reunite.evaluation.uncertainty import (
    MIN_IDENTITIES,
    IdentityBootstrap,
    describe_uncertainty,
    per_query_values,
)


def clustered_values(seed: int, identities: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Per-query values whose identities differ in level (so clustering matters), some NaN."""
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(identities), rng.integers(1, 6, identities))
    level = rng.uniform(0, 1, identities)[pids]
    values = np.clip(level + rng.normal(0, 0.1, len(pids)), 0, 1)
    values[rng.random(len(pids)) < 0.1] = np.nan  # queries without a true match
    return pids, values


def reference_interval(pids, values, mask, resamples, seed, level=0.95):
    """Resample identities explicitly, gather their queries, average: the textbook procedure."""
    order = list(dict.fromkeys(pids.tolist()))
    draws = np.random.default_rng(seed).integers(0, len(order), size=(resamples, len(order)))
    means = []
    for draw in draws:
        picked = np.concatenate([values[(pids == order[i]) & mask] for i in draw])
        picked = picked[~np.isnan(picked)]
        if len(picked):
            means.append(picked.mean())
    tail = 100 * (1 - level) / 2
    return tuple(np.percentile(means, [tail, 100 - tail]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_form_equals_resampling_identities_one_by_one(seed: int) -> None:
    pids, values = clustered_values(seed)
    mask = np.random.default_rng(seed + 10).random(len(pids)) < 0.6
    bootstrap = IdentityBootstrap(pids, resamples=200, seed=seed)

    low, high = bootstrap.interval(values, mask)
    ref_low, ref_high = reference_interval(pids, values, mask, 200, seed)
    assert low == pytest.approx(ref_low, abs=1e-12) and high == pytest.approx(ref_high, abs=1e-12)
    assert low < np.nanmean(values[mask]) < high


def test_repeating_every_query_of_a_person_does_not_make_the_figure_look_surer() -> None:
    # Ten near-identical crops of one person are one piece of evidence, not ten. A per-query
    # bootstrap would narrow the interval about sqrt(4) = 2 times; resampling people must not.
    pids, values = clustered_values(3)
    once = IdentityBootstrap(pids, seed=7).interval(values)
    four_times = IdentityBootstrap(np.repeat(pids, 4), seed=7).interval(np.repeat(values, 4))
    assert four_times == pytest.approx(once, abs=1e-12)

    per_query = IdentityBootstrap(np.arange(4 * len(pids)), seed=7).interval(np.repeat(values, 4))
    assert per_query[1] - per_query[0] < 0.7 * (once[1] - once[0])


def test_a_model_against_itself_differs_by_exactly_zero_and_a_constant_has_no_spread() -> None:
    pids, values = clustered_values(4)
    bootstrap = IdentityBootstrap(pids, seed=0)
    assert bootstrap.difference(values, values) == (0.0, 0.0)
    ones = np.where(np.isnan(values), np.nan, 1.0)
    assert bootstrap.interval(ones) == (1.0, 1.0)


def test_a_better_model_on_the_same_queries_gets_a_paired_interval_above_zero() -> None:
    # 0.02 better on every query is invisible next to each model's own spread, but the paired
    # difference (same resampled people for both) is exactly that 0.02.
    pids, values = clustered_values(5)
    bootstrap = IdentityBootstrap(pids, seed=0)
    better = np.clip(values + 0.02, 0, 1.02)
    own_low, own_high = bootstrap.interval(values)
    assert own_high - own_low > 0.1
    low, high = bootstrap.difference(better, values)
    assert low == pytest.approx(0.02) and high == pytest.approx(0.02)


def test_too_few_identities_give_no_interval_rather_than_a_misleading_one() -> None:
    pids = np.repeat(np.arange(MIN_IDENTITIES + 3), 3)
    values = np.linspace(0, 1, len(pids))
    bootstrap = IdentityBootstrap(pids, seed=0)
    few = pids < MIN_IDENTITIES - 1
    assert bootstrap.interval(values, few) is None
    assert bootstrap.interval(values, pids < MIN_IDENTITIES) is not None
    assert bootstrap.difference(values, values, few, ~few) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"resamples": 0}, "resamples must be at least 1"), ({"level": 1.0}, "level must be")],
)
def test_impossible_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IdentityBootstrap([1, 2, 3], **kwargs)


def test_values_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="expected 3 per-query values"):
        IdentityBootstrap([1, 2, 3]).interval(np.zeros(4))


def scores_for(pids: np.ndarray, seed: int) -> QueryScores:
    """Ranking outcomes of a made-up model: identity-level skill, some queries without a match."""
    rng = np.random.default_rng(seed)
    skill = rng.uniform(0.3, 1.0, pids.max() + 1)[pids]
    first_hit = np.where(rng.random(len(pids)) < skill, 1, rng.integers(2, 30, len(pids)))
    first_hit[rng.random(len(pids)) < 0.05] = 0
    ap = np.where(first_hit > 0, np.clip(skill + rng.normal(0, 0.1, len(pids)), 0.01, 1), np.nan)
    return QueryScores(first_hit=first_hit, ap=ap, inp=ap / 2)


def test_report_entry_holds_intervals_gaps_to_adults_and_the_paired_difference() -> None:
    pids = np.repeat(np.arange(90), 3)
    groups = {
        "age_group": {
            "child": pids < 30,
            "adult": (pids >= 30) & (pids < 70),
            "elderly": pids >= 70,
        },
        "light": {"day": np.arange(len(pids)) % 3 != 0, "night": np.arange(len(pids)) % 3 == 0},
    }
    model, baseline = scores_for(pids, 0), scores_for(pids, 1)
    entry = describe_uncertainty(IdentityBootstrap(pids, seed=0), model, groups, ("old", baseline))

    assert entry["unit"] == "identity" and entry["num_identities"] == 90
    rank1 = np.nanmean(per_query_values(model)["rank1"])
    low, high = entry["overall"]["rank1"]
    assert low < rank1 < high
    figures = subgroup_metrics(model, groups)
    child_gap = entry["gaps"]["age_group"]["child"]
    assert child_gap["reference"] == "adult"
    expected = figures["age_group"]["child"]["rank1"] - figures["age_group"]["adult"]["rank1"]
    assert child_gap["rank1"] == pytest.approx(expected)
    assert child_gap["rank1_interval"][0] < expected < child_gap["rank1_interval"][1]
    assert set(entry["gaps"]) == {"age_group", "light"}
    assert list(entry["gaps"]["light"]) == ["night"]  # day is the reference
    versus = entry["versus"]
    assert versus["model"] == "old"
    assert versus["mAP"] == pytest.approx(np.nanmean(model.ap) - np.nanmean(baseline.ap))
    assert entry["subgroups"]["age_group"]["elderly"]["mAP"] is not None


def test_age_gap_at_the_adults_light_mix_removes_the_night_lottery() -> None:
    # 100 children and 100 adults, one query each. Every query is a hit by day and a miss at night,
    # whoever it shows; the render put 20 children but 50 adults at night. The raw gap credits
    # children with +0.3 that only the light earned; at the adults' light mix it is 0 exactly.
    pids = np.arange(200)
    child = pids < 100
    night = np.r_[np.arange(100) < 20, np.arange(100) < 50]
    groups = {
        "age_group": {"child": child, "adult": ~child},
        "light": {"day": ~night, "night": night},
    }
    hit = ~night
    scores = QueryScores(np.where(hit, 1, 2), np.where(hit, 1.0, 0.5), np.ones(200))
    gap = describe_uncertainty(IdentityBootstrap(pids, 200, seed=0), scores, groups)["gaps"]
    child_gap = gap["age_group"]["child"]

    assert child_gap["rank1"] == pytest.approx(0.3)
    assert child_gap["adjusted_for"] == "light"
    assert child_gap["rank1_adjusted"] == pytest.approx(0.0)
    assert child_gap["rank1_adjusted_interval"] == [0.0, 0.0]
    assert "adjusted_for" not in gap["light"]["night"]  # light is not adjusted for itself

    # now children miss every other query by day: -0.5 within day, 0 within night, and the
    # adults' half-and-half mix of light gives -0.25
    hit = ~night & ~(child & (pids % 2 == 0))
    scores = QueryScores(np.where(hit, 1, 2), np.where(hit, 1.0, 0.5), np.ones(200))
    bootstrap = IdentityBootstrap(pids, 200, seed=0)
    child_gap = describe_uncertainty(bootstrap, scores, groups)["gaps"]["age_group"]["child"]
    assert child_gap["rank1_adjusted"] == pytest.approx(-0.25)
    low, high = child_gap["rank1_adjusted_interval"]
    assert low < -0.25 < high
