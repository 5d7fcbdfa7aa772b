"""core.seeds: configurations trained with several seeds read as one point, mean ± std."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core.pareto import best_within_budget, pareto_front
from core.seeds import SEED_COLUMNS, by_configuration, closer_than_noise, mean_text, seed_of


def row(number: int, score: float | None, *, seed: int = 0, of: int | None = None, status: str = "complete", pct: float = 1.0) -> dict:
    config = {"method": "lora", "method_params": {"rank": number}, "training": {"seed": seed}}
    return {
        "trial_number": number,
        "status": status,
        "method": "lora",
        "config": config,
        "score": score,
        "task_scores": None if score is None else {"vqa": score, "gqa": score - 10},
        "trainable_pct": pct,
        "trainable_params": int(pct * 1000),
        "replicate_of": of,
    }


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_replicates_fold_into_the_trial_they_repeat() -> None:
    results = frame(row(0, 60.0), row(1, 50.0, pct=0.5), row(2, 56.0, seed=1, of=0), row(3, 58.0, seed=2, of=0))
    configs = by_configuration(results)
    assert list(configs["trial_number"]) == [0, 1]
    first, second = configs.iloc[0], configs.iloc[1]
    assert first["score"] == pytest.approx(58.0) and first["seeds"] == 3
    assert first["score_std"] == pytest.approx(2.0)  # sample std of 60, 56, 58
    assert first["seed_scores"] == {"0": 60.0, "1": 56.0, "2": 58.0}
    assert first["task_scores"] == {"vqa": pytest.approx(58.0), "gqa": pytest.approx(48.0)}
    assert second["score"] == 50.0 and second["seeds"] == 1 and math.isnan(second["score_std"])
    assert set(SEED_COLUMNS) <= set(configs.columns)


def test_seeds_that_did_not_complete_are_not_averaged() -> None:
    results = frame(row(0, 60.0), row(1, None, seed=1, of=0, status="failed"), row(2, None, seed=1, of=0, status="running"))
    configs = by_configuration(results)
    assert list(configs["trial_number"]) == [0]
    assert configs.iloc[0]["score"] == 60.0 and configs.iloc[0]["seeds"] == 1


def test_a_trial_that_did_not_complete_keeps_its_row_with_no_seeds() -> None:
    configs = by_configuration(frame(row(0, None, status="infeasible"), row(1, 40.0)))
    assert list(configs["status"]) == ["infeasible", "complete"] and list(configs["seeds"]) == [0, 1]


def test_results_of_an_older_database_have_no_replicates() -> None:
    results = frame(row(0, 60.0), row(1, 50.0)).drop(columns=["replicate_of"])
    configs = by_configuration(results)
    assert list(configs["score"]) == [60.0, 50.0] and list(configs["seeds"]) == [1, 1]


def test_the_best_and_the_front_rank_by_the_mean() -> None:
    # Trial 0 drew a lucky first seed (64) but averages 57; trial 1 scored 59 with one seed.
    results = frame(row(0, 64.0), row(1, 59.0), row(2, 50.0, seed=1, of=0))
    assert int(best_within_budget(results, max_pct=5.0)["trial_number"]) == 0  # the raw rows: the lucky draw wins
    configs = by_configuration(results)
    assert int(best_within_budget(configs, max_pct=5.0)["trial_number"]) == 1
    assert list(pareto_front(configs)["trial_number"]) == [1]


def test_mean_text_shows_the_spread_only_with_several_seeds() -> None:
    configs = by_configuration(frame(row(0, 60.0), row(1, 50.0, pct=0.5), row(2, 57.0, seed=1, of=0)))
    assert mean_text(configs.iloc[0]) == "58.5 ± 2.1 (2 seeds)"
    assert mean_text(configs.iloc[1]) == "50.0"


def test_two_configurations_closer_than_their_noise_are_flagged() -> None:
    configs = by_configuration(frame(row(0, 60.0), row(1, 59.0), row(2, 56.0, seed=1, of=0), row(3, 58.0, seed=1, of=1)))
    first, second = configs.iloc[0], configs.iloc[1]
    close = closer_than_noise(first, second)
    assert close is not None and close.difference == pytest.approx(0.5) and close.noise == pytest.approx(2.828, abs=1e-3)
    assert "trials 0 and 1" in close.describe(0, 1) and "search.confirm" in close.describe(0, 1)
    far = by_configuration(frame(row(0, 70.0), row(1, 50.0), row(2, 69.0, seed=1, of=0)))
    assert closer_than_noise(far.iloc[0], far.iloc[1]) is None
    single = by_configuration(frame(row(0, 60.0), row(1, 59.5)))
    assert closer_than_noise(single.iloc[0], single.iloc[1]) is None  # no seed noise known: nothing to say


def test_seed_of_reads_the_training_seed() -> None:
    assert seed_of({"training": {"seed": 3}}) == 3
    assert seed_of({"training": {}}) is None and seed_of(None) is None
