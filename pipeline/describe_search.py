"""Search by appearance description (인상착의), alone or fused with photo search.

Every sighting in the window is scored by the log-likelihood of the description under its stored
attribute probabilities: the sum over the fields the description gives of ``log P(value)`` (for
"red or blue top", the probability of either), plus ``log P(present)`` for each accessory named.
Fields the description leaves out cost nothing. Each probability is floored (``FLOOR``) so that one
wrong field — the caller said navy, the camera saw black — lowers a match but cannot zero it.

With photos too, the two scores are fused. Photo cosine and description log-likelihood live on
different scales, so each is standardised over the same candidates (z-scores) and the two are
added: a sighting both rank high wins. ``scripts/eval_description_search.py`` measured this
against reciprocal-rank fusion (Cormack et al., SIGIR 2009) and description weights of 2 and 4 on
the synthetic districts: equal-weight z-score fusion was best with a CCTV still of the day, and
beat both the still and the description alone; a family photo in other clothes carries almost
no signal for a clothing-driven re-ID model, and fusing it lowers the description's recall.

The same time window, camera filter and retention clamp as photo search apply (``search.window``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import and_, select

from reunite.errors import InvalidOptionError, NotFoundError
from reunite.models.attributes import NEIGHBOUR_COLOURS
from reunite.pipeline.describe import Description, parse_description
from reunite.pipeline.schema import Camera, Embedding, Sighting, SightingAttributes
from reunite.pipeline.search import SightingResult, active_model, read_photo, window
from reunite.pipeline.vector_store import SearchFilter
from reunite.pipeline.workspace import Workspace

FLOOR = 0.02
"""Smallest probability a field contributes: log(0.02) ~ -3.9, one wrong field's price."""
COLOUR_CONFUSION = 0.25
"""Share of a neighbouring colour's probability a said colour receives (see NEIGHBOUR_COLOURS):
callers and cameras confuse navy with black, beige with brown."""
COLOUR_FIELDS = ("upper_colour", "lower_colour", "bag_colour")
RRF_K = 60
Fusion = Literal["rank", "zscore"]
Probabilities = dict[str, dict[str, float]]


def field_probabilities(
    description: Description, probs: Probabilities, confusion: float = COLOUR_CONFUSION
) -> dict[str, float]:
    """The probability each part of the description has under one sighting's attributes (a
    field the stored attributes lack is left out: ignored, not penalised). A colour also takes
    ``confusion`` times the probability of its neighbouring colours (said navy, camera saw
    black)."""
    out: dict[str, float] = {}
    for name, accepted in description.constraints().items():
        dist = probs.get(name)
        if not dist:
            continue
        p = sum(dist.get(v, 0.0) for v in accepted)
        if confusion and name in COLOUR_FIELDS:
            near = {n for v in accepted for n in NEIGHBOUR_COLOURS[v]} - set(accepted)
            p += confusion * sum(dist.get(n, 0.0) for n in near)
        out[name] = float(min(p, 1.0))
    acc = probs.get("accessories", {})
    for name in description.accessories:
        if name in acc:
            out[f"accessory:{name}"] = float(acc[name])
    if description.any_bag and ("backpack" in acc or "bag" in acc):
        out["accessory:any_bag"] = 1.0 - (1.0 - acc.get("backpack", 0.0)) * (
            1.0 - acc.get("bag", 0.0)
        )
    return out


def log_likelihood(
    description: Description,
    rows: Sequence[Probabilities],
    floor: float = FLOOR,
    confusion: float = COLOUR_CONFUSION,
) -> np.ndarray:
    """(N,) description log-likelihood of each sighting's attributes (higher is better)."""
    if not 0 < floor < 1:
        raise InvalidOptionError(f"floor must be in (0, 1), got {floor}")
    if not 0 <= confusion <= 1:
        raise InvalidOptionError(f"confusion must be in [0, 1], got {confusion}")
    out = np.zeros(len(rows), dtype=np.float64)
    for i, probs in enumerate(rows):
        p = np.array(
            list(field_probabilities(description, probs, confusion).values()), dtype=np.float64
        )
        out[i] = np.log(np.maximum(p, floor)).sum() if len(p) else 0.0
    return out


def _ranks(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """1-based ranks, best score first, ties broken by id (as every ranking here)."""
    order = np.lexsort((ids, -scores))
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def _z(scores: np.ndarray) -> np.ndarray:
    sd = scores.std()
    return (scores - scores.mean()) / sd if sd > 0 else np.zeros_like(scores)


def fuse(
    photo: np.ndarray,
    described: np.ndarray,
    ids: np.ndarray,
    method: Fusion = "zscore",
    weight: float = 1.0,
) -> np.ndarray:
    """One score per candidate from photo cosine and description log-likelihood (higher better).
    ``weight`` scales the description's share."""
    if method == "rank":
        return 1.0 / (RRF_K + _ranks(photo, ids)) + weight / (RRF_K + _ranks(described, ids))
    if method == "zscore":
        return _z(photo) + weight * _z(described)
    raise InvalidOptionError(f"fusion must be 'rank' or 'zscore', got {method!r}")


@dataclass(frozen=True)
class DescriptionSearch:
    """What a description search found, with the parse to show the operator first."""

    description: Description
    results: list[SightingResult]
    evidence: list[dict[str, float]]
    """Per result: each description part's probability under that sighting's attributes."""
    considered: int
    without_attributes: int
    attribute_model: str
    fused_with_photos: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "description": self.description.model_dump(),
            "summary": self.description.summary(),
            "summary_ko": self.description.summary("ko"),
            "attribute_model": self.attribute_model,
            "considered": self.considered,
            "without_attributes": self.without_attributes,
            "fused_with_photos": self.fused_with_photos,
            "warnings": self.warnings,
            "results": [
                {**r.as_dict(), "evidence": {k: round(v, 4) for k, v in e.items()}}
                for r, e in zip(self.results, self.evidence, strict=True)
            ],
        }


