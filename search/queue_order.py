"""Owed trials before queued search trials: the order a study takes its waiting trials.

Optuna's study takes the oldest waiting trial first (``Study._pop_waiting_trial_id``). A
study's queue can hold the paper's configurations that its search did not reach (warm starts,
kept for a longer relaunch), the retries of trials whose worker died (search.liveness), and,
once the search is done, its confirmation seeds (search.confirmation). Retries and seeds are
owed now: a retried reference waiting behind every warm start could leave the front without its
reference point, and taking a warm start before the seeds would train search trials the user
did not ask for.

Optuna has no public way to order its queue, so :func:`owed_first` replaces the study's pop
with one that offers retries first, then confirmation seeds, then the rest, each group oldest
first, and is otherwise Optuna's own: the same claim (``set_trial_state_values`` to RUNNING,
which fails for a trial another worker took first). tests/search/test_search_confirm.py checks
it against the installed Optuna.
"""

from __future__ import annotations

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

# search.objective.REPLICATE_ATTR, spelled out: the objective imports torch, this module does not.
_REPLICATE_ATTR = "replicate_of"
# What Optuna's retry callback marks a retry with (search.liveness.release_trial).
_RETRY_ATTR = "failed_trial"


def _rank(trial: FrozenTrial) -> int:
    if _RETRY_ATTR in trial.system_attrs:
        return 0
    return 1 if _REPLICATE_ATTR in trial.user_attrs else 2


def owed_first(study: optuna.Study) -> optuna.Study:
    """Make `study` take waiting retries, then confirmation seeds, before other waiting trials; returns it."""
    storage, study_id = study._storage, study._study_id

    def pop_waiting_trial_id() -> int | None:
        waiting = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,))
        # sorted() is stable: within each group, the oldest first, as Optuna does.
        for trial in sorted(waiting, key=_rank):
            try:
                if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                    return trial._trial_id
            except UpdateFinishedTrialError:  # another worker took it and finished it already
                continue
        return None

    study._pop_waiting_trial_id = pop_waiting_trial_id  # type: ignore[method-assign]
    return study
