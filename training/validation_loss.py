"""The teacher-forced loss of held-out examples: a cheap, smooth measure of how far a model has
learnt a task, for ranking trials early in training (search.fidelity's rungs).

Generated answers are a coarse measure early on: until a model has learnt a task, greedy decoding
gives most questions the same few answers, and their score barely tells two trials apart
(benchmarks/rung_reliability.py measured it). The loss of the reference answers moves with every
step of learning, and needs one forward pass per target instead of a decode.
"""

from __future__ import annotations

from typing import Sequence

import torch

from models.vl_model import VLSeq2Seq
from training.batches import Collator
from training.precision import autocast
from training.text_examples import TextExample


def example_losses(
    model: VLSeq2Seq,
    collator: Collator,
    examples: Sequence[TextExample],
    task: str,
    batch_size: int,
    max_target_tokens: int,
    device: torch.device,
    max_source_tokens: int | None = None,
    precision: str = "fp32",
) -> dict[int | str, float]:
    """Each example's loss (mean token negative log-likelihood) of its targets, weighted as
    training weights them (VQA's answers by their soft scores), keyed by the example's key.

    Every target is scored, not one drawn at random: the same model gives the same loss.
    """
    model.eval()
    model.task_context.active = task
    rows = [(n, target, weight) for n, e in enumerate(examples) for target, weight in zip(e.targets, e.weights, strict=True)]
    weighted = torch.zeros(len(examples), dtype=torch.float64)
    total_weight = torch.zeros(len(examples), dtype=torch.float64)
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            batch = collator.targets([examples[n] for n, _, _ in chunk], [t for _, t, _ in chunk], max_target_tokens, max_source_tokens)
            batch = batch.to(device)
            with autocast(precision, device):
                losses = model(labels=batch.labels, **batch.model_inputs()).double().cpu()
            owners = torch.tensor([n for n, _, _ in chunk])
            weights = torch.tensor([w for _, _, w in chunk], dtype=torch.float64)
            weighted.index_add_(0, owners, losses * weights)
            total_weight.index_add_(0, owners, weights)
    mean = weighted / total_weight.clamp(min=1e-12)
    return {example.key: float(mean[n]) for n, example in enumerate(examples)}
