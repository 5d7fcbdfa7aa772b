"""How numbers are printed, by the CLI and the dashboard alike (torch-free).

One :class:`NumberFormat` per kind of number: scores to one decimal, percentages to two,
counts with thousands separators, times and memory with their units. Each renders a value
as text (the CLI, the dashboard's captions, tooltips and metrics) and gives the same
format as a printf pattern (the dashboard's table columns, which Streamlit formats in
the browser and keeps sortable as numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COUNT",
    "HYPERVOLUME",
    "MEMORY",
    "MISSING",
    "PERCENT",
    "SCORE",
    "SECONDS",
    "NumberFormat",
]

# What a missing value (None, NaN) prints as.
MISSING = "-"


@dataclass(frozen=True)
class NumberFormat:
    """A Python format spec and the unit after it.

    Attributes:
        spec: A spec of ``format()`` that printf (sprintf-js, as Streamlit uses it) reads the
            same way: ``.1f``, ``,.1f`` or ``,d``.
        unit: Text after the number (``%``, `` s``, `` MiB``).
    """

    spec: str
    unit: str = ""

    def __call__(self, value: Any) -> str:
        """``value`` with its unit, or :data:`MISSING` when it is None or not finite."""
        text = self.number(value)
        return text if text == MISSING else text + self.unit

    def number(self, value: Any) -> str:
        """``value`` without the unit, for a column whose header names it."""
        if value is None or isinstance(value, bool):
            return MISSING
        try:
            number = float(value)
        except (TypeError, ValueError):
            return MISSING
        if not math.isfinite(number):
            return MISSING
        # An integer spec cannot take a float (numpy and pandas hand out floats for counts).
        return format(round(number) if self.spec.endswith("d") else number, self.spec)

    @property
    def printf(self) -> str:
        """The same format as a printf pattern, e.g. ``%.2f%%`` for :data:`PERCENT`."""
        return "%" + self.spec + self.unit.replace("%", "%%")

    @property
    def plotly(self) -> str:
        """The number's part as a d3 format, for Plotly hover templates and axis ticks."""
        return self.spec


SCORE = NumberFormat(".1f")  # accuracy in %, CIDEr x 100, and their averages
PERCENT = NumberFormat(".2f", "%")  # trainable parameters, as % of the total
COUNT = NumberFormat(",d")  # parameters, trials, files
SECONDS = NumberFormat(",.1f", " s")
MEMORY = NumberFormat(",.1f", " MiB")  # peak memory is stored in MiB (training.memory)
HYPERVOLUME = NumberFormat(",.1f")  # score x percentage points
