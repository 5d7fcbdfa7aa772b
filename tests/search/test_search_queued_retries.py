"""A study does not end at its goal while a failed trial's retry waits in the queue.

A worker killed mid-trial has its trial failed and queued again by whichever worker notices
(search.liveness). If the survivors stopped as soon as the goal was met, that configuration
would never be scored (seen in CI with three workers on PostgreSQL). Optuna's own trials and
a plain objective stand in for training: the rule is about the queue, not the model.
"""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.study_runner import run_until_target

X = {"x": FloatDistribution(0.0, 2.0)}


def _queue_retry(study: optuna.Study, failed: int) -> None:
    """What Optuna's RetryHeartbeatStaleTrialCallback leaves behind for a dead trial."""
    params = study.trials[failed].params
    template = create_trial(state=TrialState.WAITING, params=params, distributions=X, system_attrs={"failed_trial": failed})
    study._storage.create_new_trial(study._study_id, template_trial=template)


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    study.add_trial(create_trial(params={"x": 1.0}, distributions=X, value=1.0))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.5}, distributions=X))
    return study


def test_a_worker_arriving_after_the_goal_runs_the_queued_retry() -> None:
    study = _study()
    _queue_retry(study, failed=1)

    assert run_until_target(study, lambda t: t.suggest_float("x", 0.0, 2.0), target=1, time_limit=None) == 1

    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[2].params == {"x": 0.5}, "the retry, not a new sample"


def test_a_retry_queued_while_the_last_trial_runs_is_run_before_the_study_stops() -> None:
    study = _study()

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 2.0)
        if trial.number == 2:  # another worker notices the dead trial 1 meanwhile
            _queue_retry(study, failed=1)
        return x

    assert run_until_target(study, objective, target=2, time_limit=None) == 2

    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert study.trials[3].params == {"x": 0.5}


def test_with_nothing_queued_the_study_stops_at_its_goal() -> None:
    study = _study()
    assert run_until_target(study, lambda t: t.suggest_float("x", 0.0, 2.0), target=2, time_limit=None) == 1
    assert len(study.trials) == 3