def search_description(
    ws: Workspace,
    description: str | Description,
    *,
    photos: Sequence[Path] = (),
    photo_embeddings: np.ndarray | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cameras: Sequence[str] | None = None,
    k: int = 10,
    retention_days: int = 30,
    attribute_model: str | None = None,
    fusion: Fusion = "zscore",
    model_spec: str | None = None,
) -> DescriptionSearch:
    """Rank the window's sightings by a description (text is parsed first), optionally fused
    with photos of the person: image files (``photos``) or their embeddings under the active
    index's model (``photo_embeddings``, (Q, dim), e.g. a case's stored photos). Raises when
    the window's sightings have no attributes."""
    if k < 1:
        raise InvalidOptionError(f"k must be >= 1, got {k}")
    parsed = parse_description(description) if isinstance(description, str) else description
    if parsed.is_empty:
        raise InvalidOptionError("the description names nothing to search for")
    version = attribute_model or default_attribute_version()
    where = window(since, until, cameras, retention_days)
    rows = _candidates(ws, where, version)
    warnings = []
    scored = [(s, cam, probs) for s, cam, probs in rows if probs is not None]
    missing = len(rows) - len(scored)
    if rows and not scored:
        raise NotFoundError(
            f"none of the {len(rows)} sightings in the window has attributes from {version}: "
            "run `reunite attributes backfill` once, then search again"
        )
    if missing:
        warnings.append(
            f"{missing} of {len(rows)} sightings in the window have no attributes yet and were "
            "not searched (`reunite attributes backfill` adds them)"
        )
    if not scored:
        return DescriptionSearch(parsed, [], [], 0, 0, version, warnings=warnings)
    ids = np.array([s.id for s, _, _ in scored], dtype=np.int64)
    described = log_likelihood(parsed, [p for _, _, p in scored])
    final = described
    if photos or photo_embeddings is not None:
        photo = _photo_scores(ws, photos, ids, model_spec, photo_embeddings)
        final = fuse(photo, described, ids, fusion)
    order = np.lexsort((ids, -final))[:k]
    results, evidence = [], []
    for i in order:
        s, cam, probs = scored[i]
        results.append(SightingResult.of(ws, s, cam, float(final[i])))
        evidence.append(field_probabilities(parsed, probs))
    return DescriptionSearch(
        parsed,
        results,
        evidence,
        len(scored),
        missing,
        version,
        fused_with_photos=len(photos) if photo_embeddings is None else len(photo_embeddings),
        warnings=warnings,
    )


def default_attribute_version() -> str:
    """Version string of the shipped attribute model (what ingest stores attributes under)."""
    from reunite.models.attribute_model import DEFAULT_ATTRIBUTE_MODEL, ZOO_DIR, AttributeCard

    return AttributeCard.read(ZOO_DIR / DEFAULT_ATTRIBUTE_MODEL).model_version


def _candidates(ws: Workspace, where: SearchFilter, version: str) -> list[tuple]:
    query = (
        select(Sighting, Camera, SightingAttributes.probabilities)
        .join(Camera, Camera.id == Sighting.camera_id)
        .outerjoin(
            SightingAttributes,
            and_(
                SightingAttributes.sighting_id == Sighting.id, SightingAttributes.model == version
            ),
        )
        .order_by(Sighting.id)
    )
    if where.start is not None:
        query = query.where(Sighting.start_time >= where.start)
    if where.end is not None:
        query = query.where(Sighting.start_time < where.end)
    if where.cameras:
        query = query.where(Sighting.camera_id.in_(sorted(where.cameras)))
    with ws.db.session() as session:
        rows = [tuple(r) for r in session.execute(query)]
        session.expunge_all()
    return rows


def _photo_scores(
    ws: Workspace,
    photos: Sequence[Path],
    ids: np.ndarray,
    model_spec: str | None,
    embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Best cosine similarity over the photos for every candidate (stored sighting vectors)."""
    model = active_model(ws, model_spec)
    if embeddings is None:
        queries = model.embedder.embed([read_photo(Path(p)) for p in photos])
    else:
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim != 2 or len(queries) == 0 or queries.shape[1] != model.dim:
            raise InvalidOptionError(
                f"photo embeddings must be (Q >= 1, {model.dim}) vectors of {model.version}, got "
                f"{queries.shape}"
            )
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    vectors = np.zeros((len(ids), model.dim), dtype=np.float32)
    found = np.zeros(len(ids), dtype=bool)
    position = {int(i): n for n, i in enumerate(ids)}
    with ws.db.session() as session:
        for start in range(0, len(ids), 900):
            chunk = [int(i) for i in ids[start : start + 900]]
            for row in session.scalars(
                select(Embedding).where(
                    Embedding.model == model.version, Embedding.sighting_id.in_(chunk)
                )
            ):
                n = position[row.sighting_id]
                vectors[n], found[n] = row.array(), True
    scores = (queries @ vectors.T).max(axis=0)
    scores[~found] = -1.0  # no vector under this model: last for the photo half
    return scores
