"""A real 2-trial study through the CLI, with its confirmation seeds, then export, then training the exported recipe.

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
from core.seeds import by_configuration, mean_text
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
    searched = [t for t in every if "replicate_of" not in t.user_attrs]
    trials = [t for t in searched if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 2
    # The other warm starts stay queued for a longer relaunch.
    assert {t.state for t in searched[2:]} <= {optuna.trial.TrialState.WAITING}
    # The strongest paper configuration comes first, resized to the paper's 4.18% on the tiny
    # backbone (its own reduction factor 8 would be 6% of it, over the budget).
    warm_start = trials[1].user_attrs["warm_start"]
    assert warm_start == "single-adapter"
    assert warm_start_order().index(warm_start) == 0
    results = load_results(make_engine(url), shared_run.study)
    rows = results[results["replicate_of"].isna()]
    assert list(rows["trial_number"]) == [0, 1]
    assert set(results["status"]) == {"complete"}
    assert list(rows["method"]) == ["full_ft", RUN_PRESETS[warm_start].method]  # the reference, then the warm start
    reference, adapter = rows.iloc[0], rows.iloc[1]
    assert reference["trainable_pct"] == 100.0
    assert 0 < adapter["trainable_pct"] <= 5.0
    for optuna_trial, (_, row) in zip(trials, rows.iterrows()):
        assert optuna_trial.values == pytest.approx([row["score"], row["trainable_pct"]])
        assert optuna_trial.user_attrs["config"] == row["config"]
        # The study's score is the average of its tasks' (the paper's aggregate).
        assert set(row["task_scores"]) == set(shared_run.tasks)
        assert row["train_seconds"] > 0 and statistics.fmean(row["task_scores"].values()) == pytest.approx(row["score"])


def test_the_reference_and_the_best_are_confirmed_with_a_second_seed(study, shared_run):
    """--confirm-seeds 2 (the default): each of the two gets one more trial, a row of its own
    that names the trial it repeats; it trains the same configuration with the next seed."""
    url, _ = study
    results = load_results(make_engine(url), shared_run.study)
    replicates = results[results["replicate_of"].notna()]
    assert sorted(int(n) for n in replicates["replicate_of"]) == [0, 1]
    for _, replicate in replicates.iterrows():
        original = results[results["trial_number"] == int(replicate["replicate_of"])].iloc[0]
        assert replicate["status"] == "complete" and replicate["trial_number"] > 1
        assert replicate["config"]["training"]["seed"] == original["config"]["training"]["seed"] + 1
        other = {**replicate["config"], "training": {**replicate["config"]["training"], "seed": original["config"]["training"]["seed"]}}
        assert other == original["config"]
        assert replicate["trainable_params"] == original["trainable_params"]
    configs = by_configuration(results)
    assert list(configs["trial_number"]) == [0, 1] and list(configs["seeds"]) == [2, 2]
    for _, config in configs.iterrows():
        scores = results[(results["trial_number"] == config["trial_number"]) | (results["replicate_of"] == config["trial_number"])]["score"]
        assert config["score"] == pytest.approx(scores.mean())
        assert config["score_std"] == pytest.approx(scores.std(ddof=1))


def test_launch_prints_the_front_and_where_results_went(study, shared_run):
    url, launch = study
    assert "Pareto front" in launch.stdout and "adapter" in launch.stdout
    assert "Full fine-tuning reference: trial 0" in launch.stdout
    configs = by_configuration(load_results(make_engine(url), shared_run.study))
    # The front and the best within budget are read as mean ± standard deviation over the seeds.
    assert "Best within 5%: trial 1 (" in launch.stdout
    assert f"score {mean_text(configs.iloc[1])} at" in launch.stdout and "(2 seeds)" in mean_text(configs.iloc[1])
    assert f"score {mean_text(configs.iloc[0])} at 100.00% trainable" in launch.stdout
    assert url in launch.stdout and "python -m dashboard" in launch.stdout


def test_relaunch_resumes_without_repeating_trials(shared_run, data_dir, tmp_path):
    # A copy: the relaunch may write to its study, which the other tests share unchanged.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    shutil.copyfile(shared_run.url.removeprefix("sqlite:///"), tmp_path / "study.db")
    before = len(optuna.load_study(study_name=shared_run.study, storage=url).trials)
    # The default tasks and steps differ from the study's: the stored settings win, and say so.
    again = cli(
        "search.launch",
        "--workers",
        "1",
        "--budget",
        "5%",
        "--trials",
        "2",
        "--study",
        shared_run.study,
        "--storage",
        url,
        "--data-dir",
        str(data_dir),
    )
    assert "resuming it with its stored settings" in again.stderr and "tasks, steps ignored" in again.stderr
    after = optuna.load_study(study_name=shared_run.study, storage=url).trials
    # Nor the confirmation seeds: both configurations have theirs.
    assert len(after) == before and sum(t.state == optuna.trial.TrialState.COMPLETE for t in after) == 4


def test_export_then_train_reproduces_the_recipe(shared_run, data_dir):
    url = shared_run.url
    recipe = yaml.safe_load(shared_run.recipe.read_text())  # exported by `search.export --budget 5%`
    results = load_results(make_engine(url), shared_run.study)
    best, repeat = results.iloc[1], results[results["replicate_of"] == 1].iloc[0]
    assert recipe["config"] == best["config"]
    # Chosen and described by its mean over the two seeds; the recipe trains the first seed.
    assert recipe["expected"]["score"] == pytest.approx((best["score"] + repeat["score"]) / 2)
    assert recipe["expected"]["seeds"] == 2
    assert recipe["expected"]["seed_scores"] == {"0": pytest.approx(best["score"]), "1": pytest.approx(repeat["score"])}
    assert recipe["source"] == {"study": shared_run.study, "trial_number": 1, "storage": url, "budget": "5%"}

    out = shared_run.run_dir  # trained by `search.train --recipe`
    metrics = json.loads((out / "metrics.json").read_text())
    # Same config, same seed, same machine: the recipe trains to the score its seed measured.
    assert metrics["score"] == pytest.approx(recipe["expected"]["seed_scores"]["0"])
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
        "--workers",
        "1",
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
        "--confirm-seeds",
        "1",
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


def test_confirm_command_adds_seeds_to_a_finished_study(shared_run, data_dir, tmp_path):
    """`search.confirm --seeds 3` trains the third seed of both confirmed configurations, prints the
    front by mean, and a second run trains nothing."""
    # A copy: the command writes to its study, which the other tests share unchanged.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    shutil.copyfile(shared_run.url.removeprefix("sqlite:///"), tmp_path / "study.db")
    command = ("search.confirm", "--study", shared_run.study, "--storage", url, "--data-dir", str(data_dir), "--seeds", "3")
    first = cli(*command)
    results = load_results(make_engine(url), shared_run.study)
    replicates = results[results["replicate_of"].notna()]
    assert sorted((int(r["replicate_of"]), r["config"]["training"]["seed"]) for _, r in replicates.iterrows()) == [
        (0, 1), (0, 2), (1, 1), (1, 2),
    ]  # fmt: skip
    configs = by_configuration(results)
    assert list(configs["seeds"]) == [3, 3]
    assert "2 confirmation trial(s) trained now" in first.stdout
    assert mean_text(configs.iloc[1]) in first.stdout and "(3 seeds)" in first.stdout
    again = cli(*command)
    assert "0 confirmation trial(s) trained now" in again.stdout
    assert len(load_results(make_engine(url), shared_run.study)) == len(results)
