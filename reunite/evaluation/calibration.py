"""The "same person" alert threshold that a model card carries, calibrated on labelled pairs.

The live pipeline alerts when a sighting is closer to a case photo than the card's threshold, so
the threshold decides how often staff are sent after a stranger. It is calibrated as the largest
cosine distance whose false positive rate, over every query-gallery pair of a labelled set that
survives the Market-1501 exclusions, stays at or below a target FPR; the TPR says what share of
true sightings would then alert. Re-ranked distances never enter here: re-ranking needs the whole
gallery at once, which a live alert does not have.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from reunite.evaluation.rank import count_valid_pairs, tpr_at_fpr

DEFAULT_FPR = 1e-3


class SamePersonThreshold(BaseModel):
    """A calibrated alert threshold, as stored in a model card's ``threshold`` field."""

    model_config = ConfigDict(frozen=True)

    cosine_distance: float = Field(description="call a pair 'same person' when distance <= this")
    fpr: float = Field(description="the target false positive rate it was chosen for")
    tpr: float = Field(description="share of true pairs at or below the threshold")
    pairs: int = Field(description="labelled pairs it was measured on (positive + negative)")
    positive_pairs: int
    negative_pairs: int
    data: str | None = Field(None, description="the labelled set it was calibrated on")

    @property
    def resolved(self) -> bool:
        """Whether the set has enough negative pairs for the target FPR to be observable.

        With fewer than 1 / fpr negatives not even one false positive is allowed, and the
        threshold only says "below every stranger seen here".
        """
        return self.negative_pairs * self.fpr >= 1.0


def calibrate_threshold(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    fpr: float = DEFAULT_FPR,
    data: str | None = None,
) -> SamePersonThreshold:
    """The threshold for ``fpr`` from a (Q, G) matrix of plain cosine distances.

    Raises ValueError when ``fpr`` is not in (0, 1) or the set has no valid positive or negative
    pair.
    """
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    positives, negatives = count_valid_pairs(distmat, q_pids, g_pids, q_camids, g_camids)
    tpr, threshold = tpr_at_fpr(distmat, q_pids, g_pids, q_camids, g_camids, fprs=(fpr,))[fpr]
    return SamePersonThreshold(
        cosine_distance=threshold,
        fpr=fpr,
        tpr=tpr,
        pairs=positives + negatives,
        positive_pairs=positives,
        negative_pairs=negatives,
        data=data,
    )
