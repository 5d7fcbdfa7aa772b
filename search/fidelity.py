"""Multi-fidelity: trials are measured at rungs on their way to full fidelity, and only the best
of each rung go on (asynchronous successive halving, promoting by non-dominated sorting).

A trial trains for the study's full step count but is measured on a validation sample at its rungs:
by default after 1/9 and 1/3 of its steps (`last` and 1/eta, 1/eta^2 ... of it: ASHA's geometric
spacing). At a rung the trial goes on only when it is among the best 1 / eta of the trials of its
own PETL method measured at that rung so far (its peers: see below), best by non-dominated sorting
over (rung measure, trainable %), ties within the last front broken by crowding distance: MO-ASHA
(Schmucker et al. 2021; Syne Tune's multi-objective ASHA), in its stopping form, which needs no
pause and resume of trials. Otherwise it stops there and the rest of its steps are saved. A trial
that goes on by that rule still stops when a finished trial with no more trainable parameters was
as good at the same rung (`matched_by_finished`): successive halving keeps near-copies of the best
configuration, which a sampler proposes once it has found a good region, and trains each to the end
to finish, at best, level with the one already finished. On the surrogate of trials measured on an
earlier build of the backbone, with every trial as a peer, this took the steps the rungs need to
reach the rung-free hypervolume from 84% to 28% of the rung-free arm's
(benchmarks/search_efficiency.py, 15 seeds); ASHA's own settings had not moved it (84% with no
margin, 84% at eta 2: benchmarks/promotion_rules.py).

What a rung measures: the held-out loss of the reference answers (training.validation_loss), not
the score of generated answers. benchmarks/rung_reliability.py trained 32 configurations of the
default space for real and measured Spearman's rank correlation between each rung measure and
the final score (BENCHMARKS.md appendix, 2026-12-07). The held-out loss ranked trials from the
first rung on: 0.76 after 1/9 of the steps, 0.81 after 2/9, 0.80 after 1/3, and 32 examples per
task ranked as well as 128. Generated answers did not until half the steps (0.16-0.37 before,
0.60-0.68 at half): until a model has learnt a task, greedy decoding gives most questions the
same few answers, while the loss moves with every step of learning. So the rungs come at 1/9
and 1/3, on 32 examples per task (about 3.5 training steps of forward passes each); on the
benchmark's surrogate of those trials this schedule reached the rung-free arm's hypervolume
with the fewest training steps of the schedules tried (one rung at 1/9 or 2/9 by loss, or at 1/2
by score, the rule before). The reduction factor 3 is ASHA's usual one: two thirds stop at each
rung. `measure="score"` keeps the older rule (one rung at half the steps, 64 examples), which
studies launched before the held-out loss go on using.

Those 32 trials ran on an earlier build of the embedded backbone. Measured again on the build
that pins its CPU kernels (training.pretrain.pinned; same configurations, 2026-12-07), the held-out
loss on 32 examples ranked less well (0.48 after 1/9 of the steps, 0.65 after 2/9, 0.56 after
1/3), and generated answers better late (0.82 on 64 examples after 2/3). The best trials there
were compacters that started slowly: after 1/9 of the steps their held-out loss ranked 13th to
26th of the 32 trials, after 1/3 the best two ranked 6th and 7th, and their captions came good
only at the end. PETL methods learn at different speeds, and a first rung that ranks every trial
together (keeping the best third) stops the slow starters of a method that would finish best.
On that surrogate the rule ranking every trial together did not reach the rung-free arm's
hypervolume within twice its steps at any schedule tried (loss after 1/9 and 1/3, or after 2/9;
score after 2/3, or after 2/9 and 2/3; 15 seeds each: BENCHMARKS.md, search efficiency).

Measured a third time (2026-12-08) on 48 configurations, the same 32 and 16 more drawn the same
way, with each task's loss kept apart (benchmarks/rung_reliability.py): the final score's spread
is almost all caption CIDEr (standard deviation 32 points across trials, against 7 for GQA, 4 for
VQA and 0.2 for NLVR2; rho with the final score 0.97), while NLVR2's loss, the largest of
the four and, LST's trials aside, the most varied across trials, belongs to the one task whose score
does not move. Averaging each task's
rank instead of its loss ranks trials better at the first rung (0.68 against 0.53), but replayed
on the surrogate it saved no steps (0.66 of the rung-free steps within each method, as the mean
loss; ranking every trial together still did not arrive), so the rungs keep the mean loss.

So by default a trial is ranked at a rung against the trials of its own PETL method only
(`peers="method"`): each method has its own successive halving, and methods are compared only by
their finished trials, on the front. On the pinned build's surrogate of 32 trials this reached the
rung-free hypervolume with 91% of the rung-free steps (79% without the stop by a finished trial),
on that of 48 trials 66%, and on the earlier build's 40% (63%), where ranking every trial together
had taken 28%: a rule that saves on every measurement rather than one that is best on one and
never arrives on another. A real study
on the pinned build (BENCHMARKS.md, "A real study with and without rungs") stopped 4 of 16 trained
trials and, on the same step budget (2,700; it ran 2,800), ended above the study without rungs.
Successive halving stops none of a method's first eta trials at a rung (only a finished trial of
the method that matches one does), so the saving comes from a method's later trials: the
near-copies a sampler proposes once it has found a good region. `peers="all"` keeps the rule
before, which studies launched before it go on using. An oracle rung, the final score itself after
1/9 or 2/9 of the steps with every trial together, reached the hypervolume with 36-43% of the
steps (on the 48 trials, after 1/9 and 1/3: 33%, and 48% within each method): the rung's
measure, not the promotion rule, is what limits the saving on this benchmark.

Only the score is low-fidelity: the trainable share is exact before training, so the trial with
the fewest trainable parameters at a rung is always on its first front, at one end of it: a
small configuration is put behind only by one as small that learns better, not for learning
slower than a large one. A measure must lead by `margin` to dominate (MARGINS: 1 score point, or
0.02 nats of held-out loss), because rung measures come from a sample: across the 32 measured
trials, the gap between a trial's loss on 32 examples per task and on 128 varied by 0.024 nats
(standard deviation), against 0.5-0.7 between trials.

Why not Optuna's pruners: `Trial.report` and `should_prune` are single-objective only, and a
threshold alone would stop every small-budget trial, which is exactly the trade-off the
search explores. Why written here: non-dominated sorting with a noise margin, over a rung's
measures read from the study's trials, is a few lines; Optuna's own sorting is private API.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import optuna

RUNG_PREFIX = "rung_score:"  # user attribute per rung step: the average validation-sample score
RUNG_LOSS_PREFIX = "rung_loss:"  # the same for the held-out loss (averaged over tasks)
RUNG_ATTR_PREFIX = {"score": RUNG_PREFIX, "loss": RUNG_LOSS_PREFIX}
# A measure must lead by this much to dominate (rung measures come from a sample): score points,
# or nats of mean held-out loss. See the module docstring for how each was chosen.
MARGINS = {"score": 1.0, "loss": 0.02}
# Each measure's last rung position and sample per task, as measured (see the docstring): the
# held-out loss ranks from 1/9 of the steps on, on 32 examples; generated answers only from 1/2, on 64.
LAST_RUNG = {"score": 0.5, "loss": 1 / 3}
RUNG_SAMPLE = {"score": 64, "loss": 32}
# Which trials a trial is ranked against at a rung (see the module docstring).
PEERS = {"method": "the trials of its own PETL method", "all": "every trial"}
METHOD_PARAM = "method"  # the search space's parameter that names a trial's PETL method (search.space)
TRAINABLE_PCT_ATTR = "trainable_pct"
STEPS_RUN_ATTR = "steps_run"
STEPS_PLANNED_ATTR = "steps_planned"


@dataclass(frozen=True)
class Fidelity:
    """The rung schedule and the promotion rule.

    Attributes:
        rungs: measured checkpoints before the end of training (0 disables multi-fidelity).
        reduction: eta, the fraction 1 / eta of a rung's trials that go on, and the ratio
            between successive rung positions.
        last: the last rung's position, as a fraction of the steps (measured: see above).
        eval_sample: validation examples per task measured at a rung.
        measure: what ranks trials at a rung: "loss", the held-out loss of the reference
            answers (lower is better), or "score", the official metric on generated answers.
        margin: by how much a trial's measure must lead to dominate another's (a sample's
            measure is noisy); None: the measure's MARGINS.
        match_finished: also stop a trial that a finished one matches (`matched_by_finished`);
            False leaves successive halving alone (benchmarks/promotion_rules.py compares them).
        peers: which trials a trial is ranked against at a rung: "method", those of its own PETL
            method (each method its own successive halving: methods learn at different speeds),
            or "all", every trial measured there (see PEERS).
    """

    rungs: int = 2
    reduction: int = 3
    last: float = LAST_RUNG["loss"]
    eval_sample: int = RUNG_SAMPLE["loss"]
    measure: str = "loss"
    margin: float | None = None
    match_finished: bool = True
    peers: str = "method"

    @classmethod
    def for_study(cls, rungs: int, measure: str, peers: str) -> "Fidelity":
        """A study's rule: its rung count, measure and peers, at the position and sample measured for that measure."""
        return cls(rungs=rungs, measure=measure, last=LAST_RUNG[measure], eval_sample=RUNG_SAMPLE[measure], peers=peers)

    def __post_init__(self) -> None:
        if self.measure not in RUNG_ATTR_PREFIX:
            raise ValueError(f"Fidelity.measure must be one of {sorted(RUNG_ATTR_PREFIX)}, got {self.measure!r}")
        if self.peers not in PEERS:
            raise ValueError(f"Fidelity.peers must be one of {sorted(PEERS)}, got {self.peers!r}")
        if self.margin is None:
            object.__setattr__(self, "margin", MARGINS[self.measure])

    @property
    def attr_prefix(self) -> str:
        """The trial user attribute each rung's measure is stored under (then the step)."""
        return RUNG_ATTR_PREFIX[self.measure]

    def ranked(self, task_values: Mapping[str, float]) -> float:
        """A rung's value over the tasks, larger is better (a loss is negated)."""
        mean = sum(task_values.values()) / len(task_values)
        return -mean if self.measure == "loss" else mean

    def value_text(self, value: float) -> str:
        """A `ranked` value as the measure reads: a loss as the (positive) loss."""
        return f"{-value:.3f}" if self.measure == "loss" else f"{value:.1f}"

    def rung_steps(self, steps: int) -> tuple[int, ...]:
        """The steps after which a trial of `steps` steps is scored (empty: no rung fits)."""
        at = {int(steps * self.last / self.reduction**k) for k in range(self.rungs)}
        return tuple(sorted(step for step in at if 0 < step < steps))

    def goes_on(self, number: int, population: Mapping[int, tuple[float, float]]) -> bool:
        """Whether trial `number` is among the best 1 / eta of `population` (trial -> (rung score, trainable %)).

        A rung with fewer than eta + 1 trials scored stops nobody: there is nothing to rank yet.
        """
        if len(population) <= self.reduction:
            return True
        keep = math.ceil(len(population) / self.reduction)
        return number in best_by_fronts(population, keep, float(self.margin or 0.0))


