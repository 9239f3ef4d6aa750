"""Who a model mistakes for whom: for each wrong rank-1 match, what tells the two people apart.

Rank-1 says how often the top match is wrong, not why. On a set that describes its people's
clothing (``identities.json`` from ``reunite synth reid``), each query whose top match shows
another described person is compared with that person attribute by attribute. The answer
separates two kinds of error:

- look-alikes: the two wear the same colours, or nothing in their description differs. Some of
  these no model could tell apart from one crop, and a world made of them is too hard;
- blind spots: the two differ in something plainly visible (a child taken for an adult, a
  skirt for trousers). Those a better model can fix, and they say what to train for.

On the validation split of seed 206, 7.0.0's wrong rank-1 matches by day wear the query person's
two colours in 36 % of cases, but differ in age group (38 %), gender (46 %) or kind of top
(63 %); only 6 of 366 differ in nothing the description records. Figures are fractions of the
wrong rank-1 matches whose top match is a described person, overall and by the query's light.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reunite.models.attributes import Labels

# What is compared, in reading order: a field of ``Labels.exclusive`` or "accessories" (the set).
COMPARED = (
    "age_group",
    "gender",
    "upper_type",
    "upper_colour",
    "sleeve",
    "lower_type",
    "lower_colour",
    "accessories",
)
BY_KIND = "light"  # errors are also broken down by the query's light: night loses the colours


def differences(a: Labels, b: Labels) -> dict[str, bool]:
    """Which compared attributes differ between two people (a field one of them lacks, such as
    the sleeve of a coat, differs only if the other has it)."""
    out = {
        field: a.exclusive.get(field) != b.exclusive.get(field)
        for field in COMPARED
        if field != "accessories"
    }
    out["accessories"] = a.accessories != b.accessories
    return out


def rank1_confusions(
    top_indices: np.ndarray,
    valid: np.ndarray,
    query_attributes: Sequence[Labels | None],
    gallery_attributes: Sequence[Labels | None],
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    groups: dict[str, np.ndarray] | None = None,
) -> dict:
    """The wrong rank-1 matches of the ``valid`` queries and how they differ from the query's
    person: overall and, given ``groups`` (group -> query mask), per group.

    ``top_indices`` (Q, >= 1) are the ranked lists as shown (``top_matches``), so a top match is
    always in the query's own block and equal pids mean the same person.
    """
    top = top_indices[:, 0]
    wrong = valid & (top >= 0) & (g_pids[np.maximum(top, 0)] != q_pids)
    report = _summary(wrong, top, query_attributes, gallery_attributes)
    if groups:
        report["by_" + BY_KIND] = {
            group: _summary(wrong & mask, top, query_attributes, gallery_attributes)
            for group, mask in groups.items()
        }
    return report


def _summary(
    wrong: np.ndarray,
    top: np.ndarray,
    query_attributes: Sequence[Labels | None],
    gallery_attributes: Sequence[Labels | None],
) -> dict:
    pairs = [
        (query_attributes[q], gallery_attributes[top[q]])
        for q in np.flatnonzero(wrong)
        if query_attributes[q] is not None and gallery_attributes[top[q]] is not None
    ]
    rows = [differences(a, b) for a, b in pairs]
    count = len(rows)

    def share(flags: Sequence[bool]) -> float | None:
        return round(sum(flags) / count, 4) if count else None

    return {
        "wrong_rank1": int(wrong.sum()),
        "compared": count,
        "same_colours": share([not (r["upper_colour"] or r["lower_colour"]) for r in rows]),
        "nothing_differs": share([not any(r.values()) for r in rows]),
        "differs": {field: share([r[field] for r in rows]) for field in COMPARED},
    }
