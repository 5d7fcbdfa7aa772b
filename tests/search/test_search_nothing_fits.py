"""A budget nothing can fit: the search says so, names the smallest configuration it tried, and exits 1."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from core.budget import parse_budget
from search.report import nothing_fits
from storage import load_results, make_engine


def test_a_budget_nothing_fits_is_explained(data_dir, env, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    # Every method trains at least the V->L projection (tens of thousands of parameters on the
    # embedded backbone): 1k admits nothing, so no trial trains and the study ends without an answer.
    command = [
        sys.executable, "-m", "search.launch", "--workers", "1", "--budget", "1k", "--trials", "1", "--steps", "1", "--rungs", "0",
        "--no-reference", "--no-warm-start", "--tasks", "vqa", "--study", "tiny", "--storage", url, "--data-dir", str(data_dir),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 1, result.stderr[-3000:]
    results = load_results(make_engine(url), "tiny")
    assert len(results) >= 1 and set(results["status"]) == {"infeasible"}
    smallest = int(results["trainable_params"].min())
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("search.launch: no configuration tried fits the budget 1k")
    assert f"raise --budget to at least {smallest}" in last and "--space" in last
    assert "Export:" not in result.stdout  # nothing to export


def test_nothing_fits_is_silent_when_a_trial_within_budget_completed() -> None:
    rows = pd.DataFrame(
        {
            "status": ["infeasible", "complete"],
            "method": ["lora", "adapter"],
            "config": [{"method_params": {"rank": 64}}, {"method_params": {"reduction_factor": 8}}],
            "trainable_params": [90_000, 4_000],
            "trainable_pct": [9.0, 0.4],
        }
    )
    assert nothing_fits(rows, parse_budget("5%")) is None
    over = nothing_fits(rows.iloc[:1], parse_budget("5%"))
    assert over is not None and "the smallest (lora rank=64) with 90,000 trainable parameters (9.00%)" in over
    assert nothing_fits(rows.iloc[0:0], parse_budget("5%")) is None  # nothing tried: nothing to say
