"""Live study progress: trained trials against the goal, with rate, ETA and the best so far.

Counts trials that actually trained (complete and within budget): infeasible configurations
cost no training and must not use up the user's `--trials`.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm


# search.objective.REPLICATE_ATTR, spelled out: this module stays free of the objective's imports.
_REPLICATE_ATTR = "replicate_of"


def trained(trial: FrozenTrial) -> bool:
    """A searched trial that trained; confirmation seeds (search.confirmation) are not searched trials."""
    return (
        trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values()) and _REPLICATE_ATTR not in trial.user_attrs
    )


def queued_confirmations(trials: list[FrozenTrial]) -> int:
    """Confirmation seeds (search.confirmation) still waiting for a worker: owed like retries."""
    return sum(t.state == TrialState.WAITING and _REPLICATE_ATTR in t.user_attrs for t in trials)


def queued_retries(trials: list[FrozenTrial]) -> int:
    """Retries of failed trials (a killed worker's, say) still waiting for a worker.

    They are owed: a study that reached its goal while one waited would end without the
    configuration that died ever being scored, so the study goes on until none is left.
    """
    return sum(t.state == TrialState.WAITING and "failed_trial" in t.system_attrs for t in trials)


class StudyProgress:
    """An Optuna callback that draws the progress bar and stops the study at its goal.

    The goal is reached when the study has `target` trained trials and no retry of a failed
    trial is still queued (:func:`queued_retries`).

    Args:
        target: trained trials the study should reach.
        already: trained trials the study had before this launch.
        max_attempts: stop after this many new trials of any outcome (guards against a space
            where almost nothing fits the budget).
    """

    def __init__(self, target: int, already: int, max_attempts: int):
        self.target = target
        self.max_attempts = max_attempts
        self.attempts = 0
        self.trained_here = 0
        self.goal_reached = False  # why it stopped the study: the goal, not max_attempts
        self.bar = tqdm(total=target, initial=already, desc="trials trained", unit="trial", dynamic_ncols=True)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.attempts += 1
        self.trained_here += trained(trial)
        # Count from the storage: other workers on the same study train trials too.
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if trained(t)]
        self.bar.total = max(self.target, len(done))  # a queued retry can take the study past its goal
        self.bar.update(len(done) - self.bar.n)
        self.bar.set_postfix(
            best=f"{max(t.values[0] for t in done):.1f}" if done else "-",
            front=len(study.best_trials) if done else 0,
            running=sum(t.state == TrialState.RUNNING for t in trials),
            infeasible=sum(t.state == TrialState.COMPLETE and any(v > 0 for v in t.constraints.values()) for t in trials),
            stopped=sum(t.state == TrialState.PRUNED and "steps_run" in t.user_attrs for t in trials),
            failed=sum(t.state == TrialState.FAIL for t in trials),
        )
        owed = queued_retries(trials) + queued_confirmations(trials)
        self.goal_reached = len(done) >= self.target and not owed
        if self.goal_reached or self.attempts >= self.max_attempts:
            study.stop()

    def close(self) -> None:
        self.bar.close()
