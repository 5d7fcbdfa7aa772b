"""Search efficiency: samplers against random search, and multi-fidelity against none, on a
surrogate of measured trials.

    python benchmarks/search_efficiency.py [--measured FILE] [--trials 48] [--seeds 15] [--json] [--quick]

Comparing samplers needs many studies over many seeds; on a 2-core CPU that is only affordable
on a surrogate. This one replays REAL trials: those that benchmarks/rung_reliability.py trained
on the default study's tasks and backbone, with their scores at every candidate rung and at the
end (default file: benchmarks/measured/rung_trials.json; the file says how it was made).

1. A sampled configuration scores as the nearest measured configuration of the same method
   (distance over its Optuna parameters: categorical mismatch 1, numeric |log ratio| / log 4,
   capped at 1; a method never measured gets the lowest measured score), at the end and at each
   rung. Its trainable % is exact (counted on the meta device), and the budget is enforced as the
   real objective does (constraint set; over-budget configurations are never trained and free).
2. Samplers: every sampler of `search.launch` runs until `--trials` trained trials, per seed. The
   figure: how many trials the default sampler needs to reach random search's median
   hypervolume at `--trials` (hypervolume: storage.hypervolume_2d, reference score 0 at 100%).
3. Multi-fidelity: the default sampler without rungs runs until `--trials` // 2 trained trials;
   with the default rungs (search.fidelity, the real RungJudge replaying the measured rung
   scores) it runs until it reaches the rung-free arm's median final hypervolume, or on a step
   budget twice as large. The figure: the training steps the rung arm needs to reach that
   hypervolume, over the rung-free arm's steps.

`--json` prints only the figures, as one JSON object. The surrogate's landscape is piecewise
constant (nearest neighbour), so the figures say how fast each arm finds the good regions of
the real space, not how well it models fine detail. Unlike search.objective, a repeat of a
configuration is trained again (and counted) here, in every arm alike: skipping repeats makes
samplers that propose them often spin through hundreds of free trials, minutes per study.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: thousands of surrogate studies, no bar each

import dataclasses
import json
import math
import statistics
import sys
import warnings
from pathlib import Path

import optuna
import pandas as pd

from common import Section, benchmark_arguments, positive_int, print_section, table, target

SAMPLERS = ("tpe", "gp", "nsga2", "random")
DEFAULT_MEASURED = Path(__file__).parent / "measured" / "rung_trials.json"


class MeasuredFileError(ValueError):
    """The measured-trials file is missing or not what rung_reliability.py writes."""


def load_measured(path: Path) -> dict:
    """The measured trials, checked: one clear error for a file this cannot replay."""
    fix = "write it with python benchmarks/rung_reliability.py --out FILE"
    if not path.is_file():
        raise MeasuredFileError(f"--measured {path}: no such file; {fix}")
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MeasuredFileError(f"--measured {path}: not JSON ({error}); {fix}") from None
    trials = document.get("trials") if isinstance(document, dict) else None
    keys = {"params", "pct", "score", "rungs", "steps"}
    if not isinstance(trials, list) or len(trials) < 3 or not all(isinstance(t, dict) and keys <= set(t) for t in trials):
        raise MeasuredFileError(f"--measured {path}: needs a 'trials' list of at least 3 measured trials with keys {sorted(keys)}; {fix}")
    return document


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


_PCT: dict[str, float] = {}  # configuration structure -> trainable %


class Surrogate:
    """The study objective on measured results: the nearest measured configuration's scores.

    Args:
        fidelity: with rungs, the real rung rule (search.fidelity.RungJudge) judges the trial on
            the measured rung scores; None runs every trial to the end.
        budget_pct: the trainable-parameter budget, as the study enforces it.
    """

    def __init__(self, measured: list[dict], env, defaults, budget_pct: float, fidelity=None, goal: float | None = None):
        self.measured = measured
        self.env = env
        self.defaults = defaults
        self.budget_pct = budget_pct
        self.fidelity = fidelity
        self.goal = goal  # stop the study once its hypervolume reaches this: the steps to reach it are all that is measured
        self.trial_steps: list[int] = []  # training steps each trial ran, in trial order

    def nearest(self, params: dict) -> dict:
        scored = [(distance(params, m["params"]), i) for i, m in enumerate(self.measured)]
        best = min(scored)
        if math.isinf(best[0]):  # a method never measured: the lowest measured score
            return min(self.measured, key=lambda m: m["score"])
        return self.measured[best[1]]

    def trainable_pct(self, config) -> float:
        from models.config import TrainingConfig
        from training.trial import count_trial_parameters

        # The count does not depend on the recipe (learning rates, optimizer): one count per structure.
        key = repr(dataclasses.replace(config, training=TrainingConfig()).to_dict())
        if key not in _PCT:  # shared by every study of the run: counting builds the model on the meta device
            _PCT[key] = count_trial_parameters(config, self.env).trainable_pct
        return _PCT[key]

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        from search.fidelity import STEPS_PLANNED_ATTR, STEPS_RUN_ATTR, RungJudge, RungPruned
        from search.objective import CONSTRAINT_KEY
        from search.space import config_from_trial

        if self.goal is not None and hypervolume(trial.study.get_trials(deepcopy=False)) >= self.goal - 1e-9:
            trial.study.stop()  # after this trial: an arm that stops many trials early would otherwise run hundreds more
        config = config_from_trial(trial, self.defaults)
        pct = self.trainable_pct(config)
        over = max(0.0, pct - self.budget_pct) / 100
        trial.set_constraint(CONSTRAINT_KEY, over)
        if over > 0:
            self.trial_steps.append(0)  # never trained
            return 0.0, pct
        result = self.nearest(trial.params)
        steps = int(result["steps"])
        trial.set_user_attr(STEPS_PLANNED_ATTR, steps)
        if self.fidelity is not None:
            judge = RungJudge(trial, pct, self.fidelity)
            measured = result["rung_losses"] if self.fidelity.measure == "loss" else result["rungs"]
            for step in self.fidelity.rung_steps(steps):
                try:
                    judge(step, {"rung": measured[str(step)][str(self.fidelity.eval_sample)]})
                except RungPruned:
                    trial.set_user_attr(STEPS_RUN_ATTR, step)
                    self.trial_steps.append(step)
                    raise
        self.trial_steps.append(steps)
        return result["score"], pct


def hypervolume(trials: list[optuna.trial.FrozenTrial]) -> float:
    from core.pareto import hypervolume_2d
    from search.progress import trained

    rows = [{"score": t.values[0], "trainable_pct": t.values[1], "status": "complete"} for t in trials if trained(t)]
    return hypervolume_2d(pd.DataFrame(rows, columns=["score", "trainable_pct", "status"])) if rows else 0.0


def curve_by_trained(study: optuna.Study) -> list[float]:
    """The hypervolume after each trained trial (index n - 1: after n)."""
    from search.progress import trained

    curve, seen = [], []
    for trial in study.trials:
        seen.append(trial)
        if trained(trial):
            curve.append(hypervolume(seen))
    return curve


def run_study(sampler: str, seed: int, objective: Surrogate, trials: int = 0, step_budget: int | None = None) -> optuna.Study:
    """Run until `trials` trained trials or `step_budget` steps, as search.launch counts them."""
    from search.launch import make_sampler
    from search.study_runner import run_until_target

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, seed))
        run_until_target(study, objective, trials, None, step_budget=step_budget, collect_garbage=False, show_progress=False)
    return study


def first_reaching(values: list[float], goal: float) -> float:
    """1-based position of the first value >= goal (inf: none)."""
    return next((n for n, value in enumerate(values, start=1) if value >= goal - 1e-9), math.inf)


def compare_samplers(measured, env, defaults, budget_pct: float, trials: int, seeds: int, samplers, default: str) -> tuple[str, dict]:
    """Trials each sampler needs to reach random search's median hypervolume at `trials`."""
    curves = {
        s: [curve_by_trained(run_study(s, seed, Surrogate(measured, env, defaults, budget_pct), trials)) for seed in range(seeds)]
        for s in samplers
    }
    goal = statistics.median(c[trials - 1] if len(c) >= trials else c[-1] for c in curves["random"])
    rows, reach = [], {}
    for sampler in samplers:
        needed = [first_reaching(c, goal) for c in curves[sampler]]
        reach[sampler] = statistics.median(needed)
        at_end = statistics.median(c[-1] for c in curves[sampler])
        rows.append([
            sampler + (" (default)" if sampler == default else ""),
            f"{statistics.median(c[min(len(c), trials // 2) - 1] for c in curves[sampler]):.1f}",
            f"{at_end:.1f}",
            _trials_text(reach[sampler], trials),
            f"{sum(n <= trials for n in needed)} / {seeds}",
        ])  # fmt: skip
    text = table(
        ["sampler", f"median hypervolume at {trials // 2} trained trials", f"at {trials}",
         f"median trials to reach random's median at {trials} ({goal:.1f})", "seeds that reach it"],
        rows,
    )  # fmt: skip
    return text, {"sampler_trials_ratio": reach[default] / trials, "sampler_goal_hypervolume": goal, "reach": reach}


