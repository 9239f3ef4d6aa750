"""Weight averaging ("model soups", Wortsman et al., ICML 2022).

Networks fine-tuned from the same start stay in one basin of the loss, so the average of their
weights is itself a good network, often better than either, at no cost at inference. Measured
here: shipped model 4.0.0 is the 1:1 average of 3.0.0 and its fine-tune on 5000 new
identities, 5.0.0 the 3:7 average of 4.0.0 and its fine-tune on 11 000, 6.0.0 the 3:7 average
of 5.0.0 and its fine-tune on 17 000; each beats its parts on the test split and on
validation (6.0.0: pooled over two splits; README, "The shipped default model"). 7.0.0, the 1:1
average of 6.0.0 and its fine-tune on 6000 new identities alone, beats both on validation and
ties 6.0.0 on the test split, where the fine-tune alone loses 3.5 points of rank-1. Averaging
networks trained at different input sizes does not work (measured: worse than either part).
Written by hand because it is a weighted sum over a state dict: no library needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from reunite.errors import CheckpointError


def average_weights(
    states: Sequence[Mapping[str, torch.Tensor]], shares: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """The weighted average of networks of one architecture (classifier keys dropped: they
    belong to each run's identities). ``shares`` (default: equal) must be positive and are
    normalised to sum to 1. Floating tensors (weights, batch-norm statistics) are averaged in
    float32 and stored in the first network's dtype; integer ones (batch counters) come from the
    first network."""
    if len(states) < 2:
        raise CheckpointError("averaging needs at least two networks")
    shares = [1.0] * len(states) if shares is None else list(shares)
    if len(shares) != len(states) or min(shares) <= 0:
        raise CheckpointError(f"need one positive share per network, got {shares}")
    fractions = [share / sum(shares) for share in shares]
    bodies = [{k: v for k, v in s.items() if not k.startswith("classifier.")} for s in states]
    first = bodies[0]
    for index, body in enumerate(bodies[1:], start=2):
        differ = sorted(set(first) ^ set(body))
        differ += [k for k in first if k in body and body[k].shape != first[k].shape]
        if differ:
            raise CheckpointError(
                f"network {index} is not of the first network's architecture: {len(differ)} "
                f"keys differ ({', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''})"
            )
    averaged = {}
    for key, value in first.items():
        if not value.is_floating_point():
            averaged[key] = value.clone()
            continue
        mixed = sum(b[key].float() * f for b, f in zip(bodies, fractions, strict=True))
        averaged[key] = mixed.to(value.dtype)
    return averaged
