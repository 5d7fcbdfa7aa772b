"""Parameter budgets: a percentage, a fraction or an absolute count of trainable parameters.

`5%` and `0.05` mean 5% of the total parameters by the paper's definition (PAPER.md §3);
`2M` or `150k` mean at most that many trainable parameters. One parser and one typed
`Budget` for every layer: the search checks configurations against it, the report and the
dashboard mark the stored rows within it and draw its line. The text is kept as typed
(stripped), because the exported recipe records it verbatim.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ACCEPTED_FORMS", "Budget", "BudgetError", "Counts", "parse_budget"]

ACCEPTED_FORMS = "a percentage in (0, 100] such as 5%, a fraction in (0, 1] such as 0.05, or a count such as 150k, 2M or 1.5G"
_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


class BudgetError(ValueError):
    """The budget text is not one of the accepted forms."""


class Counts(Protocol):
    """Exact parameter counts of a configuration (``models.params.ParameterCount`` is one)."""

    @property
    def trainable(self) -> int: ...

    @property
    def total(self) -> int: ...


@dataclass(frozen=True)
class Budget:
    """A limit on trainable parameters: exactly one of ``fraction`` (of the total) and ``count`` is set."""

    text: str
    fraction: float | None = None
    count: int | None = None

    @property
    def max_pct(self) -> float | None:
        """The limit as a percentage of the total, or None for a count."""
        return None if self.fraction is None else 100.0 * self.fraction

    @property
    def max_params(self) -> int | None:
        """The limit as a number of trainable parameters, or None for a fraction."""
        return self.count

    def allows(self, params: Counts) -> bool:
        """Whether a configuration of these exact counts fits (the search's check, before training)."""
        if self.fraction is not None:
            return params.trainable <= self.fraction * params.total
        return params.trainable <= int(self.count)  # type: ignore[arg-type]

    def allows_row(self, trainable_pct: float, trainable_params: int) -> bool:
        """Whether a stored trial fits: the "within" of the CLI's report and the dashboard's front."""
        if self.fraction is not None:
            return trainable_pct <= self.max_pct  # type: ignore[operator]
        return trainable_params <= self.count  # type: ignore[operator]

    def describe(self) -> str:
        if self.fraction is not None:
            return f"{self.max_pct:g}% of parameters"
        return f"{self.count:,} trainable parameters"

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
            return None if not total_params else 100.0 * self.count / total_params  # type: ignore[operator]
        if column == "trainable_params":
            if self.count is not None:
                return float(self.count)
            return None if not total_params else self.max_pct / 100.0 * total_params  # type: ignore[operator]
        return None


def parse_budget(text: str) -> Budget:
    """Parse `--budget` (or the dashboard's budget box): ``5%``, ``0.05`` or ``150k``.

    Args:
        text: The budget as typed.

    Returns:
        The budget, with ``text`` stripped of surrounding whitespace.

    Raises:
        BudgetError: one line naming the value and the accepted forms.
    """
    raw = text.strip()
    if not raw.isascii():
        # Python's \d and float() accept any script's digits ('５%', '٥%'): refuse them rather than
        # record a budget text that other tools (and people) read differently.
        ascii_form = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in unicodedata.normalize("NFKC", raw))
        raise BudgetError(f"budget {text!r} has non-ASCII characters; write it with ASCII digits, such as {ascii_form!r}")
    if raw.startswith("-"):
        raise BudgetError(f"budget {text!r} is negative; a budget must be positive: {ACCEPTED_FORMS}")
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
