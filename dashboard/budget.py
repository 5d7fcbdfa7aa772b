"""The budget text a user types, read the way ``python -m search.export --budget`` reads it.

``search.budget`` imports torch (through ``models.params``), which the dashboard must
not, so the three accepted forms are parsed here again; a test checks both parsers agree.
The text is kept as typed (stripped), because the exported recipe records it verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ACCEPTED_FORMS", "BudgetLimit", "BudgetTextError", "parse_budget_text"]

ACCEPTED_FORMS = "a percentage in (0, 100] such as 5%, a fraction in (0, 1] such as 0.05, or a count such as 150k, 2M or 1.5G"
_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


class BudgetTextError(ValueError):
    """The budget text is not one of the accepted forms."""


@dataclass(frozen=True)
class BudgetLimit:
    """A parsed budget: exactly one of ``max_pct`` and ``max_params`` is set."""

    text: str
    max_pct: float | None = None
    max_params: int | None = None

    def allows(self, trainable_pct: float, trainable_params: int) -> bool:
        """Whether a trial of this size fits, as ``search.report`` decides its "within" column."""
        if self.max_pct is not None:
            return trainable_pct <= self.max_pct
        return trainable_params <= self.max_params  # type: ignore[operator]

    def line_position(self, column: str, total_params: int | None) -> float | None:
        """Where the budget line goes on an x axis of ``column``, or None if it has no place.

        Args:
            column: ``trainable_pct`` or ``trainable_params``; other axes get no line.
            total_params: The study's total parameter count, when all its trials share
                one; it converts a percentage into a count and back.

        Returns:
            The x position of the line.
        """
        if column == "trainable_pct":
            if self.max_pct is not None:
                return self.max_pct
            return None if not total_params else 100.0 * self.max_params / total_params
        if column == "trainable_params":
            if self.max_params is not None:
                return float(self.max_params)
            return None if not total_params else self.max_pct / 100.0 * total_params
        return None


def parse_budget_text(text: str) -> BudgetLimit:
    """Parse ``5%``, ``0.05`` or ``150k`` exactly as the export command does.

    Args:
        text: The budget as typed.

    Returns:
        The limit, with ``text`` stripped of surrounding whitespace.

    Raises:
        BudgetTextError: One line naming the value and the accepted forms.
    """
    raw = text.strip()
    percent = re.fullmatch(_NUMBER + r"\s*%", raw)
    if percent:
        value = float(percent.group(1))
        if 0 < value <= 100:
            return BudgetLimit(raw, max_pct=100.0 * (value / 100))  # the CLI's arithmetic
        raise BudgetTextError(f"budget {text!r} is outside (0, 100%]; use {ACCEPTED_FORMS}")
    count = re.fullmatch(_NUMBER + r"\s*([kKmMgGbB])", raw)
    if count:
        value = float(count.group(1)) * _SUFFIXES[count.group(2).lower()]
        if value >= 1 and value == int(value):
            return BudgetLimit(raw, max_params=int(value))
        raise BudgetTextError(f"budget {text!r} is not a whole number of parameters >= 1; use {ACCEPTED_FORMS}")
    fraction = re.fullmatch(_NUMBER, raw)
    if fraction:
        value = float(fraction.group(1))
        if 0 < value <= 1:
            return BudgetLimit(raw, max_pct=100.0 * value)
        raise BudgetTextError(
            f"budget {text!r} is a bare number outside (0, 1]; write {raw}% for a percentage or "
            f"{raw}k for a count; accepted: {ACCEPTED_FORMS}"
        )
    raise BudgetTextError(f"budget {text!r} is not understood; use {ACCEPTED_FORMS}")