def _trials_text(n: float, trials: int) -> str:
    return f"{n:.1f} ({n / trials:.2f}x)" if math.isfinite(n) else f"not within {trials}"


def default_fidelity():
    """The rule a study launched with the defaults uses (search.launch)."""
    from search.fidelity import Fidelity
    from search.launch import DEFAULT_RUNG_MEASURE, DEFAULT_RUNGS

    return Fidelity.for_study(DEFAULT_RUNGS, DEFAULT_RUNG_MEASURE)


def multi_fidelity(measured, env, defaults, budget_pct: float, trials: int, seeds: int, sampler: str, fidelity=None) -> tuple[str, dict]:
    """The default sampler with and without rungs: training steps to reach the same hypervolume."""
    fidelity = fidelity or default_fidelity()
    full_runs, rung_runs = [], []
    for seed in range(seeds):
        plain = Surrogate(measured, env, defaults, budget_pct)
        full_runs.append((run_study(sampler, seed, plain, trials=trials), plain.trial_steps))
    full_steps = statistics.median(sum(steps) for _, steps in full_runs)
    goal = statistics.median(hypervolume(study.trials) for study, _ in full_runs)
    for seed in range(seeds):
        rungs = Surrogate(measured, env, defaults, budget_pct, fidelity, goal=goal)
        rung_runs.append((run_study(sampler, seed, rungs, step_budget=int(2 * full_steps)), rungs.trial_steps))
    reach = [_steps_to_reach(study, steps, goal) for study, steps in rung_runs]
    full_reach = [_steps_to_reach(study, steps, goal) for study, steps in full_runs]
    ratio = statistics.median(reach) / full_steps
    stopped = statistics.median(sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials) for study, _ in rung_runs)
    completed = statistics.median(sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) for study, _ in rung_runs)
    rows = [
        ["off", f"{trials} trained trials", f"{full_steps:,.0f}", f"{goal:.1f}", _steps_text(statistics.median(full_reach))],
        [f"on: rungs after {', '.join(map(str, fidelity.rung_steps(int(measured[0]['steps']))))} steps, eta {fidelity.reduction}, "
         f"{fidelity.measure} on {fidelity.eval_sample} examples per task",
         f"{goal:.1f} hypervolume, or {2 * full_steps:,.0f} steps (median {completed:.0f} trials complete, {stopped:.0f} stopped at a rung)",
         f"{statistics.median(sum(steps) for _, steps in rung_runs):,.0f}", f"{statistics.median(hypervolume(s.trials) for s, _ in rung_runs):.1f}",
         _steps_text(statistics.median(reach))],
    ]  # fmt: skip
    text = table(["rungs", "goal", "training steps (median)", "median hypervolume at the end", f"median steps to reach {goal:.1f}"], rows)
    text += (
        f"\n\nThe rung arm reached the rung-free arm's median final hypervolume with **{_ratio_text(ratio)}** of that arm's "
        f"{full_steps:,.0f} training steps (median over {seeds} seeds; seeds that reached it: "
        f"{sum(math.isfinite(r) for r in reach)} / {seeds})."
    )
    return text, {"multi_fidelity_step_ratio": ratio, "multi_fidelity_goal_hypervolume": goal}


