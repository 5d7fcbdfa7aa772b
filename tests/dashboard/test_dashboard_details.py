"""One trial's configuration, curves, breakdown and recipe; trials compared."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from core.results import learning_curve
from dashboard.details import (
    breakdown_frame,
    compare_frame,
    config_frame,
    curve_frame,
    data_description,
    find_breakdown,
    find_curve,
    recipe_file_name,
    recipe_text,
    task_metrics,
)


def _points(frame: pd.DataFrame) -> list[tuple[float, str, float]]:
    return list(frame.itertuples(index=False, name=None))


def test_curve_of_the_result_contract() -> None:
    stored = learning_curve([2.5, 1.5], window=20, steps=30, evaluations=[(20, {"vqa": 41.0}), (30, {"vqa": 43.5})])
    assert stored == {"loss": {"20": 2.5, "30": 1.5}, "validation vqa": {"20": 41.0, "30": 43.5}}
    assert _points(curve_frame(stored)) == [
        (20.0, "loss", 2.5),
        (30.0, "loss", 1.5),
        (20.0, "validation vqa", 41.0),
        (30.0, "validation vqa", 43.5),
    ]


def test_rung_losses_are_their_own_series_not_validation_scores() -> None:
    stored = learning_curve([2.5, 1.5], window=20, steps=30, evaluations=[(10, {"vqa": 2.1})], measure="loss")
    assert stored == {"loss": {"20": 2.5, "30": 1.5}, "held-out loss vqa": {"10": 2.1}}


def test_old_loss_lists_draw_at_steps_one_two_and_junk_is_dropped() -> None:
    assert _points(curve_frame([2.5, 1.5])) == [(1.0, "loss", 2.5), (2.0, "loss", 1.5)]
    frame = curve_frame({"loss": {"20": 2.0, "40": float("nan")}, "val_loss": {"20": 2.2, "40": 1.9}})
    assert _points(frame) == [(20.0, "loss", 2.0), (20.0, "val_loss", 2.2), (40.0, "val_loss", 1.9)]
    for junk in (None, "not json", 3, {}, [], {"loss": "x"}, [None, "a"]):
        assert curve_frame(junk).empty and list(curve_frame(junk).columns) == ["step", "series", "value"]


def test_find_curve_reads_the_results_row_and_old_rows_from_the_user_attribute() -> None:
    frame, source = find_curve({"learning_curve": None}, {"loss_curve": [3.0, 2.0]})
    assert source == "Optuna user attribute `loss_curve`" and frame["value"].tolist() == [3.0, 2.0]
    frame, source = find_curve({"learning_curve": {"loss": {"20": 1.0}}}, {"loss_curve": [3.0]})
    assert source == "results column `learning_curve`" and frame["value"].tolist() == [1.0]
    assert find_curve({}, None)[1] is None


def test_breakdown() -> None:
    frame = breakdown_frame({"adapters": {"down": 100, "up": 120}, "layer_norm": 40, "note": "x"})
    assert frame.values.tolist() == [["adapters.up", 120.0], ["adapters.down", 100.0], ["layer_norm", 40.0]]
    assert find_breakdown({"param_breakdown": {"a": {"trainable": 1, "total": 2}}})["part"].tolist() == ["a.total", "a.trainable"]
    assert find_breakdown({"param_breakdown": None}).empty and find_breakdown({}).empty


def test_config_and_task_metrics(results: pd.DataFrame) -> None:
    row = results.set_index("trial_number", drop=False).loc[0]
    config = dict(config_frame(row["config"]).values.tolist())
    assert config["method_params.reduction_factor"] == "8" and config["tasks"] == "vqa, gqa"
    assert config["training.learning_rate"] == "0.001"
    assert task_metrics(row).values.tolist() == [["gqa", 54.5], ["vqa", 65.9]]
    assert task_metrics({"task_scores": None}).empty


def test_compare_frame(results: pd.DataFrame) -> None:
    table = compare_frame(results, [0, 4])
    assert list(table.columns) == ["#0", "#4", "differs"]
    assert table.loc["method"].tolist() == ["adapter", "lora", True]
    assert table.loc["config.backbone"].tolist() == ["tiny-bart", "tiny-bart", False]
    assert table.loc["task:vqa"].tolist() == ["65.9", "", True]
    assert table.loc["config.method_params.rank", "#0"] == ""
    with pytest.raises(KeyError, match=r"No trial \[42\]"):
        compare_frame(results, [0, 42])


def test_recipe_text_records_the_redacted_url_and_the_budget_as_typed(results: pd.DataFrame) -> None:
    row = results.set_index("trial_number", drop=False).loc[0]
    url = "postgresql://alice:s3cret@db:5432/studies"
    text = recipe_text(row, storage_url=f"  {url} ", budget_text=" 5% ", fmt="yaml")
    recipe = yaml.safe_load(text)
    assert recipe["source"] == {
        "study": "clip-bart-demo", "trial_number": 0, "storage": "postgresql://alice:***@db:5432/studies", "budget": "5%",
    }  # fmt: skip
    assert "s3cret" not in text
    assert json.loads(recipe_text(row, storage_url=url, budget_text=None, fmt="json"))["source"]["budget"] is None
    assert recipe_file_name("a/b c", 3, "yaml") == "a_b_c-trial-3.yaml"


def test_data_description_lists_the_tasks_and_the_digest() -> None:
    data = {
        "tasks": {"shapes": {"format": "jsonl", "train": "s/train.jsonl", "val": "s/val.jsonl"}},
        "source": "/d/data.yaml",
        "base": "/d",
    }
    row = {"environment": json.dumps({"inputs": {"data": data, "data_files": {"files": 1234, "sha256": "ab" * 32}}})}
    frame, caption = data_description(row)
    assert frame.to_dict("records") == [{"task": "shapes", "format": "jsonl", "files": "train: s/train.jsonl, val: s/val.jsonl"}]
    assert caption == "From /d/data.yaml (relative paths from /d); 1,234 files by content, digest `abababababababab`."
    assert data_description({"environment": {"inputs": {}}})[1] is None  # rows from before data descriptions
