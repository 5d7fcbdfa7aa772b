"""T5's span-corruption objective (Raffel et al. 2020, §3.1.4).

Written here because transformers ships it only inside its Flax example scripts: about 15%
of the tokens, in spans of mean length 3, are each replaced by one sentinel in the input;
the target lists the sentinels followed by the tokens they hide.
"""

from __future__ import annotations

import random


def sentinel_tokens(n: int) -> list[str]:
    return [f"<extra_id_{i}>" for i in range(n)]


def corrupt_spans(
    token_ids: list[int], sentinel_ids: list[int], rng: random.Random, density: float = 0.15, mean_span: float = 3.0
) -> tuple[list[int], list[int]]:
    """Return (input ids, target ids) for one sequence, without the final eos.

    Args:
        token_ids: the clean sequence.
        sentinel_ids: ids of `<extra_id_0>`, `<extra_id_1>`, ... in order.
        rng: the random source (seeded by the caller for determinism).
        density: fraction of tokens to mask.
        mean_span: mean length of a masked span.
    """
    n = len(token_ids)
    n_noise = max(1, min(n - 1, round(n * density))) if n > 1 else 0
    n_spans = max(1, min(len(sentinel_ids), round(n_noise / mean_span))) if n_noise else 0
    if n_spans == 0:
        return list(token_ids), []
    starts = sorted(rng.sample(range(n), k=min(n_spans, n)))
    masked = [False] * n
    per_span = max(1, n_noise // len(starts))
    for start in starts:
        for i in range(start, min(n, start + per_span)):
            masked[i] = True
    inputs, targets, sentinel = [], [], 0
    i = 0
    while i < n:
        if masked[i] and sentinel < len(sentinel_ids):
            inputs.append(sentinel_ids[sentinel])
            targets.append(sentinel_ids[sentinel])
            while i < n and masked[i]:
                targets.append(token_ids[i])
                i += 1
            sentinel += 1
        else:
            inputs.append(token_ids[i])
            i += 1
    return inputs, targets
