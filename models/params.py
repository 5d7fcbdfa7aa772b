"""Trainable-parameter accounting by the paper's definition (PAPER.md §3).

total = the VL language model including the 200 added token rows, the V->L projection and
every inserted PETL parameter, excluding CLIP; shared tensors count once.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def trainable_pct(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count a VL model's parameters; `parameters()` already yields each shared tensor once."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return ParameterCount(trainable=trainable, total=total)
