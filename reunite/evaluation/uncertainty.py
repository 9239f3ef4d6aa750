"""How sure a figure is: bootstrap intervals over identities, for metrics, gaps and model pairs.

A test split of 250 people gives about 800 queries, but the queries of one person are not
independent draws (the same clothes, body and camera pair come back), so the unit that is sampled
is the person. ``IdentityBootstrap`` resamples query identities with replacement (a cluster
bootstrap) and recomputes each average as a ratio over the drawn identities' queries, which is
exactly how the point figure is averaged (one weight per valid query).

One draw matrix serves a whole report: every interval, every subgroup gap (child against adult,
night against day) and every paired model difference is computed on the same resampled
identities, so differences are paired and consistent with one another. That, and skipping a
draw in which a small subgroup happens to be absent instead of turning its interval into NaN,
is why this is not ``scipy.stats.bootstrap``, which draws anew on every call.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from reunite.evaluation.rank import QueryScores
from reunite.evaluation.subgroups import REFERENCE_GROUP, SPLIT_KIND, Subgroups

# Gaps of the other kinds (child - adult, short - tall crops) are also given at the reference
# group's mix of light (direct standardisation): the gap within day and within night, averaged
# with the reference group's day and night shares. Which cohorts a render puts at night is a
# lottery and night costs ~40 points of rank-1, so a raw child - adult gap also measures how many
# children the lottery put at night (seed 206: 17 % of the children's queries at night, 26 % of
# the adults'), which says nothing about the model. With several splits pooled, the split is
# adjusted for as well (within each split and light, at the reference group's shares of them):
# cohorts also differ in which split's cameras they walk past.
ADJUST_FOR = ("light", SPLIT_KIND)
DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
MIN_IDENTITIES = 5  # below this an interval says more about the draw than about the model

Interval = tuple[float, float]


class IdentityBootstrap:
    """Percentile bootstrap intervals for per-query averages, resampling whole identities.

    ``identities`` names the identity of every query (any hashable: a pid, or a (sequence, pid)
    pair where pids repeat across independent rankings). Values passed later are per query and
    NaN where a query does not count (no true match); masks pick a subgroup.
    """

    def __init__(
        self,
        identities: Sequence[Hashable] | np.ndarray,
        resamples: int = DEFAULT_RESAMPLES,
        level: float = DEFAULT_LEVEL,
        seed: int = 0,
    ) -> None:
        if resamples < 1:
            raise ValueError(f"resamples must be at least 1, got {resamples}")
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level}")
        keys = [k.tolist() if isinstance(k, np.ndarray) else k for k in identities]
        index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        self.cluster = np.array([index[key] for key in keys], dtype=np.int64)
        self.num_identities = len(index)
        self.resamples = resamples
        self.level = level
        draws = np.random.default_rng(seed).integers(
            0, max(self.num_identities, 1), size=(resamples, self.num_identities)
        )
        # weights[b, i]: how often identity i was drawn in resample b
        self.weights = np.zeros((resamples, self.num_identities))
        np.add.at(self.weights, (np.arange(resamples)[:, None], draws), 1.0)

    def interval(self, values: np.ndarray, mask: np.ndarray | None = None) -> Interval | None:
        """The interval of the mean of ``values`` (over ``mask``); None with too few identities."""
        samples = self._resampled_means(values, mask)
        return None if samples is None else self._percentiles(samples)

    def difference(
        self,
        values_a: np.ndarray,
        values_b: np.ndarray,
        mask_a: np.ndarray | None = None,
        mask_b: np.ndarray | None = None,
    ) -> Interval | None:
        """The interval of mean(a over mask_a) - mean(b over mask_b), on the same draws.

        Two models on the same queries (paired), or two subgroups of one model (a gap).
        """
        a = self._resampled_means(values_a, mask_a)
        b = self._resampled_means(values_b, mask_b)
        if a is None or b is None:
            return None
        return self._percentiles(a - b)

    def standardised_difference(
        self,
        values: np.ndarray,
        mask_a: np.ndarray,
        mask_b: np.ndarray,
        strata: Sequence[np.ndarray],
    ) -> tuple[float | None, Interval | None]:
        """mean(a) - mean(b) within each stratum, averaged with b's shares of the strata.

        Returns the point figure (None when a stratum b occupies has no query of a) and its
        interval (None when a stratum has too few identities). The shares stay fixed at the
        point figure's, so the interval covers the sampling of people within each stratum.
        """
        values = np.asarray(values, dtype=np.float64)
        counted = ~np.isnan(values)
        in_b = [counted & mask_b & stratum for stratum in strata]
        total = sum(int(m.sum()) for m in in_b)
        if total == 0:
            return None, None
        point, samples = 0.0, np.zeros(self.resamples)
        for stratum, b_here in zip(strata, in_b, strict=True):
            if not b_here.any():
                continue
            share = b_here.sum() / total
            a_here = counted & mask_a & stratum
            if not a_here.any():
                return None, None
            point += share * (values[a_here].mean() - values[b_here].mean())
            a = self._resampled_means(values, mask_a & stratum)
            b = self._resampled_means(values, mask_b & stratum)
            samples = (
                None if a is None or b is None or samples is None else samples + share * (a - b)
            )
        return float(point), None if samples is None else self._percentiles(samples)

    def _resampled_means(self, values: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != self.cluster.shape:
            raise ValueError(f"expected {len(self.cluster)} per-query values, got {values.shape}")
        counts = ~np.isnan(values)
        if mask is not None:
            counts &= np.asarray(mask, dtype=bool)
        per_identity_count = np.bincount(self.cluster[counts], minlength=self.num_identities)
        if np.count_nonzero(per_identity_count) < MIN_IDENTITIES:
            return None
        per_identity_sum = np.bincount(
            self.cluster[counts], weights=values[counts], minlength=self.num_identities
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.weights @ per_identity_sum) / (self.weights @ per_identity_count)

    def _percentiles(self, samples: np.ndarray) -> Interval | None:
        tail = 100 * (1 - self.level) / 2
        kept = samples[np.isfinite(samples)]
        if len(kept) < len(samples) / 2:  # the subgroup was missing from most draws
            return None
        low, high = np.percentile(kept, [tail, 100 - tail])
        return float(low), float(high)


def per_query_values(scores: QueryScores) -> dict[str, np.ndarray]:
    """What rank-1 and mAP average, query by query: NaN where a query has no true match."""
    hit = np.where(scores.valid, (scores.first_hit == 1).astype(np.float64), np.nan)
    return {"rank1": hit, "mAP": scores.ap.astype(np.float64)}


def describe_uncertainty(
    bootstrap: IdentityBootstrap,
    scores: QueryScores,
    groups: Subgroups,
    baseline: tuple[str, QueryScores] | None = None,
) -> dict:
    """The ``intervals`` entry of one model's report.

    ``overall`` and ``subgroups`` hold [low, high] per metric (None with fewer than
    ``MIN_IDENTITIES`` identities); ``gaps`` each group's difference from its kind's reference
    group (child and elderly against adult, night against day), and also at the reference
    group's mix of the ``ADJUST_FOR`` kinds other than its own (``rank1_adjusted``...); ``versus``,
    when a ``baseline`` model (name, scores on the same queries) is given, this model minus the
    baseline, paired.
    """
    values = per_query_values(scores)
    out: dict = {
        "level": bootstrap.level,
        "resamples": bootstrap.resamples,
        "unit": "identity",
        "num_identities": bootstrap.num_identities,
        "overall": {name: _pair(bootstrap.interval(v)) for name, v in values.items()},
        "subgroups": {
            kind: {
                group: {name: _pair(bootstrap.interval(v, mask)) for name, v in values.items()}
                for group, mask in masks.items()
            }
            for kind, masks in groups.items()
        },
        "gaps": {},
    }
    for kind, masks in groups.items():
        reference = REFERENCE_GROUP.get(kind)
        if reference not in masks:
            continue
        adjusted_for, strata = adjustment_strata(groups, kind)
        out["gaps"][kind] = {}
        for group, mask in masks.items():
            if group == reference:
                continue
            row = _difference_row(bootstrap, values, values, mask, masks[reference])
            row["reference"] = reference
            if strata:
                row["adjusted_for"] = " and ".join(adjusted_for)
                for name, v in values.items():
                    point, interval = bootstrap.standardised_difference(
                        v, mask, masks[reference], strata
                    )
                    row[f"{name}_adjusted"] = point
                    row[f"{name}_adjusted_interval"] = _pair(interval)
            out["gaps"][kind][group] = row
    if baseline is not None:
        name, base_scores = baseline
        base_values = per_query_values(base_scores)
        out["versus"] = {"model": name} | _difference_row(bootstrap, values, base_values)
    return out


def adjustment_strata(groups: Subgroups, kind: str) -> tuple[list[str], list[np.ndarray]]:
    """The ``ADJUST_FOR`` kinds a gap of ``kind`` is standardised over (every one the report has,
    except ``kind`` itself) and their strata: each combination of their groups, as a query mask.
    ([], []) when there is nothing to adjust for."""
    kinds = [k for k in ADJUST_FOR if k != kind and groups.get(k)]
    strata: list[np.ndarray] = []
    for k in kinds:
        masks = list(groups[k].values())
        strata = masks if not strata else [a & b for a in strata for b in masks]
    return kinds, [stratum for stratum in strata if stratum.any()]


def _difference_row(
    bootstrap: IdentityBootstrap,
    values_a: dict[str, np.ndarray],
    values_b: dict[str, np.ndarray],
    mask_a: np.ndarray | None = None,
    mask_b: np.ndarray | None = None,
) -> dict:
    row: dict = {}
    for name in values_a:
        a, b = values_a[name], values_b[name]
        in_a = ~np.isnan(a) & (True if mask_a is None else mask_a)
        in_b = ~np.isnan(b) & (True if mask_b is None else mask_b)
        point = float(a[in_a].mean() - b[in_b].mean()) if in_a.any() and in_b.any() else None
        row[name] = point
        row[f"{name}_interval"] = _pair(bootstrap.difference(a, b, mask_a, mask_b))
    return row


def _pair(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 6), round(interval[1], 6)]
