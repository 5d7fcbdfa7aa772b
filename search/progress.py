"""Live study progress: trained trials against the goal, with rate, ETA and the best so far.

Counts trials that actually trained (complete and within budget): infeasible configurations
cost no training and must not use up the user's `--trials`.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from search.fidelity import STEPS_PLANNED_ATTR, STEPS_RUN_ATTR, steps_spent


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


def goal_met(trials: list[FrozenTrial], target: int, step_budget: int | None) -> bool:
    """Whether the study needs no new trial: its trained and running search trials reach
    `target`, or its trials have used or committed (running) `step_budget` training steps. A
    target of 0 is no trial goal: with a step budget that decides; without one (confirmation
    rounds) only owed trials run.

    A running trial counts as committed, so N workers do not start N - 1 trials past the goal;
    one that fails or stops at a rung leaves its worker (alive: it was running it) to train
    another, and a dead worker's is released and queued again (search.liveness).
    """
    if step_budget is not None and steps_spent(trials, include_running=True) >= step_budget:
        return True
    if target > 0:
        return sum(trained(t) or _running_search_trial(t) for t in trials) >= target
    return step_budget is None


def _running_search_trial(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING and _REPLICATE_ATTR not in trial.user_attrs


def trials_left(trials: list[FrozenTrial], target: int, step_budget: int | None) -> int:
    """About how many more trials the goal needs (at least 1): for a step budget, its steps
    left over a trial's planned steps (the rungs may stop some early: then more fit)."""
    left = max(0, target - sum(trained(t) for t in trials)) if target > 0 else 0
    if step_budget is not None:
        planned = max((int(t.user_attrs[STEPS_PLANNED_ATTR]) for t in trials if STEPS_PLANNED_ATTR in t.user_attrs), default=1)
        by_steps = -(-(step_budget - steps_spent(trials, include_running=True)) // planned)
        left = by_steps if target <= 0 else min(left, by_steps)
    return max(1, left)


class StudyProgress:
    """An Optuna callback that draws the progress bar and stops the study at its goal.

    The goal is reached when the study has `target` trained trials or, with a step budget, its
    trials have used that many training steps (:func:`goal_met`), and no retry of a failed
    trial is still queued (:func:`queued_retries`).

    Args:
        target: trained trials the study should reach (0: none, the step budget decides).
        already: trained trials (with a step budget: steps used) before this launch.
        max_attempts: stop after this many new trials of any outcome (guards against a space
            where almost nothing fits the budget).
        step_budget: training steps the study may use, stopped trials' included; the bar then counts steps.
        workers: local workers on the study, named on the bar when more than one.
        show: draw the bar (a worker started by `search.launch` leaves it to the launcher's).
    """

    def __init__(self, target: int, already: int, max_attempts: int, step_budget: int | None = None, workers: int = 1, show: bool = True):
        self.target = target
        self.step_budget = step_budget
        self.max_attempts = max_attempts
        self.attempts = 0
        self.trained_here = 0
        self.goal_reached = False  # why it stopped the study: the goal, not max_attempts
        by = f" ({workers} workers)" if workers > 1 else ""
        if step_budget is None:
            self.bar = tqdm(total=target, initial=already, desc="trials trained" + by, unit="trial", dynamic_ncols=True, disable=not show)
        else:
            self.bar = tqdm(
                total=step_budget, initial=already, desc="training steps" + by, unit="step", dynamic_ncols=True, disable=not show
            )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # A trial stopped at a rung trained, part of the way: not the attempts that guard against
        # a space where nothing fits (multi-fidelity stops most trials, by design).
        self.attempts += not (trial.state == TrialState.PRUNED and STEPS_RUN_ATTR in trial.user_attrs)
        self.trained_here += trained(trial)
        # Count from the storage: other workers on the same study train trials too.
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if trained(t)]
        counted = len(done) if self.step_budget is None else steps_spent(trials)
        self.bar.total = max(self.bar.total or 0, counted)  # a queued retry can take the study past its goal
        self.bar.update(counted - self.bar.n)
        if not self.bar.disable:  # `best_trials` reads (copies) every trial again: only for a bar someone sees
            self.bar.set_postfix(
                best=f"{max(t.values[0] for t in done):.1f}" if done else "-",
                front=len(study.best_trials) if done else 0,
                running=sum(t.state == TrialState.RUNNING for t in trials),
                infeasible=sum(t.state == TrialState.COMPLETE and any(v > 0 for v in t.constraints.values()) for t in trials),
                stopped=sum(t.state == TrialState.PRUNED and STEPS_RUN_ATTR in t.user_attrs for t in trials),
                failed=sum(t.state == TrialState.FAIL for t in trials),
                **({"trained": len(done)} if self.step_budget is not None else {}),
            )
        owed = queued_retries(trials) + queued_confirmations(trials)
        self.goal_reached = goal_met(trials, self.target, self.step_budget) and not owed
        if self.goal_reached or self.attempts >= self.max_attempts:
            study.stop()

    def close(self) -> None:
        self.bar.close()