NO_FIDELITY = Fidelity(rungs=0)


def matched_by_finished(number: int, population: Mapping[int, tuple[float, float]], finished: Iterable[int], margin: float) -> list[int]:
    """The finished trials that match trial `number` at a rung: no more trainable parameters, and a
    rung measure it does not beat by more than the margin (best first).

    Such a trial already stands on the front where `number` would end: at best `number` would
    finish level with it, within the noise of the rung sample, and extend the front by no more
    than that noise. Successive halving alone would train it to the end whenever it ranks among
    the best of its rung, which near-copies of the best configuration always do: the sampler
    proposes them once it has found a good region, and each cost a full trial.
    """
    if number not in population:
        return []
    value, pct = population[number]
    matches = [n for n in finished if n != number and n in population and population[n][1] <= pct and population[n][0] >= value - margin]
    return sorted(matches, key=lambda n: -population[n][0])


def _dominates(a: tuple[float, float], b: tuple[float, float], margin: float) -> bool:
    """a's score leads b's by more than the margin, with at most b's trainable share."""
    return a[0] > b[0] + margin and a[1] <= b[1]


def best_by_fronts(population: Mapping[int, tuple[float, float]], keep: int, margin: float) -> list[int]:
    """The `keep` best trials: whole non-dominated fronts in order, the last one cut by crowding
    distance (the widest-spread trials kept, as NSGA-II selects), then by score and number."""
    remaining = dict(population)
    chosen: list[int] = []
    while remaining and len(chosen) < keep:
        front = [a for a in remaining if not any(_dominates(remaining[b], remaining[a], margin) for b in remaining if b != a)]
        if len(chosen) + len(front) > keep:
            crowding = _crowding({n: remaining[n] for n in front})
            front = sorted(front, key=lambda n: (-crowding[n], -remaining[n][0], n))[: keep - len(chosen)]
        chosen.extend(front)
        for n in front:
            del remaining[n]
    return chosen


