"""The rung-reliability benchmark's measures and its report on the committed measured trials."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def rung_reliability(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("rung_reliability")


def test_ranking_per_task_weighs_every_task_alike_whatever_the_scale_of_its_loss(rung_reliability) -> None:
    # Trial 0 leads on three tasks by a little and trails on the fourth, whose loss is ten times larger,
    # by a lot: the mean loss puts it last, the ranks per task first.
    losses = {
        0: {"vqa": 0.50, "gqa": 0.80, "caption": 0.90, "nlvr2": 6.0},
        1: {"vqa": 0.55, "gqa": 0.85, "caption": 0.95, "nlvr2": 4.0},
        2: {"vqa": 0.60, "gqa": 0.90, "caption": 1.00, "nlvr2": 4.5},
    }
    measured = [{"rung_task_losses": {"25": {"32": by_task}}} for by_task in losses.values()]
    means = [sum(by_task.values()) / 4 for by_task in losses.values()]
    assert max(means) == means[0]
    ranks = rung_reliability.mean_task_ranks(measured, "25", "32")
    assert ranks == [1.5, 1.75, 2.75]


def test_replay_reports_the_committed_trials_with_each_tasks_share(rung_reliability, monkeypatch, capsys) -> None:
    measured = BENCHMARKS / "measured" / "rung_trials_pinned.json"
    monkeypatch.setattr(sys, "argv", ["rung_reliability.py", "--replay", str(measured)])
    rung_reliability.main()
    out = capsys.readouterr().out
    assert f"--replay {measured}" in out
    header = next(line for line in out.splitlines() if line.startswith("| rung step"))
    assert "held-out loss ranked per task, first 32" in header
    first_rung = next(line for line in out.splitlines() if line.startswith("| 25 ("))
    assert len(first_rung.split("|")) == len(header.split("|"))  # every measure has a value at the first rung
    assert "caption standard deviation" in out and "nlvr2 standard deviation" in out
