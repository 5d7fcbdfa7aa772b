"""Search efficiency: hypervolume after N trials per sampler, and what multi-fidelity saves.

    python benchmarks/search_efficiency.py [--quick] [--measured 24] [--steps 225] [--trials 24] [--seeds 15]

Comparing samplers needs many studies over several seeds; on a 2-core CPU that is only
affordable on a surrogate. The surrogate is built from REAL trials measured in this run:

1. `--measured` configurations are drawn from the default search space (random sampler, fixed
   seed; configurations over the 5% budget are skipped, as a study never trains them) and each
   is trained for real with `run_trial` on VQA, on the default study's backbone (the embedded
   VL-pretrained one) for `--steps` steps (default: the default study's trial length), scored
   at the multi-fidelity rungs (1/4, 2/4, 3/4 of the steps, 64 validation questions) and at the
   end (128 validation questions).
2. A sampled configuration's score (and rung scores) are those of the nearest measured
   configuration of the same method (distance over its Optuna parameters: categorical
   mismatch 1, numeric |log ratio| / log 4, capped at 1; a method never measured gets the lowest
   measured score). Its trainable % is exact (counted on
   the meta device), and the budget is enforced as the real objective does (constraint set,
   infeasible trials score 0).
3. Every sampler of `search.launch` (tpe, the default; nsga2; gp; random) runs on this
   surrogate until it has `--trials` trained trials, per seed. Trials are counted as
   `search.launch --trials` counts them: over-budget configurations are free (never trained),
   so equal trial counts are equal compute. The hypervolume (storage.hypervolume_2d, reference
   score 0 at 100%) after N trained trials is compared with random search's at half of
   `--trials` (by default 12, the default study's) and at all of it, where the target is read.
4. Multi-fidelity: the default sampler runs again with the real rung rule
   (search.fidelity.RungJudge) replaying the rung scores; compute is counted in training steps.

The surrogate's landscape is piecewise constant (nearest neighbour), so the figures say how
well each sampler finds the good regions of the real space, not how it models fine detail.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path

import optuna
import pandas as pd

from common import Section, benchmark_arguments, print_section, table, target

TASKS = ("vqa",)
BUDGET_PCT = 5.0
SAMPLERS = ("tpe", "nsga2", "gp", "random")
RUNG_SAMPLE = 64
FINAL_SAMPLE = 128  # validation questions of the final score: the whole split costs more than training here


def measure_table(env, defaults, count: int, seed: int = 12345) -> list[dict]:
    """Train `count` in-budget configurations of the space for real; return their results."""
    from search.fidelity import Fidelity, with_rungs
    from search.space import config_from_trial
    from training.trial import count_trial_parameters, run_trial

    fidelity = Fidelity(eval_sample=RUNG_SAMPLE)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    measured = []
    while len(measured) < count:
        trial = study.ask()
        config = config_from_trial(trial, defaults)
        pct = count_trial_parameters(config, env).trainable_pct
        if pct > BUDGET_PCT:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        run_config = dataclasses.replace(config, training=with_rungs(config.training, fidelity))
        outcome = run_trial(run_config, env, show_progress=False)
        rungs = {step: sum(s.values()) / len(s) for step, s in outcome.evaluations}
        measured.append({"params": dict(trial.params), "score": outcome.score, "pct": pct, "rungs": rungs})
        study.tell(trial, [outcome.score, pct])
    return measured


def distance(a: dict, b: dict) -> float:
    if a.get("method") != b.get("method"):
        return math.inf
    total = 0.0
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool) and x > 0 and y > 0:
            total += min(1.0, abs(math.log(x / y)) / math.log(4))
        else:
            total += float(x != y)
    return total


class Surrogate:
    """The study objective on measured results: nearest measured configuration's scores."""

    def __init__(self, measured: list[dict], env, defaults, fidelity=None):
        self.measured = measured
        self.env = env
        self.defaults = defaults
        self.fidelity = fidelity
        self.trial_steps: list[int] = []  # training steps each trial would have run, in trial order
        self._pct: dict[str, float] = {}

    def nearest(self, params: dict) -> dict:
        scored = [(distance(params, m["params"]), i) for i, m in enumerate(self.measured)]
        best = min(scored)
        if math.isinf(best[0]):  # a method never measured: the nearest across methods by score rank
            return min(self.measured, key=lambda m: m["score"])
        return self.measured[best[1]]

    def trainable_pct(self, config) -> float:
        from training.trial import count_trial_parameters

        key = repr(config.to_dict())
        if key not in self._pct:
            self._pct[key] = count_trial_parameters(config, self.env).trainable_pct
        return self._pct[key]

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        from search.fidelity import RungJudge, RungPruned
        from search.objective import CONSTRAINT_KEY
        from search.space import config_from_trial

        config = config_from_trial(trial, self.defaults)
        pct = self.trainable_pct(config)
        over = max(0.0, pct - BUDGET_PCT) / 100
        trial.set_constraint(CONSTRAINT_KEY, over)
        if over > 0:
            self.trial_steps.append(0)  # never trained
            return 0.0, pct
        result = self.nearest(trial.params)
        steps = config.training.steps
        if self.fidelity is not None:
            judge = RungJudge(trial, pct, self.fidelity)
            every = self.fidelity.schedule(steps)
            for step in range(every, steps, every) if every else ():
                try:
                    judge(step, {"vqa": result["rungs"][step]})
                except RungPruned:
                    self.trial_steps.append(step)
                    raise
        self.trial_steps.append(steps)
        return result["score"], pct


