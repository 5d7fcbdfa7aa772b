"""A real 2-trial study through the CLI, then export, then training the exported recipe.

The study, its export and the trained run are the session's `shared_run` (tests/conftest.py),
which the inference tests read too.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys

import optuna
import pytest
import yaml

from models.build import build_vl_model
from models.config import TrialConfig
from models.petl.presets import RUN_PRESETS
from models.weights import WEIGHTS_FILE, load_trainable
from search.warm_start import warm_start_order
from storage import load_results, make_engine
from training.environment import prepare_environment
from training.trial import score_model


def cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def study(shared_run):
    """The session's shared 2-trial study on VQA and NLVR2 (tests/conftest.py `shared_run`)."""
    return shared_run.url, shared_run.launch


def test_study_rows_in_optuna_and_in_the_results_table(study, shared_run):
    url, _ = study
    every = optuna.load_study(study_name=shared_run.study, storage=url).trials
    trials = [t for t in every if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 2
    # The other warm starts stay queued for a longer relaunch.
    assert {t.state for t in every[2:]} <= {optuna.trial.TrialState.WAITING}
    # The strongest paper configuration comes first, resized to the paper's 4.18% on the tiny
    # backbone (its own reduction factor 8 would be 6% of it, over the budget).
    warm_start = trials[1].user_attrs["warm_start"]
    assert warm_start == "single-adapter"
    assert warm_start_order().index(warm_start) == 0
    results = load_results(make_engine(url), shared_run.study)
    assert list(results["trial_number"]) == [0, 1]
    assert set(results["status"]) == {"complete"}
    assert list(results["method"]) == ["full_ft", RUN_PRESETS[warm_start].method]  # the reference, then the warm start
    reference, adapter = results.iloc[0], results.iloc[1]
    assert reference["trainable_pct"] == 100.0
    assert 0 < adapter["trainable_pct"] <= 5.0
    for optuna_trial, (_, row) in zip(trials, results.iterrows()):
        assert optuna_trial.values == pytest.approx([row["score"], row["trainable_pct"]])
        assert optuna_trial.user_attrs["config"] == row["config"]
        # The study's score is the average of its tasks' (the paper's aggregate).
        assert set(row["task_scores"]) == set(shared_run.tasks)
        assert row["train_seconds"] > 0 and statistics.fmean(row["task_scores"].values()) == pytest.approx(row["score"])


def test_launch_prints_the_front_and_where_results_went(study):
    url, launch = study
    assert "Pareto front" in launch.stdout and "adapter" in launch.stdout
    assert "Full fine-tuning reference: trial 0" in launch.stdout
    assert url in launch.stdout and "python -m dashboard" in launch.stdout


def test_relaunch_resumes_without_repeating_trials(shared_run, data_dir, tmp_path):
    # A copy: the relaunch may write to its study, which the other tests share unchanged.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    shutil.copyfile(shared_run.url.removeprefix("sqlite:///"), tmp_path / "study.db")
    before = len(optuna.load_study(study_name=shared_run.study, storage=url).trials)
    # The default tasks and steps differ from the study's: the stored settings win, and say so.
    again = cli(
        "search.launch", "--budget", "5%", "--trials", "2", "--study", shared_run.study, "--storage", url, "--data-dir", str(data_dir)
    )
    assert "resuming it with its stored settings" in again.stderr and "tasks, steps ignored" in again.stderr
    after = optuna.load_study(study_name=shared_run.study, storage=url).trials
    assert len(after) == before and sum(t.state == optuna.trial.TrialState.COMPLETE for t in after) == 2


def test_export_then_train_reproduces_the_recipe(shared_run, data_dir):
    url = shared_run.url
    recipe = yaml.safe_load(shared_run.recipe.read_text())  # exported by `search.export --budget 5%`
    best = load_results(make_engine(url), shared_run.study).iloc[1]
    assert recipe["config"] == best["config"]
    assert recipe["expected"]["score"] == pytest.approx(best["score"])
    assert recipe["source"] == {"study": shared_run.study, "trial_number": 1, "storage": url, "budget": "5%"}

    out = shared_run.run_dir  # trained by `search.train --recipe`
    metrics = json.loads((out / "metrics.json").read_text())
    # Same config, same seed, same machine: the recipe trains to the score the search measured.
    assert metrics["score"] == pytest.approx(recipe["expected"]["score"])
    config = TrialConfig.from_dict(recipe["config"])
    env = prepare_environment(data_dir, config.backbone, shared_run.tasks)
    model, tokenizer = build_vl_model(config, env.location)
    load_trainable(model, out / WEIGHTS_FILE)
    scores = score_model(model, tokenizer, config, env, show_progress=False)
    assert set(scores) == set(shared_run.tasks) and statistics.fmean(scores.values()) == pytest.approx(metrics["score"])


def test_the_main_command_runs_on_a_fresh_data_directory(tmp_path):
    """`python -m search.launch --budget 5%` on a machine with nothing prepared: the data
    directory does not exist yet, and the launch builds everything the default backbone (the
    VL-pretrained tiny CLIP + T5) needs before its first trial. Kept short: one task, one trial
    of two steps; the suite's VLPETL_* settings shorten both pretraining stages."""
    data_dir = tmp_path / "fresh" / "data"
    launch = cli(
        "search.launch",
        "--budget",
        "5%",
        "--data-dir",
        str(data_dir),
        "--tasks",
        "vqa",
        "--trials",
        "1",
        "--steps",
        "2",
        "--rungs",
        "0",
        "--no-reference",
        "--no-warm-start",
    )
    assert (data_dir / "backbones" / "tiny-clip+tiny-t5-vlp" / "vl_projection.safetensors").is_file()
    assert (data_dir / "studies.db").is_file()
    results = load_results(make_engine(f"sqlite:///{data_dir / 'studies.db'}"))
    # Without warm starts the sampler may first propose a configuration over the budget: it is
    # recorded as infeasible, never trained, and the study goes on to its one trained trial.
    assert set(results["status"]) <= {"complete", "infeasible"}
    complete = results[results["status"] == "complete"]
    assert len(complete) == 1
    assert complete.iloc[0]["config"]["backbone"] == "tiny-clip+tiny-t5-vlp"
    assert "Results stored in" in launch.stdout
