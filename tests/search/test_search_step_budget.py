"""A study's goal as compute: `--step-budget` counts the training steps every trial used,
those stopped at a rung included, and the study stops starting trials once they are spent."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.fidelity import STEPS_PLANNED_ATTR, STEPS_RUN_ATTR, steps_spent
from search.progress import goal_met, trials_left
from search.study_runner import run_until_target
from search.study_settings import StudySettings


def frozen(state: TrialState, planned: int | None = 100, run: int | None = None) -> optuna.trial.FrozenTrial:
    attrs = {} if planned is None else {STEPS_PLANNED_ATTR: planned}
    if run is not None:
        attrs[STEPS_RUN_ATTR] = run
    return create_trial(
        state=state,
        values=[50.0, 1.0] if state == TrialState.COMPLETE else None,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=attrs,
    )


def test_steps_spent_counts_complete_trials_whole_and_stopped_ones_as_far_as_they_ran():
    trials = [
        frozen(TrialState.COMPLETE),
        frozen(TrialState.PRUNED, run=11),  # stopped at a rung
        frozen(TrialState.PRUNED, planned=None),  # a repeated configuration: never trained
        frozen(TrialState.COMPLETE, planned=None),  # infeasible: never trained
        frozen(TrialState.FAIL),  # failed: how far it got is not recorded
        frozen(TrialState.RUNNING),
    ]
    assert steps_spent(trials) == 111
    assert steps_spent(trials, include_running=True) == 211, "a running trial's steps are committed"


def test_the_goal_is_the_first_of_the_trial_count_and_the_step_budget():
    trials = [frozen(TrialState.COMPLETE), frozen(TrialState.PRUNED, run=11)]
    assert goal_met(trials, target=1, step_budget=None)
    assert not goal_met(trials, target=2, step_budget=None)
    assert goal_met(trials, target=2, step_budget=111) and not goal_met(trials, target=0, step_budget=112)
    assert goal_met(trials, target=0, step_budget=None), "no goal at all: only owed trials (retries, confirmation seeds) run"
    assert trials_left(trials, target=0, step_budget=400) == 3, "289 steps left, 100 per trial"
    assert trials_left(trials, target=2, step_budget=400) == 1


def test_a_running_trial_counts_towards_the_trial_goal_so_workers_do_not_overshoot_it():
    trials = [frozen(TrialState.COMPLETE), frozen(TrialState.RUNNING)]
    assert goal_met(trials, target=2, step_budget=None), "another worker's running trial is the second"
    assert not goal_met(trials, target=3, step_budget=None)
    failed = [frozen(TrialState.COMPLETE), frozen(TrialState.FAIL)]
    assert not goal_met(failed, target=2, step_budget=None), "a failed trial leaves room for another"
    confirming = [frozen(TrialState.COMPLETE), create_trial(state=TrialState.RUNNING, user_attrs={"replicate_of": 0})]
    assert not goal_met(confirming, target=2, step_budget=None), "a confirmation seed is no searched trial"


def test_a_study_with_a_step_budget_starts_trials_until_it_is_spent():
    study = optuna.create_study(directions=["maximize", "minimize"])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        trial.set_user_attr(STEPS_PLANNED_ATTR, 40)
        if trial.number % 2:  # every other trial stops at its rung after 10 steps
            trial.set_user_attr(STEPS_RUN_ATTR, 10)
            raise optuna.TrialPruned("stopped at step 10")
        return x, 1.0

    run_until_target(study, objective, target=0, time_limit=None, step_budget=120)
    # 40 + 10 + 40 + 10 = 100 < 120: one more; 140 after it.
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED] * 2 + [TrialState.COMPLETE]
    assert steps_spent(study.trials) == 140


def test_the_goal_reads_as_the_user_gave_it():
    base = dict(budget="5%", backbone="b", tasks=("vqa",), seed=0, steps=None, sampler="tpe", space_yaml="", space_source="",
                count_clip=False, objectives=("score", "trainable_pct"))  # fmt: skip
    assert StudySettings(target_trials=12, **base).goal_text() == "12 trained trials"
    assert StudySettings(target_trials=0, step_budget=20000, **base).goal_text() == "20,000 training steps"
    assert (
        StudySettings(target_trials=5, step_budget=900, **base).goal_text()
        == "5 trained trials or 900 training steps, whichever comes first"
    )
