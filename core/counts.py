"""Parameter counts as every layer passes them: trainable and total, and the share trained.

Counting a model's tensors needs torch (models.params); the result does not, so the search,
the warm starts and the results row hold this type without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def trainable_pct(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __add__(self, other: "ParameterCount") -> "ParameterCount":
        return ParameterCount(self.trainable + other.trainable, self.total + other.total)
