"""Several test splits evaluated as one: each query ranked against its own split's gallery, the
figures pooled over all queries, the identities of different splits kept apart.

Why: two 1000-person synthetic splits rendered from different seeds put one model 14 points of
rank-1 apart (camera placement and which cohorts walk at night are drawn per split), while the
bootstrap over people within one split gives intervals of +-2 points. A figure a researcher can
trust, and a subgroup gap that does not belong to one split's cameras, needs several splits
pooled. Pooling by concatenating the folders would be wrong twice: pid 0001 of one split is not
pid 0001 of another, and every query would be ranked against a gallery several times larger than
the one it was drawn for. So each split becomes a block of the pooled ``EvalSet`` (a query is
ranked, re-ranked and paired only within its block, as the MOT17 sanity set does per sequence),
the bootstrap resamples (split, person) identities, and a ``split`` subgroup reports every split's
own figures beside the pooled ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reunite.errors import InvalidOptionError
from reunite.evaluation.reid_eval import EvalSet
from reunite.evaluation.subgroups import SPLIT_KIND, Subgroups, ordered_groups
from reunite.models.attributes import Labels


def pool_eval_sets(sets: Sequence[EvalSet]) -> EvalSet:
    """One ``EvalSet`` ranking each of ``sets`` on its own (one block per set); a single set is
    returned unchanged.

    Image labels get their split's name in front (``s206/0001_c1s1_000151_01.jpg``), and the
    subgroups of the splits are joined kind by kind (a kind one split lacks puts its queries in
    no group of that kind). Raises InvalidOptionError for sets that are not plain Market-1501
    splits or that name the same folder twice.
    """
    if len(sets) == 1:
        return sets[0]
    if not sets:
        raise InvalidOptionError("pooling needs at least one split")
    for eval_set in sets:
        if eval_set.protocol != "market1501" or eval_set.q_blocks is not None:
            raise InvalidOptionError(
                f"{eval_set.name} cannot be pooled: only Market-1501 splits ranked as a whole can"
            )
    names = [eval_set.name for eval_set in sets]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidOptionError(f"the same split is given twice: {', '.join(repeated)}")
    labels = split_labels(names)
    named = list(zip(labels, sets, strict=True))
    q_blocks = np.concatenate([np.full(len(s.query), i) for i, s in enumerate(sets)])
    g_blocks = np.concatenate([np.full(len(s.gallery), i) for i, s in enumerate(sets)])
    return EvalSet(
        name=" + ".join(names),
        query=[crop for s in sets for crop in s.query],
        gallery=[crop for s in sets for crop in s.gallery],
        q_pids=np.concatenate([s.q_pids for s in sets]),
        g_pids=np.concatenate([s.g_pids for s in sets]),
        q_camids=np.concatenate([s.q_camids for s in sets]),
        g_camids=np.concatenate([s.g_camids for s in sets]),
        query_labels=[f"{lab}/{q}" for lab, s in named for q in s.query_labels],
        gallery_labels=[f"{lab}/{g}" for lab, s in named for g in s.gallery_labels],
        protocol="market1501, splits pooled",
        q_blocks=q_blocks,
        g_blocks=g_blocks,
        subgroups=_pooled_subgroups(sets, labels, q_blocks),
        skipped=[f"{lab}/{line}" for lab, s in named for line in s.skipped],
        query_attributes=_pooled_attributes(sets, "query"),
        gallery_attributes=_pooled_attributes(sets, "gallery"),
    )


def _pooled_attributes(sets: Sequence[EvalSet], side: str) -> list[Labels | None] | None:
    """The splits' per-image attributes joined (a split that describes none gives Nones); None
    when no split describes any."""
    parts = [getattr(s, f"{side}_attributes") for s in sets]
    if all(part is None for part in parts):
        return None
    sizes = [len(getattr(s, side)) for s in sets]
    return [a for part, n in zip(parts, sizes, strict=True) for a in (part or [None] * n)]


def split_labels(names: Sequence[str]) -> list[str]:
    """Short, distinct names for the splits: the folder name, or as much of the path as tells
    two folders of the same name apart."""
    paths = [Path(name) for name in names]
    for depth in range(1, max(len(p.parts) for p in paths) + 1):
        labels = [Path(*p.parts[-depth:]).as_posix() for p in paths]
        if len(set(labels)) == len(labels):
            return labels
    return [Path(name).as_posix() for name in names]


def _pooled_subgroups(
    sets: Sequence[EvalSet], labels: Sequence[str], q_blocks: np.ndarray
) -> Subgroups:
    pooled: Subgroups = {SPLIT_KIND: {label: q_blocks == i for i, label in enumerate(labels)}}
    kinds = dict.fromkeys(kind for s in sets for kind in s.subgroups)
    for kind in kinds:
        groups = ordered_groups({g for s in sets for g in s.subgroups.get(kind, {})}, kind)
        pooled[kind] = {
            group: np.concatenate(
                [s.subgroups.get(kind, {}).get(group, np.zeros(len(s.query), bool)) for s in sets]
            )
            for group in groups
        }
    return pooled
