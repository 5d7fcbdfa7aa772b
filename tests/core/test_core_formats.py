"""Numbers print the same way in the CLI's report and on the dashboard (core.formats)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from core.formats import COUNT, HYPERVOLUME, MEMORY, MISSING, PERCENT, SCORE, SECONDS


@pytest.mark.parametrize(
    ("fmt", "value", "text"),
    [
        (SCORE, 44.9286, "44.9"),
        (SCORE, 100, "100.0"),
        (PERCENT, 4, "4.00%"),
        (PERCENT, 4.2005, "4.20%"),
        (COUNT, 1234567, "1,234,567"),
        (COUNT, 798047.0, "798,047"),  # pandas hands counts out as floats where a column has gaps
        (SECONDS, 612.345, "612.3 s"),
        (SECONDS, 4321.0, "4,321.0 s"),
        (MEMORY, 67.9688, "68.0 MiB"),
        (HYPERVOLUME, 3688.84, "3,688.8"),
    ],
)
def test_formats(fmt: object, value: float, text: str) -> None:
    assert fmt(value) == text  # type: ignore[operator]


@pytest.mark.parametrize("missing", [None, float("nan"), float("inf"), "n/a", True, pd.NA])
def test_missing_values_print_as_a_dash(missing: object) -> None:
    assert SCORE(missing) == PERCENT(missing) == COUNT(missing) == MISSING


def test_printf_patterns_say_the_same() -> None:
    # Streamlit formats table columns in the browser with these (sprintf-js, plus "," for thousands).
    assert (SCORE.printf, PERCENT.printf, COUNT.printf) == ("%.1f", "%.2f%%", "%,d")
    assert (SECONDS.printf, MEMORY.printf, HYPERVOLUME.printf) == ("%,.1f s", "%,.1f MiB", "%,.1f")
    assert PERCENT.number(4) == "4.00"


def test_core_formats_import_no_torch() -> None:
    code = "import sys, core.formats, dashboard.study; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_cli_and_dashboard_print_the_front_alike() -> None:
    from core.budget import parse_budget
    from dashboard.processing import front_report
    from search.report import front_table

    rows = pd.DataFrame(
        {
            "study_name": "s", "trial_number": [0, 1], "status": "complete", "method": ["lora", "full_ft"],
            "config": [{"method": "lora", "method_params": {"rank": 8}}, {"method": "full_ft"}],
            "score": [44.9286, 56.25], "trainable_pct": [4.0, 100.0], "trainable_params": [798_047, 19_951_175],
        }
    )  # fmt: skip
    printed = front_table(rows, parse_budget("5%")).splitlines()
    shown = front_report(rows, parse_budget("5%"))
    for line, (_, row) in zip(printed[2:], shown.iterrows(), strict=True):
        assert line.split()[0] == row["trial"]
        for column in ("score", "trainable", "budget 5%"):
            assert row[column] in line
        assert row["trainable %"].removesuffix("%") in line  # the CLI's column header holds the %
    assert shown["score"].tolist() == ["44.9", "56.2"] and shown["trainable"].tolist() == ["798,047", "19,951,175"]
