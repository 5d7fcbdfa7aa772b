"""Parameter budgets: a percentage, a fraction or an absolute count of trainable parameters.

`5%` and `0.05` mean 5% of the total parameters by the paper's definition (PAPER.md §3);
`2M` or `150k` mean at most that many trainable parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.params import ParameterCount

ACCEPTED_FORMS = "a percentage in (0, 100] such as 5%, a fraction in (0, 1] such as 0.05, or a count such as 150k, 2M or 1.5G"
_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


class BudgetError(ValueError):
    """The budget text is not one of the accepted forms."""


@dataclass(frozen=True)
class Budget:
    """A limit on trainable parameters, as a fraction of the total or as a count."""

    text: str
    fraction: float | None = None
    count: int | None = None

    @property
    def max_pct(self) -> float | None:
        return None if self.fraction is None else 100.0 * self.fraction

    def allows(self, params: ParameterCount) -> bool:
        if self.fraction is not None:
            return params.trainable <= self.fraction * params.total
        return params.trainable <= int(self.count)

    def describe(self) -> str:
        if self.fraction is not None:
            return f"{self.max_pct:g}% of parameters"
        return f"{self.count:,} trainable parameters"


def parse_budget(text: str) -> Budget:
    """Parse `--budget`.

    Raises:
        BudgetError: one line naming the value and the accepted forms.
    """
    raw = text.strip()
    percent = re.fullmatch(_NUMBER + r"\s*%", raw)
    if percent:
        value = float(percent.group(1))
        if 0 < value <= 100:
            return Budget(text=raw, fraction=value / 100)
        raise BudgetError(f"budget {text!r} is outside (0, 100%]; use {ACCEPTED_FORMS}")
    count = re.fullmatch(_NUMBER + r"\s*([kKmMgGbB])", raw)
    if count:
        value = float(count.group(1)) * _SUFFIXES[count.group(2).lower()]
        if value >= 1 and value == int(value):
            return Budget(text=raw, count=int(value))
        raise BudgetError(f"budget {text!r} is not a whole number of parameters >= 1; use {ACCEPTED_FORMS}")
    fraction = re.fullmatch(_NUMBER, raw)
    if fraction:
        value = float(fraction.group(1))
        if 0 < value <= 1:
            return Budget(text=raw, fraction=value)
        raise BudgetError(
            f"budget {text!r} is a bare number outside (0, 1]; write {raw}% for a percentage or "
            f"{raw}k for a count; accepted: {ACCEPTED_FORMS}"
        )
    raise BudgetError(f"budget {text!r} is not understood; use {ACCEPTED_FORMS}")
