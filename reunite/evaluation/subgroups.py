"""Results per subgroup of queries: age group (child / adult / elderly), light (day / night) and
the query crop's height in pixels (how far from the camera the person was).

The people Reunite looks for are mostly children and the elderly, often at night, so an average
over all queries can hide exactly the failures that matter. Sets written by ``reunite synth reid``
describe themselves beside the images:

- ``identities.json``: ``{"0001": {"age_group": "child", "age": 7, "gender": ..., "split": ...}}``
- ``sequences.json``: ``{"3": {"hour": 22.0, "light": "night", "split": ...}}``, keyed by the
  ``s`` number of a file name (``0001_c1s3_000151_01.jpg`` is in sequence 3).

A query is grouped by its identity's age group and by its own sequence's light. Real Market-1501
has neither file; then there are no such subgroups. A query whose pid or sequence a file does not
list is in no group of that kind. Height bands need no file, only the crops: they are reported
when the queries fall in at least two bands (Market-1501's crops are all 128 px tall).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from reunite.errors import DatasetLayoutError
from reunite.evaluation.market1501 import ReidImage
from reunite.evaluation.rank import QueryScores
from reunite.models.attributes import Labels, labels_from_identity

IDENTITIES_FILE = "identities.json"
SEQUENCES_FILE = "sequences.json"
# Known groups in reading order; any other value a file uses is listed after these.
# Query crop height bands, [low, high) pixels, around the synthetic splits' quartiles (76 / 112 /
# 164 px): a child is a short crop at any distance, so this separates distance from age only
# together with the age groups.
HEIGHT_BANDS = ((0, 80, "< 80 px"), (80, 120, "80-119 px"), (120, 160, "120-159 px"))
TALLEST_BAND = ">= 160 px"
KNOWN_ORDER = {
    "age_group": ("child", "adult", "elderly"),
    "light": ("day", "night"),
    "height": (*(label for _, _, label in HEIGHT_BANDS), TALLEST_BAND),
}
# The split a query came from, when several test splits are evaluated together (pooled_splits).
SPLIT_KIND = "split"
SUBGROUP_RANKS = (1, 5)
# The group each other group of a kind is compared with (``uncertainty`` reports the gaps).
REFERENCE_GROUP = {"age_group": "adult", "light": "day", "height": TALLEST_BAND}

# Kinds a set describes in its JSON files: the file, and the key of an image in it (an age group
# belongs to the person, the light to the sequence the crop was taken in).
DESCRIBED_KINDS: dict[str, tuple[str, Callable[[ReidImage], str]]] = {
    "age_group": (IDENTITIES_FILE, lambda image: f"{image.pid:04d}"),
    "light": (SEQUENCES_FILE, lambda image: str(image.seq)),
}

Subgroups = dict[str, dict[str, np.ndarray]]
"""kind ("age_group", "light", "height") -> group ("child", ...) -> boolean mask of the queries."""


def query_subgroups(
    root: Path | str, queries: Sequence[ReidImage], heights: Sequence[int] | None = None
) -> Subgroups:
    """The subgroups of ``queries`` described by the set's JSON files and, given each query crop's
    ``heights`` in pixels, by height band; {} when there are none.

    Raises DatasetLayoutError for a file that exists but is not the expected JSON.
    """
    groups: Subgroups = {}
    for kind in DESCRIBED_KINDS:
        labels = image_groups(root, queries, kind)
        if labels is not None:
            groups[kind] = _masks(labels, kind)
    if heights is not None:
        bands = _masks([height_band(h) for h in heights], "height")
        if len(bands) > 1:
            groups["height"] = bands
    return {kind: masks for kind, masks in groups.items() if masks}


def image_groups(
    root: Path | str, images: Sequence[ReidImage], kind: str
) -> list[str | None] | None:
    """Each image's group of ``kind`` (one of ``DESCRIBED_KINDS``) as the set's JSON file
    describes it (None for an image the file does not list); None when the set has no such file.

    Raises DatasetLayoutError for a file that exists but is not the expected JSON.
    """
    file_name, key = DESCRIBED_KINDS[kind]
    table = _read_table(Path(root) / file_name, kind)
    if table is None:
        return None
    return [table.get(key(image)) for image in images]


def subgroup_metrics(
    scores: QueryScores, groups: Subgroups
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Rank-1, rank-5, mAP and mINP per subgroup (counts only when no query of it is valid)."""
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for kind, masks in groups.items():
        out[kind] = {}
        for group, mask in masks.items():
            row: dict[str, float | int] = {
                "num_query": int(mask.sum()),
                "num_valid_query": int((scores.valid & mask).sum()),
            }
            if row["num_valid_query"]:
                result = scores.summarise(max(SUBGROUP_RANKS), subset=mask)
                row |= {f"rank{k}": result.rank(k) for k in SUBGROUP_RANKS}
                row |= {"mAP": result.mAP, "mINP": result.mINP}
            out[kind][group] = row
    return out


def height_band(height: int) -> str:
    """The band of ``HEIGHT_BANDS`` (or ``TALLEST_BAND``) a crop ``height`` pixels tall is in."""
    for low, high, label in HEIGHT_BANDS:
        if low <= height < high:
            return label
    return TALLEST_BAND


def _read_table(path: Path, field: str) -> dict[str, str] | None:
    """``key -> value of field`` from a {key: {field: value, ...}} JSON file; None if absent."""
    table = _read_entries(path, field)
    if table is None:
        return None
    return {str(key): str(entry[field]) for key, entry in table.items() if field in entry}


def _read_entries(path: Path, field: str) -> dict[str, dict] | None:
    """The {key: {...}} object of a JSON file, checked to be one; None if absent. ``field``
    only names an example for the error message."""
    if not path.is_file():
        return None
    try:
        table = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetLayoutError(f"cannot read {path}: {error}") from error
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise DatasetLayoutError(
            f'{path} must map keys to objects, e.g. {{"0001": {{"{field}": ...}}}}'
        )
    return table


def identity_attributes(root: Path | str) -> dict[int, Labels] | None:
    """pid -> the person's true attributes (clothing, carried things, age group, gender), from
    a set's ``identities.json``; None when the set has no such file or it describes no clothing
    (real data, or a file with age groups only). Identities without clothing are left out.

    Raises DatasetLayoutError for a file that cannot be read or names a value outside the
    인상착의 vocabulary.
    """
    path = Path(root) / IDENTITIES_FILE
    entries = _read_entries(path, "clothing")
    if entries is None:
        return None
    try:
        out = {
            int(pid): labels_from_identity(entry)
            for pid, entry in entries.items()
            if "clothing" in entry
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DatasetLayoutError(
            f"{path} does not describe identities' attributes: {type(error).__name__}: {error}"
        ) from error
    return out or None


def ordered_groups(present: set[str], kind: str) -> list[str]:
    """The groups of ``kind`` in reading order: the known ones first, any others sorted."""
    known = KNOWN_ORDER.get(kind, ())
    return [g for g in known if g in present] + sorted(present - set(known))


def _masks(labels: Sequence[str | None], kind: str) -> dict[str, np.ndarray]:
    ordered = ordered_groups({label for label in labels if label}, kind)
    return {group: np.array([label == group for label in labels], dtype=bool) for group in ordered}
