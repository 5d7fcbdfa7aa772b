"""Multi-fidelity: rungs score trials on the way, dominated trials stop early, and the saved
compute is counted; rungs never change what a trial that runs to the end scores."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from models.config import TrainingConfig
from core.budget import parse_budget
from search.fidelity import (
    RUNG_PREFIX,
    STEPS_PLANNED_ATTR,
    STEPS_RUN_ATTR,
    TRAINABLE_PCT_ATTR,
    Fidelity,
    dominating_trials,
    saved_compute,
    with_rungs,
)
from search.objective import WARM_START_ATTR, Objective
from search.space import SpaceDefaults, config_from_point
from search.space_file import parse_space
from storage import init_schema, load_results, make_engine
from training.trial import run_trial

STEPS = 40
RUNG = 10  # 3 rungs over 40 steps: scored after steps 10, 20 and 30


def frozen(number: int, pct: float, rungs: dict[int, float], state=TrialState.COMPLETE, **attrs):
    trial = create_trial(
        state=state,
        values=[0.0, pct] if state == TrialState.COMPLETE else None,
        params={"x": 0.0},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs={TRAINABLE_PCT_ATTR: pct, **{f"{RUNG_PREFIX}{s}": v for s, v in rungs.items()}, **attrs},
    )
    trial.number = number
    return trial


def test_only_smaller_trials_that_lead_by_the_margin_dominate():
    others = [
        frozen(0, 1.0, {10: 30.0}),  # smaller and better: dominates
        frozen(1, 2.0, {10: 29.0}),  # same size, better: dominates
        frozen(2, 5.0, {10: 50.0}),  # better but larger: a different trade-off, never dominates
        frozen(3, 1.0, {10: 20.5}),  # smaller but within the margin
        frozen(4, 1.0, {20: 90.0}),  # measured at another rung only
    ]
    found = dominating_trials(9, 10, 20.0, 2.0, others, margin=1.0)
    assert found == [(0, 30.0), (1, 29.0)]


def test_saved_compute_counts_the_steps_stopped_trials_did_not_run():
    trials = [
        frozen(0, 1.0, {}, **{STEPS_PLANNED_ATTR: 400}),
        frozen(1, 1.0, {}, state=TrialState.PRUNED, **{STEPS_PLANNED_ATTR: 400, STEPS_RUN_ATTR: 100}),
        frozen(2, 1.0, {}, state=TrialState.PRUNED),  # a duplicate configuration: never trained, not counted
    ]
    saved = saved_compute(trials)
    assert (saved.stopped, saved.steps_run, saved.steps_planned) == (1, 500, 800)
    assert "1 trials stopped" in saved.describe() and "38% saved" in saved.describe()


def test_rungs_do_not_change_the_result_of_a_trial_that_runs_to_the_end(env):
    training = TrainingConfig(steps=STEPS, seed=3)
    config = config_from_point(
        {"method": "adapter", "params": {"reduction_factor": 16}, "freeze": {}, "optimizer": "adamw"},
        SpaceDefaults(backbone="tiny-clip+tiny-t5", tasks=("vqa",), training=training),
    )
    plain = run_trial(config, env, show_progress=False)
    seen = []
    scored = run_trial(
        dataclasses.replace(config, training=with_rungs(config.training, Fidelity(eval_sample=16))),
        env,
        show_progress=False,
        on_evaluation=lambda step, scores: seen.append(step),
    )
    assert seen == [RUNG, 2 * RUNG, 3 * RUNG]
    assert scored.losses == plain.losses and scored.task_scores == plain.task_scores


@pytest.fixture(scope="module")
def stopped_study(env, data_dir):
    """Two earlier trials that scored 100 at the first rung with no trainable parameters, then a
    real adapter trial: whatever it learns in 10 steps, it is dominated there."""
    space = parse_space({"methods": {"adapter": {"reduction_factor": [16]}}, "optimizer": ["adamw"]})
    defaults = SpaceDefaults(backbone="tiny-clip+tiny-t5", tasks=("vqa",), training=TrainingConfig(steps=STEPS), space=space)
    url = f"sqlite:///{data_dir / 'fidelity.db'}"
    engine = make_engine(url)
    init_schema(engine)
    study = optuna.create_study(study_name="fidelity", storage=url, directions=["maximize", "minimize"])
    for number in range(2):
        study.add_trial(frozen(number, 0.0, {RUNG: 100.0}))
    objective = Objective(env, defaults, parse_budget("5%"), engine, "fidelity", fidelity=Fidelity(eval_sample=16))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    return study, engine


def test_a_dominated_trial_stops_at_the_first_rung_and_is_recorded_with_the_reason(stopped_study):
    study, engine = stopped_study
    stopped = study.trials[-1]
    assert stopped.state == TrialState.PRUNED
    assert stopped.user_attrs[STEPS_RUN_ATTR] == RUNG and stopped.user_attrs[STEPS_PLANNED_ATTR] == STEPS
    assert stopped.user_attrs[f"{RUNG_PREFIX}{RUNG}"] < 100.0
    row = load_results(engine, "fidelity").set_index("trial_number").loc[stopped.number]
    assert row["status"] == "pruned"
    assert f"stopped at step {RUNG}" in row["error"] and "#0 (100.0)" in row["error"] and "#1 (100.0)" in row["error"]
    saved = saved_compute(study.trials)
    assert (saved.stopped, saved.steps_run, saved.steps_planned) == (1, RUNG, STEPS)


def test_a_warm_start_runs_to_the_end_even_when_dominated_at_a_rung(stopped_study, env):
    """The paper's configurations are the front's points of comparison, one per family: the
    same dominated adapter, enqueued as a warm start, is scored at every rung and completes."""
    study, engine = stopped_study
    space = parse_space({"methods": {"adapter": {"reduction_factor": [16]}}, "optimizer": ["adamw"]})
    defaults = SpaceDefaults(backbone="tiny-clip+tiny-t5", tasks=("vqa",), training=TrainingConfig(steps=STEPS), space=space)
    study.enqueue_trial({"method": "adapter", "adapter.reduction_factor": 16}, user_attrs={WARM_START_ATTR: "single-adapter"})
    objective = Objective(env, defaults, parse_budget("5%"), engine, "fidelity", fidelity=Fidelity(eval_sample=16))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    warm = study.trials[-1]
    assert warm.state == TrialState.COMPLETE, warm.user_attrs
    assert [f"{RUNG_PREFIX}{s}" in warm.user_attrs for s in (RUNG, 2 * RUNG, 3 * RUNG)] == [True] * 3
    assert warm.user_attrs[f"{RUNG_PREFIX}{RUNG}"] < 100.0  # dominated there, yet not stopped
