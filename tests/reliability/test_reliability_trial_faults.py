"""A NaN loss or an out-of-memory error fails its trial with the reason; the study goes on.

The faults come from ``VLPETL_INJECT_FAULTS`` (training/faults.py) inside the real training loop;
the objective, Optuna's study loop and the results table are the real ones.
"""

from __future__ import annotations

import gc
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from models.config import TrainingConfig
from models.vl_model import VLSeq2Seq
from core.budget import parse_budget
from training.faults import FAULTS_ENV, FaultSpecError, parse_faults
from search.objective import Objective
from search.space import SpaceDefaults
from search.space_file import parse_space
from search.study_runner import run_until_target
from storage import default_storage_url, init_schema, load_results, make_engine

# A continuous learning rate: every sampled configuration differs, so none is skipped as a repeat.
SPACE = parse_space(yaml.safe_load("methods:\n  vl_only:\n    learning_rate_scale: {low: 0.5, high: 2.0}\noptimizer: [adamw]\n"), "test")


def _models_in_memory() -> int:
    # gc.get_objects() also lists unreachable objects not yet collected: memory still taken.
    # type(), not isinstance(): some torch objects warn when their __class__ is looked up.
    return sum(issubclass(type(o), VLSeq2Seq) for o in gc.get_objects())


def _two_step_objective(env, folder: Path, study: str):
    """A SQLite database in ``folder`` and the real objective, 2 training steps a trial."""
    url = default_storage_url(folder)
    engine = make_engine(url)
    init_schema(engine)
    defaults = SpaceDefaults(backbone=env.location.preset.name, tasks=("vqa",), training=TrainingConfig(steps=2), space=SPACE)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return url, engine, Objective(env, defaults, parse_budget("5%"), engine, study)


def test_nan_and_out_of_memory_fail_their_trial_free_memory_and_the_study_goes_on(env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(FAULTS_ENV, "nan@0:2,oom@1:1")
    url, engine, objective = _two_step_objective(env, tmp_path, "faults")
    study = optuna.create_study(
        study_name="faults", storage=url, directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0)
    )
    at_start: dict[int, int] = {}

    def watched(trial: optuna.Trial):
        at_start[trial.number] = _models_in_memory()
        return objective(trial)

    # Automatic collection off: only what the study loop frees on purpose is freed.
    gc.collect()
    gc.disable()
    try:
        assert run_until_target(study, watched, target=1, time_limit=None) == 1
    finally:
        gc.enable()

    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert at_start == {0: 0, 1: 0, 2: 0}, "a failed trial's model was still in memory when the next one started"
    rows = load_results(engine, "faults").set_index("trial_number")
    assert rows["status"].tolist() == ["failed", "failed", "complete"]
    assert rows.loc[0, "error"] == "training.loop.NonFiniteLossError: loss became nan at step 2 (vqa); lower the learning rate"
    assert rows.loc[1, "error"].startswith("torch.OutOfMemoryError: out of memory")
    assert "step 1 of trial 1" in rows.loc[1, "error"] and "memory was freed for the next trial" in rows.loc[1, "error"]
    assert rows.loc[2, "score"] >= 0 and rows.loc[2, "error"] is None
    engine.dispose()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nan@x", "'nan@x' is not KIND@TRIAL[:STEP]"),
        ("melt@1", "'melt@1'"),
        ("nan@1:0", "steps count from 1"),
        ("nan@1,oom@1", "already has a fault"),
    ],
)
def test_a_malformed_fault_plan_is_refused_with_the_format(text: str, needle: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_faults(text)
    assert needle in str(caught.value) and "e.g. 'nan@3,oom@5:2,kill@7'" in str(caught.value)


def test_a_trial_that_fails_before_training_still_gets_its_failed_row(env, tmp_path: Path, monkeypatch) -> None:
    # The claim is the first write of the trial's row; a database that refuses it (a check
    # constraint, a full disk) must not leave an Optuna trial without a row in the results.
    def refused(*_args, **_kwargs):
        raise RuntimeError("could not write: disk full")

    monkeypatch.setattr("search.objective.claim_trial", refused)
    url, engine, objective = _two_step_objective(env, tmp_path, "early")
    study = optuna.create_study(study_name="early", storage=url, directions=["maximize", "minimize"])
    study.optimize(objective, n_trials=1, catch=(RuntimeError,))
    assert study.trials[0].state == TrialState.FAIL
    row = load_results(engine, "early").iloc[0]
    assert (row["trial_number"], row["status"], row["method"]) == (0, "failed", "vl_only")
    assert row["error"] == "RuntimeError: could not write: disk full" and row["trainable_params"] > 0
    engine.dispose()