def _steps_to_reach(study: optuna.Study, trial_steps: list[int], goal: float) -> float:
    """Training steps the study had spent when its hypervolume first reached `goal` (inf: never)."""
    spent = 0
    for n, steps in enumerate(trial_steps, start=1):
        spent += steps
        if hypervolume(study.trials[:n]) >= goal - 1e-9:
            return spent
    return math.inf


def _steps_text(steps: float) -> str:
    return f"{steps:,.0f}" if math.isfinite(steps) else "not reached"


def _ratio_text(ratio: float) -> str:
    return f"{100 * ratio:.0f}%" if math.isfinite(ratio) else "more than twice (not reached)"


def rung_correlation(measured: list[dict], fidelity=None) -> float:
    """Spearman's rho between the first default rung's measure (a loss negated) and the final score."""
    from scipy.stats import spearmanr

    fidelity = fidelity or default_fidelity()
    first = str(fidelity.rung_steps(int(measured[0]["steps"]))[0])
    sample = str(fidelity.eval_sample)
    rung = [fidelity.ranked({"rung": (m["rung_losses"] if fidelity.measure == "loss" else m["rungs"])[first][sample]}) for m in measured]
    return float(spearmanr(rung, [m["score"] for m in measured]).statistic)


def default_sampler() -> str:
    from search.launch import LaunchOptions

    return LaunchOptions(budget="5%").sampler


@dataclasses.dataclass(frozen=True)
class SurrogateInputs:
    """What a surrogate study needs: the measured trials and the space they were drawn from."""

    document: dict
    measured: list[dict]
    env: object
    defaults: object
    budget_pct: float