def until_trained(trials: list[optuna.trial.FrozenTrial], n: int) -> list[optuna.trial.FrozenTrial]:
    """The study's trials up to and including its n-th trained one."""
    from search.progress import trained

    seen = 0
    for i, trial in enumerate(trials):
        seen += trained(trial)
        if seen == n:
            return trials[: i + 1]
    return trials


def hypervolume(trials: list[optuna.trial.FrozenTrial]) -> float:
    from search.progress import trained
    from core.pareto import hypervolume_2d

    rows = [{"score": t.values[0], "trainable_pct": t.values[1], "status": "complete"} for t in trials if trained(t)]
    return hypervolume_2d(pd.DataFrame(rows, columns=["score", "trainable_pct", "status"])) if rows else 0.0


def run_study(sampler: str, seed: int, trials: int, objective: Surrogate) -> optuna.Study:
    """Run until `trials` trained trials, as `search.launch --trials` counts them."""
    import warnings

    from search.launch import make_sampler
    from search.progress import trained

    def stop_at_goal(study: optuna.Study, _) -> None:
        if sum(trained(t) for t in study.get_trials(deepcopy=False)) >= trials:
            study.stop()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, seed))
        # The attempt cap is the launch's guard against a space where little fits the budget.
        study.optimize(objective, n_trials=10 * trials, callbacks=[stop_at_goal])
    return study