def _crowding(front: Mapping[int, tuple[float, float]]) -> dict[int, float]:
    distance = dict.fromkeys(front, 0.0)
    for axis in (0, 1):
        ordered = sorted(front, key=lambda n: (front[n][axis], n))
        span = front[ordered[-1]][axis] - front[ordered[0]][axis]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        for before, here, after in zip(ordered, ordered[1:], ordered[2:]):
            if span > 0:
                distance[here] += (front[after][axis] - front[before][axis]) / span
    return distance


class RungPruned(optuna.TrialPruned):
    """A trial stopped at a rung because other trials dominate it there."""

    def __init__(self, message: str, steps_run: int):
        super().__init__(message)
        self.steps_run = steps_run


class RungJudge:
    """The `on_evaluation` callback of one trial: records its rung scores, stops it when not promoted.

    Args:
        trial: the running Optuna trial (its study is read for the other trials' rung scores).
        trainable_pct: the trial's trainable share, the second objective.
        fidelity: the rule.
        exempt: never stop this trial (the full fine-tuning reference, the warm starts); its
            rung scores still count for the others.
    """

    def __init__(self, trial: optuna.Trial, trainable_pct: float, fidelity: Fidelity, exempt: bool = False):
        self.trial = trial
        self.trainable_pct = trainable_pct
        self.fidelity = fidelity
        self.exempt = exempt
        trial.set_user_attr(TRAINABLE_PCT_ATTR, trainable_pct)

    def __call__(self, step: int, task_values: dict[str, float]) -> None:
        fidelity = self.fidelity
        value = fidelity.ranked(task_values)
        self.trial.set_user_attr(f"{fidelity.attr_prefix}{step}", -value if fidelity.measure == "loss" else value)
        if self.exempt:
            return
        trials = peer_trials(self.trial, fidelity.peers)
        population = rung_population(trials, step, fidelity.measure)
        population[self.trial.number] = (value, self.trainable_pct)
        margin = float(fidelity.margin or 0.0)
        what = "held-out loss" if fidelity.measure == "loss" else "score"
        unit = "nats" if fidelity.measure == "loss" else "points"
        if not fidelity.goes_on(self.trial.number, population):
            others = [(n, v) for n, v in population.items() if n != self.trial.number]
            dominators = sorted(
                ((n, v) for n, (v, pct) in others if _dominates((v, pct), (value, self.trainable_pct), margin)),
                key=lambda item: -item[1],
            )
            shown = ", ".join(f"#{number} ({fidelity.value_text(v)})" for number, v in dominators[:3])
            raise RungPruned(
                f"stopped at step {step}: {what} {fidelity.value_text(value)} on the rung sample is not among the best "
                f"1/{fidelity.reduction} of the {len(population)} {_peer_text(self.trial, fidelity.peers)} measured there "
                f"(non-dominated sorting on rung {what} "
                "and trainable %)"
                + (
                    f"; {len(dominators)} lead it by more than {margin:g} {unit} with no more trainable parameters: {shown}"
                    if dominators
                    else ""
                ),
                steps_run=step,
            )
        finished = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE] if fidelity.match_finished else []
        if matches := matched_by_finished(self.trial.number, population, finished, margin):
            best = matches[0]
            raise RungPruned(
                f"stopped at step {step}: {what} {fidelity.value_text(value)} on the rung sample does not beat trial #{best}'s "
                f"{fidelity.value_text(population[best][0])} there by more than {margin:g} {unit}, and #{best} finished with no more "
                f"trainable parameters ({population[best][1]:.2f}% against {self.trainable_pct:.2f}%): it would at best finish level with it",
                steps_run=step,
            )


