"""BART's text-infilling objective (Lewis et al. 2020, §2.2).

Written here because transformers has no collator for it: spans with Poisson(3) lengths
covering about 30% of the tokens are each replaced by a single `<mask>`; the decoder
reconstructs the whole original sequence.
"""

from __future__ import annotations

import math
import random


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def infill(token_ids: list[int], mask_id: int, rng: random.Random, ratio: float = 0.3, lam: float = 3.0) -> list[int]:
    """Return the corrupted input; the target is `token_ids` itself."""
    n = len(token_ids)
    budget = round(n * ratio)
    masked = [False] * n
    while budget > 0 and n:
        length = min(budget, max(1, _poisson(rng, lam)))
        start = rng.randrange(n)
        for i in range(start, min(n, start + length)):
            masked[i] = True
        budget -= length
    out: list[int] = []
    for i, token in enumerate(token_ids):
        if not masked[i]:
            out.append(token)
        elif i == 0 or not masked[i - 1]:
            out.append(mask_id)
    return out
