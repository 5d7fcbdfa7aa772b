"""Multi-fidelity: every trial is scored at cheap rungs on its way to full fidelity, and stops
there when it is already hopeless.

A trial trains for the study's full step count, but is scored on a validation sample at each
rung (by default after 1/4, 2/4 and 3/4 of its steps). At a rung, a trial is hopeless when other
trials of the study, measured at the same rung, Pareto-dominate it: they score at least `margin`
points higher while training no more parameters. It then stops and the rest of its steps are
saved; only trials that are not dominated are promoted to the next rung and, finally, to full
fidelity (asynchronous successive halving over a two-objective front).

Why not Optuna's pruners: `Trial.report` and `should_prune` are single-objective only, and a
score threshold alone would stop every small-budget trial (they learn slower than full fine-
tuning) which is exactly the trade-off the search explores. Dominance keeps the front honest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

import optuna

RUNG_PREFIX = "rung_score:"  # user attribute per rung step: the average validation-sample score
TRAINABLE_PCT_ATTR = "trainable_pct"
STEPS_RUN_ATTR = "steps_run"
STEPS_PLANNED_ATTR = "steps_planned"


@dataclass(frozen=True)
class Fidelity:
    """The rung schedule and the dominance rule.

    Attributes:
        rungs: scored checkpoints before the end of training (0 disables multi-fidelity).
        eval_sample: validation examples per task scored at a rung.
        margin: score points by which a dominating trial must lead (rung scores are noisy).
        min_dominators: trials that must dominate before a trial stops (one lucky trial is not enough).
    """

    rungs: int = 3
    eval_sample: int = 64
    margin: float = 1.0
    min_dominators: int = 2

    def schedule(self, steps: int) -> int:
        """`eval_every` for a trial of `steps` steps (0: no rungs fit)."""
        every = steps // (self.rungs + 1)
        return every if self.rungs > 0 and every > 0 else 0


NO_FIDELITY = Fidelity(rungs=0)


class RungPruned(optuna.TrialPruned):
    """A trial stopped at a rung because other trials dominate it there."""

    def __init__(self, message: str, steps_run: int):
        super().__init__(message)
        self.steps_run = steps_run


class RungJudge:
    """The `on_evaluation` callback of one trial: records its rung scores, stops it when dominated.

    Args:
        trial: the running Optuna trial (its study is read for the other trials' rung scores).
        trainable_pct: the trial's trainable share, the second objective.
        fidelity: the rule.
        exempt: never stop this trial (the full fine-tuning reference, the warm starts).
    """

    def __init__(self, trial: optuna.Trial, trainable_pct: float, fidelity: Fidelity, exempt: bool = False):
        self.trial = trial
        self.trainable_pct = trainable_pct
        self.fidelity = fidelity
        self.exempt = exempt
        trial.set_user_attr(TRAINABLE_PCT_ATTR, trainable_pct)

    def __call__(self, step: int, task_scores: dict[str, float]) -> None:
        score = sum(task_scores.values()) / len(task_scores)
        self.trial.set_user_attr(f"{RUNG_PREFIX}{step}", score)
        if self.exempt:
            return
        others = self.trial.study.get_trials(deepcopy=False)
        dominators = dominating_trials(self.trial.number, step, score, self.trainable_pct, others, self.fidelity.margin)
        if len(dominators) >= self.fidelity.min_dominators:
            shown = ", ".join(f"#{number} ({value:.1f})" for number, value in dominators[:3])
            raise RungPruned(
                f"stopped at step {step}: score {score:.1f} on the rung sample is dominated by {len(dominators)} trials "
                f"with no more trainable parameters, by more than {self.fidelity.margin:g} points: {shown}",
                steps_run=step,
            )


def dominating_trials(
    number: int, step: int, score: float, trainable_pct: float, trials: Iterable[optuna.trial.FrozenTrial], margin: float
) -> list[tuple[int, float]]:
    """Trials (number, rung score) whose score at rung `step` leads by more than `margin`
    with at most `trainable_pct` trainable, best first."""
    key = f"{RUNG_PREFIX}{step}"
    found = []
    for other in trials:
        if other.number == number or key not in other.user_attrs or TRAINABLE_PCT_ATTR not in other.user_attrs:
            continue
        if other.user_attrs[key] > score + margin and other.user_attrs[TRAINABLE_PCT_ATTR] <= trainable_pct:
            found.append((other.number, float(other.user_attrs[key])))
    return sorted(found, key=lambda item: -item[1])


def with_rungs(training, fidelity: Fidelity):
    """The training recipe with the rung schedule (unchanged when no rung fits)."""
    every = fidelity.schedule(training.steps)
    if not every:
        return training
    return dataclasses.replace(training, eval_every=every, eval_sample=fidelity.eval_sample)


@dataclass(frozen=True)
class SavedCompute:
    stopped: int
    steps_run: int
    steps_planned: int

    @property
    def saved_fraction(self) -> float:
        return 1.0 - self.steps_run / self.steps_planned if self.steps_planned else 0.0

    def describe(self) -> str:
        if not self.steps_planned:
            return "multi-fidelity: no trial trained yet"
        return (
            f"multi-fidelity: {self.stopped} trials stopped at a rung; {self.steps_run:,} of {self.steps_planned:,} "
            f"planned training steps run ({100 * self.saved_fraction:.0f}% saved)"
        )


def saved_compute(trials: Iterable[optuna.trial.FrozenTrial]) -> SavedCompute:
    """Training steps run against planned, over the trials that trained (complete or stopped)."""
    stopped = run = planned = 0
    for trial in trials:
        if STEPS_PLANNED_ATTR not in trial.user_attrs:
            continue
        planned += int(trial.user_attrs[STEPS_PLANNED_ATTR])
        run += int(trial.user_attrs.get(STEPS_RUN_ATTR, trial.user_attrs[STEPS_PLANNED_ATTR]))
        stopped += trial.state == optuna.trial.TrialState.PRUNED
    return SavedCompute(stopped, run, planned)