def peer_trials(trial: optuna.Trial, peers: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials that `trial` is ranked against at a rung (itself included when stored)."""
    trials = trial.study.get_trials(deepcopy=False)
    if peers == "all":
        return trials
    method = trial.params.get(METHOD_PARAM)
    return [t for t in trials if t.params.get(METHOD_PARAM) == method]


def _peer_text(trial: optuna.Trial, peers: str) -> str:
    return "trials" if peers == "all" else f"{trial.params.get(METHOD_PARAM)} trials"


def rung_population(trials: Iterable[optuna.trial.FrozenTrial], step: int, measure: str = "score") -> dict[int, tuple[float, float]]:
    """Trial number -> (rung value, larger is better; trainable %) of every trial measured at rung `step`."""
    key = f"{RUNG_ATTR_PREFIX[measure]}{step}"
    sign = -1.0 if measure == "loss" else 1.0
    return {
        t.number: (sign * float(t.user_attrs[key]), float(t.user_attrs[TRAINABLE_PCT_ATTR]))
        for t in trials
        if key in t.user_attrs and TRAINABLE_PCT_ATTR in t.user_attrs
    }


def with_rungs(training, fidelity: Fidelity):
    """The training recipe with the rung schedule (unchanged when no rung fits)."""
    at = fidelity.rung_steps(training.steps)
    if not at:
        return training
    return dataclasses.replace(training, eval_at=at, eval_sample=fidelity.eval_sample, eval_measure=fidelity.measure)


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


def steps_spent(trials: Iterable[optuna.trial.FrozenTrial], include_running: bool = False) -> int:
    """Training steps the study's trials have used: a complete trial its planned steps, one
    stopped at a rung the steps it ran; a failed one counts none (most fail in their first steps,
    and how far one got is not recorded). `include_running` adds every running trial's planned
    steps: what the study has committed, for deciding whether another trial fits a step budget."""
    total = 0
    for trial in trials:
        if STEPS_PLANNED_ATTR not in trial.user_attrs:
            continue  # never trained: infeasible, a repeated configuration, or not started yet
        planned = int(trial.user_attrs[STEPS_PLANNED_ATTR])
        if trial.state == optuna.trial.TrialState.COMPLETE:
            total += planned
        elif trial.state == optuna.trial.TrialState.PRUNED:
            total += int(trial.user_attrs.get(STEPS_RUN_ATTR, 0))
        elif trial.state == optuna.trial.TrialState.RUNNING and include_running:
            total += planned
    return total