def compare_samplers(measured: list[dict], env, defaults, trials: int, seeds: int) -> tuple[str, float]:
    """Every sampler's median hypervolume at half and all of `trials`, against random search's."""
    checkpoints = sorted({max(1, trials // 2), trials})
    curves = {sampler: {n: [] for n in checkpoints} for sampler in SAMPLERS}
    for sampler in SAMPLERS:
        for seed in range(seeds):
            study = run_study(sampler, seed, trials, Surrogate(measured, env, defaults))
            for n in checkpoints:
                curves[sampler][n].append(hypervolume(until_trained(study.trials, n)))
    final = {sampler: curves[sampler][trials] for sampler in SAMPLERS}
    random_median = statistics.median(final["random"])
    rows = []
    for sampler in SAMPLERS:
        wins = sum(a > b for a, b in zip(final[sampler], final["random"]))
        rows.append([
            sampler + (" (default)" if sampler == "tpe" else ""),
            *[f"{statistics.median(curves[sampler][n]):.1f}" for n in checkpoints],
            f"{statistics.median(final[sampler]) / random_median:.3f}" if random_median else "n/a",
            f"{wins} / {seeds}" if sampler != "random" else "",
        ])  # fmt: skip
    text = table(
        ["sampler", *[f"median hypervolume after {n} trained trials" for n in checkpoints],
         f"median / random's at {trials}", f"seeds beating random at {trials}"],
        rows,
    )  # fmt: skip
    return text, statistics.median(final["tpe"]) / random_median if random_median else 0.0


def steps_to_reach(study: optuna.Study, trial_steps: list[int], goal: float) -> float:
    """Training steps the study had spent when its hypervolume first reached `goal` (inf: never)."""
    spent = 0
    for n, steps in enumerate(trial_steps, start=1):
        spent += steps
        if hypervolume(study.trials[:n]) >= goal:
            return spent
    return math.inf


def multi_fidelity(measured: list[dict], env, defaults, trials: int, seeds: int) -> tuple[str, dict[str, float]]:
    """The default sampler with and without rungs, same seeds and trial counts, compute in steps."""
    from search.fidelity import Fidelity

    arms = {"off": None, "on": Fidelity(eval_sample=RUNG_SAMPLE)}
    runs = {arm: [] for arm in arms}  # (study, steps of each trial)
    for seed in range(seeds):
        for arm, rule in arms.items():
            objective = Surrogate(measured, env, defaults, rule)
            runs[arm].append((run_study("tpe", seed, trials, objective), objective.trial_steps))
    final = {arm: statistics.median(hypervolume(until_trained(study.trials, trials)) for study, _ in runs[arm]) for arm in arms}
    spent = {arm: sum(sum(steps) for _, steps in runs[arm]) for arm in arms}
    # Equal final hypervolume: the steps each arm needs to reach the rung-free arm's median final one.
    goal = final["off"]
    reach = {arm: statistics.median(steps_to_reach(study, steps, goal) for study, steps in runs[arm]) for arm in arms}
    saved_at_goal = 1 - reach["on"] / reach["off"] if math.isfinite(reach["on"]) and reach["off"] else math.nan
    rows = [
        ["off" if arm == "off" else "on (3 rungs)", f"{final[arm]:.1f}", f"{spent[arm]:,}",
         f"{reach[arm]:,.0f}" if math.isfinite(reach[arm]) else "not reached (median)"]
        for arm in arms
    ]  # fmt: skip
    text = (
        table(["rungs", "median final hypervolume", "training steps, all seeds", f"median steps to reach {goal:.1f}"], rows)
        + f"\n\nAt equal trained-trial counts multi-fidelity ran **{_more_or_fewer(spent['on'] / spent['off'])} training "
        f"steps** (the trials its rungs stopped come on top, as in `search.launch`), for a median final hypervolume "
        f"{final['on'] / final['off'] if final['off'] else 0:.3f}x that without rungs; " + _equal_hypervolume_text(reach, saved_at_goal)
    )
    return text, {"mf_saved_fraction": 1 - spent["on"] / spent["off"], "mf_saved_at_equal_hv": saved_at_goal,
                  "mf_hv_ratio": final["on"] / final["off"] if final["off"] else 0.0}  # fmt: skip


def _more_or_fewer(ratio: float) -> str:
    return f"{100 * (1 - ratio):.0f}% fewer" if ratio <= 1 else f"{100 * (ratio - 1):.0f}% more"


def _equal_hypervolume_text(reach: dict[str, float], saved: float) -> str:
    if not math.isfinite(reach["on"]):
        return "its median run did not reach the rung-free arm's median final hypervolume."
    if not math.isfinite(saved):
        return "both arms reached that hypervolume before any training step, so no saving can be measured."
    return f"to reach the rung-free arm's median final hypervolume it needed **{100 * saved:.0f}% fewer steps**."


def run(
    data_dir: Path, quick: bool = False, measured: int | None = None, steps: int | None = None,
    trials: int | None = None, seeds: int | None = None,
) -> Section:  # fmt: skip
    from models.config import TrainingConfig
    from search.space import SpaceDefaults
    from training.environment import prepare_environment

    from models.backbones.presets import DEFAULT_SEARCH_BACKBONE as BACKBONE

    measured = measured or (3 if quick else 24)
    steps = steps or (4 if quick else TrainingConfig().steps)
    trials = trials or (5 if quick else 24)
    seeds = seeds or (2 if quick else 15)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    env = prepare_environment(data_dir, BACKBONE, TASKS)
    env = dataclasses.replace(env, tasks={n: t.limited(FINAL_SAMPLE) for n, t in env.tasks.items()})
    defaults = SpaceDefaults(BACKBONE, TASKS, TrainingConfig(steps=steps))
    results = measure_table(env, defaults, measured)
    samplers_text, tpe_ratio = compare_samplers(results, env, defaults, trials, seeds)
    fidelity_text, fidelity_figures = multi_fidelity(results, env, defaults, trials, seeds)
    scores = sorted(m["score"] for m in results)
    body = (
        f"Surrogate built from **{len(results)} real trials** measured in this run (configurations drawn at random "
        f"from the default search space within a {BUDGET_PCT:g}% budget, each trained {steps} steps on VQA with the "
        f"default study's backbone `{BACKBONE}` and scored on {FINAL_SAMPLE} validation questions; their scores range "
        f"{scores[0]:.1f}-{scores[-1]:.1f}, median {statistics.median(scores):.1f}). Each sampler then ran until {trials} trained "
        f"trials on the surrogate (over-budget ones are never trained and do not count) for each of {seeds} seeds; a sampled configuration takes the scores of its nearest measured "
        "configuration of the same method and its exact trainable %. This is a surrogate, not a real study: see the "
        "script's docstring.\n\n"
        + samplers_text
        + "\n\nMulti-fidelity (the default sampler, the real rung rule of search.fidelity replaying the measured rung "
        f"scores; {seeds} seeds x {trials} trained trials; trials stopped at a rung do not count):\n\n" + fidelity_text
    )
    return Section(
        title="Search efficiency: samplers against random search, and multi-fidelity",
        command="python benchmarks/search_efficiency.py" + (" --quick" if quick else ""),
        body=body,
        figures={"tpe_vs_random": tpe_ratio, **fidelity_figures},
        targets=[target("default sampler (tpe) median hypervolume / random's, equal trials", tpe_ratio, above=1.0)],
    )


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--measured", {"type": int, "default": None, "help": "real trials behind the surrogate (default 24)"}),
        ("--steps", {"type": int, "default": None, "help": "training steps of each real trial (default: the default study's, 225)"}),
        ("--trials", {"type": int, "default": None, "help": "trained trials per study (default 24)"}),
        ("--seeds", {"type": int, "default": None, "help": "seeds per sampler (default 15)"}),
    )
    print_section(run(args.data_dir, args.quick, args.measured, args.steps, args.trials, args.seeds))


if __name__ == "__main__":
    main()