def surrogate_inputs(data_dir: Path, measured_path: Path) -> SurrogateInputs:
    """The measured trials, checked, and the environment that counts their parameters."""
    from models.config import TrainingConfig
    from search.space import SpaceDefaults
    from training.environment import prepare_environment

    document = load_measured(measured_path)
    measured = document["trials"]
    if default_fidelity().measure == "loss" and not all("rung_losses" in m for m in measured):
        raise MeasuredFileError(
            f"--measured {measured_path}: its trials have no held-out losses at the rungs (measured before they were recorded), "
            "and the default rungs rank by them; write it again with python benchmarks/rung_reliability.py --out FILE"
        )
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tasks = tuple(document.get("tasks", ("vqa",)))
    # Only the backbone is read (to count parameters on the meta device, for the configuration's
    # own tasks); one task's features are the least preparation that gives it.
    env = prepare_environment(data_dir, document["backbone"], ("vqa",))
    defaults = SpaceDefaults(document["backbone"], tasks, TrainingConfig(steps=int(document["steps"])))
    return SurrogateInputs(document, measured, env, defaults, float(document.get("budget_pct", 5.0)))


def figures(data_dir: Path, measured_path: Path, trials: int, seeds: int, samplers=SAMPLERS) -> tuple[dict, dict]:
    """The figures and the texts of the tables."""
    inputs = surrogate_inputs(data_dir, measured_path)
    document, measured, env, defaults, budget_pct = inputs.document, inputs.measured, inputs.env, inputs.defaults, inputs.budget_pct
    default = default_sampler()
    samplers_text, sampler_figures = compare_samplers(measured, env, defaults, budget_pct, trials, seeds, samplers, default)
    fidelity_text, fidelity_figures = multi_fidelity(measured, env, defaults, budget_pct, trials // 2, seeds, default)
    result = {
        "multi_fidelity_step_ratio": fidelity_figures["multi_fidelity_step_ratio"],
        "sampler_trials_ratio": sampler_figures["sampler_trials_ratio"],
        "default_sampler": default,
        "rung_final_rank_correlation": rung_correlation(measured),
    }
    return result, {"samplers": samplers_text, "fidelity": fidelity_text, "document": document}


def run(
    data_dir: Path, quick: bool = False, measured: Path = DEFAULT_MEASURED, trials: int | None = None, seeds: int | None = None
) -> Section:
    trials = trials or (6 if quick else 48)
    seeds = seeds or (2 if quick else 15)
    result, texts = figures(data_dir, measured, trials, seeds)
    document = texts["document"]
    scores = sorted(m["score"] for m in document["trials"])
    body = (
        f"Surrogate of **{len(scores)} real trials** (`{measured.name}`, made by `{document.get('command', 'benchmarks/rung_reliability.py')}`: "
        f"configurations drawn at random from the default space within a {document.get('budget_pct', 5.0):g}% budget, each trained "
        f"{document['steps']} steps on {', '.join(document.get('tasks', []))} with `{document['backbone']}`; final scores "
        f"{scores[0]:.1f}-{scores[-1]:.1f}, median {statistics.median(scores):.1f}). {seeds} seeds per arm. This is a surrogate, "
        "not a real study: see the script's docstring.\n\n"
        f"Samplers, each until {trials} trained trials:\n\n" + texts["samplers"] + "\n\n"
        f"Multi-fidelity (the default sampler, {result['default_sampler']}; Spearman's rho between the first rung's measure and "
        f"the final score: {result['rung_final_rank_correlation']:.2f}):\n\n" + texts["fidelity"]
    )
    return Section(
        title="Search efficiency: samplers against random search, and multi-fidelity",
        command="python benchmarks/search_efficiency.py" + (" --quick" if quick else ""),
        body=body,
        figures={k: v for k, v in result.items() if isinstance(v, float)},
        targets=[
            target("trials the default sampler needs to reach random's median hypervolume at 48 / 48", result["sampler_trials_ratio"], at_most=0.5),
            target("training steps multi-fidelity needs to reach the rung-free median hypervolume / rung-free steps", result["multi_fidelity_step_ratio"], at_most=0.5),
        ],
    )  # fmt: skip


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--measured", {"type": Path, "default": DEFAULT_MEASURED, "help": f"measured trials to replay (default {DEFAULT_MEASURED})"}),
        ("--trials", {"type": positive_int, "default": None, "help": "trained trials per sampler study (default 48)"}),
        ("--seeds", {"type": positive_int, "default": None, "help": "seeds per arm (default 15)"}),
        ("--json", {"action": "store_true", "help": "print the figures only, as one JSON object"}),
    )
    try:
        if args.json:
            trials, seeds = args.trials or (6 if args.quick else 48), args.seeds or (2 if args.quick else 15)
            samplers = tuple(dict.fromkeys((default_sampler(), "random")))
            result, _ = figures(args.data_dir, args.measured, trials, seeds, samplers=samplers)
            # A ratio that was never reached (the arm did not get there) is null, not Infinity: JSON has no infinities.
            print(json.dumps({k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in result.items()}))
        else:
            print_section(run(args.data_dir, args.quick, args.measured, args.trials, args.seeds))
    except MeasuredFileError as error:
        print(f"search_efficiency.py: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
