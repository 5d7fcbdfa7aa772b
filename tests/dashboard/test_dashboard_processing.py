"""Plot frame, tables, summary and chart built from the seeded study."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard import (
    front_table,
    hover_text,
    key_hyperparameters,
    pareto_figure,
    plot_frame,
    summarize,
    trials_table,
)
from dashboard.processing import DIMMED_OPACITY, MAX_HYPERPARAMETERS


def test_plot_frame_flags_the_front(results: pd.DataFrame, seeded: Any) -> None:
    points = plot_frame(results)
    assert len(points) == seeded.n_complete
    assert points[points["on_front"]]["trial_number"].tolist() == list(seeded.front)
    assert points["trainable_pct"].is_monotonic_increasing
    assert set(points.loc[~points["on_front"], "opacity"]) == {DIMMED_OPACITY}
    assert set(points.loc[points["on_front"], "opacity"]) == {1.0}
    assert points.set_index("trial_number").loc[1, "label"] == "#1 lora"


def test_plot_frame_drops_zero_pct(results: pd.DataFrame) -> None:
    zero = results.copy()
    zero.loc[zero["trial_number"] == 2, ["trainable_pct", "trainable_params"]] = (0.0, 0)
    assert 2 not in plot_frame(zero)["trial_number"].tolist()


def test_key_hyperparameters_for_trial_configs(results: pd.DataFrame) -> None:
    lora = results.set_index("trial_number").loc[1, "config"]
    assert key_hyperparameters(lora) == {
        "rank": 8, "sharing": "single", "lr": 1e-3, "backbone": "tiny-bart",
    }  # fmt: skip


def test_key_hyperparameters_other_layouts() -> None:
    flat = {"method": "prompt", "prompt.length": 40, "prompt": {"hidden": 800}, "tasks": ["vqa"]}
    assert key_hyperparameters(flat) == {"prompt.length": 40, "prompt.hidden": 800}
    many = {f"k{i}": i for i in range(20)}
    assert len(key_hyperparameters(many)) == MAX_HYPERPARAMETERS
    assert key_hyperparameters(None) == {}


def test_hover_text_names_method_and_hyperparameters(results: pd.DataFrame) -> None:
    row = results.set_index("trial_number").loc[0].to_dict() | {"trial_number": 0}
    text = hover_text(row)
    assert text.startswith("<b>#0 adapter</b><br>score 77.40")
    assert "4.18% (4,180 params)" in text
    assert "reduction_factor=8<br>sharing=single<br>lr=0.001" in text


def test_summary(results: pd.DataFrame, seeded: Any) -> None:
    summary = summarize(results)
    assert (summary.complete, summary.infeasible, summary.failed) == (seeded.n_complete, 1, 1)
    assert (summary.running, summary.pruned) == (1, 0)
    assert summary.best_score == 77.6
    assert summary.front_size == len(seeded.front)
    assert summary.hypervolume > 0


def test_tables(results: pd.DataFrame, seeded: Any) -> None:
    front = front_table(results)
    assert front["trial_number"].tolist() == list(seeded.front)
    assert front.loc[0, "hyperparameters"].startswith("rank=8, sharing=single")

    trials = trials_table(results)
    assert len(trials) == len(results)
    assert {"task:vqa", "task:gqa"} <= set(trials.columns)
    assert trials.loc[0, "task:vqa"] == 65.9 and pd.isna(trials.loc[2, "task:vqa"])
    assert not any(isinstance(v, dict) for v in trials.to_numpy().ravel())


def test_figure_without_and_with_budget(results: pd.DataFrame, seeded: Any) -> None:
    points = plot_frame(results)
    plain = pareto_figure(points)
    markers = [t for t in plain.data if "markers" in t.mode]
    assert sum(len(t.x) for t in markers) == seeded.n_complete
    assert not plain.layout.shapes

    budget = pareto_figure(points, budget_pct=5.0)
    assert budget.layout.shapes[0].x0 == 5.0
    assert budget.layout.annotations[0].text == "budget 5%"
    assert pareto_figure(points, budget_pct=0.0).layout.shapes == ()
