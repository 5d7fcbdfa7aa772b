"""Search efficiency: samplers against random search, and multi-fidelity against none, on a
surrogate of measured trials.

    python benchmarks/search_efficiency.py [--measured FILE] [--trials 48] [--seeds 15] [--workers N] [--json] [--quick]

Comparing samplers needs many studies over many seeds; on a 2-core CPU that is only affordable
on a surrogate. This one replays REAL trials: those that benchmarks/rung_reliability.py trained
on the default study's tasks and backbone, with their scores at every candidate rung and at the
end (default file: benchmarks/measured/rung_trials_pinned.json, measured on the embedded backbone
as built today; rung_trials.json holds the same configurations on an earlier build, before its
CPU kernels were pinned; each file says how it was made).

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

The studies are independent (one per arm and seed), so they run on `--workers` processes, by
default one per usable core; each study is deterministic in its seed, so the figures do not
depend on the number of workers (`--json` took 258 s on 2 cores, 609 s on one process before).
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: thousands of surrogate studies, no bar each

import dataclasses
import json
import math
import multiprocessing
import statistics
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import optuna
import pandas as pd

from tqdm import tqdm

from common import Section, benchmark_arguments, positive_int, print_section, table, target

SAMPLERS = ("tpe", "gp", "nsga2", "random")
DEFAULT_MEASURED = Path(__file__).parent / "measured" / "rung_trials_pinned.json"


class MeasuredFileError(ValueError):
    """The measured-trials file is missing or not what rung_reliability.py writes."""


def load_measured(path: Path, flag: str = "--measured") -> dict:
    """The measured trials, checked: one clear error for a file this cannot replay."""
    fix = "write it with python benchmarks/rung_reliability.py --out FILE"
    if not path.is_file():
        raise MeasuredFileError(f"{flag} {path}: no such file; {fix}")
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MeasuredFileError(f"{flag} {path}: not JSON ({error}); {fix}") from None
    trials = document.get("trials") if isinstance(document, dict) else None
    keys = {"params", "pct", "score", "rungs", "steps"}
    if not isinstance(trials, list) or len(trials) < 3 or not all(isinstance(t, dict) and keys <= set(t) for t in trials):
        raise MeasuredFileError(f"{flag} {path}: needs a 'trials' list of at least 3 measured trials with keys {sorted(keys)}; {fix}")
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


@dataclasses.dataclass(frozen=True)
class StudyJob:
    """One surrogate study: a sampler and seed, its goal, and whether it has rungs.

    Attributes:
        trials: run until this many trained trials (0: until `step_budget`).
        step_budget: run until this many training steps.
        fidelity: the rung rule (None: every trial runs to the end).
        goal: stop once the study's hypervolume reaches this.
    """

    sampler: str
    seed: int
    trials: int = 0
    step_budget: int | None = None
    fidelity: object = None
    goal: float | None = None


@dataclasses.dataclass(frozen=True)
class Trace:
    """A surrogate study as the figures read it, trial by trial, in trial order (a study itself
    does not cross processes: its trials hold the sampler's state).

    Attributes:
        trained: whether each trial was trained (not over the budget).
        steps: the training steps each trial ran (at a rung when it stopped there).
        hypervolume: the study's hypervolume after each trial.
        stopped: trials stopped at a rung.
        completed: trials that ran to the end or were over the budget (Optuna's COMPLETE).
    """

    trained: tuple[bool, ...]
    steps: tuple[int, ...]
    hypervolume: tuple[float, ...]
    stopped: int
    completed: int

    @classmethod
    def of(cls, study: optuna.Study, trial_steps: list[int]) -> "Trace":
        from search.progress import trained

        flags, curve, seen, value = [], [], [], 0.0
        for trial in study.trials:
            seen.append(trial)
            flags.append(trained(trial))
            if flags[-1]:  # only a trained trial can move the front
                value = hypervolume(seen)
            curve.append(value)
        states = [t.state for t in study.trials]
        return cls(
            tuple(flags), tuple(trial_steps), tuple(curve),
            states.count(optuna.trial.TrialState.PRUNED), states.count(optuna.trial.TrialState.COMPLETE),
        )  # fmt: skip

    def by_trained(self) -> list[float]:
        """The hypervolume after each trained trial (index n - 1: after n)."""
        return [value for value, was_trained in zip(self.hypervolume, self.trained) if was_trained]

    def steps_to_reach(self, goal: float) -> float:
        """Training steps the study had spent when its hypervolume first reached `goal` (inf: never)."""
        spent = 0
        for steps, value in zip(self.steps, self.hypervolume):
            spent += steps
            if value >= goal - 1e-9:
                return spent
        return math.inf

    @property
    def final_hypervolume(self) -> float:
        return self.hypervolume[-1] if self.hypervolume else 0.0


def run_study(sampler: str, seed: int, objective: Surrogate, trials: int = 0, step_budget: int | None = None) -> optuna.Study:
    """Run until `trials` trained trials or `step_budget` steps, as search.launch counts them."""
    from search.launch import make_sampler
    from search.study_runner import run_until_target

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, seed))
        run_until_target(study, objective, trials, None, step_budget=step_budget, collect_garbage=False, show_progress=False)
    return study


# What the studies read: set before the worker processes fork, which then share it (the backbone's
# environment, whose weights a process would otherwise load again).
_INPUTS: SurrogateInputs | None = None


def _run_job(job: StudyJob) -> Trace:
    inputs = _INPUTS
    assert inputs is not None, "run_studies sets the inputs before any study runs"
    objective = Surrogate(inputs.measured, inputs.env, inputs.defaults, inputs.budget_pct, job.fidelity, goal=job.goal)
    study = run_study(job.sampler, job.seed, objective, trials=job.trials, step_budget=job.step_budget)
    return Trace.of(study, objective.trial_steps)


def run_studies(inputs: SurrogateInputs, jobs: list[StudyJob], workers: int, label: str) -> list[Trace]:
    """Each job's trace, in job order, run on `workers` processes (with a progress bar)."""
    global _INPUTS
    _INPUTS = inputs
    # An explicit disable=False: the TQDM_DISABLE set above is for the studies' own bars.
    with tqdm(total=len(jobs), desc=label, unit="study", disable=False, file=sys.stderr) as bar:
        if workers <= 1 or len(jobs) <= 1:
            traces = []
            for job in jobs:
                traces.append(_run_job(job))
                bar.update()
            return traces
        # fork: the workers inherit the inputs (and the parameter counts made so far) instead of
        # importing torch and loading the backbone again; they count on the meta device only.
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_run_job, job): n for n, job in enumerate(jobs)}
            results: dict[int, Trace] = {}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
        return [results[n] for n in range(len(jobs))]


def first_reaching(values: list[float], goal: float) -> float:
    """1-based position of the first value >= goal (inf: none)."""
    return next((n for n, value in enumerate(values, start=1) if value >= goal - 1e-9), math.inf)


def sampler_jobs(samplers, trials: int, seeds: int) -> list[StudyJob]:
    return [StudyJob(sampler, seed, trials=trials) for sampler in samplers for seed in range(seeds)]


def compare_samplers(traces: list[Trace], trials: int, seeds: int, samplers, default: str) -> tuple[str, dict]:
    """Trials each sampler needs to reach random search's median hypervolume at `trials`
    (`traces`: those of `sampler_jobs(samplers, trials, seeds)`, in that order)."""
    curves = {s: [t.by_trained() for t in traces[n * seeds : (n + 1) * seeds]] for n, s in enumerate(samplers)}
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
    from search.launch import DEFAULT_RUNG_MEASURE, DEFAULT_RUNG_PEERS, DEFAULT_RUNGS

    return Fidelity.for_study(DEFAULT_RUNGS, DEFAULT_RUNG_MEASURE, DEFAULT_RUNG_PEERS)


@dataclasses.dataclass(frozen=True)
class FidelityArms:
    """The multi-fidelity comparison's two arms: the default sampler without rungs until
    `trials` trained trials, then with rungs until it reaches that arm's median final
    hypervolume (the goal), or on twice its median steps."""

    sampler: str
    trials: int
    seeds: int
    fidelity: object

    def full_jobs(self) -> list[StudyJob]:
        return [StudyJob(self.sampler, seed, trials=self.trials) for seed in range(self.seeds)]

    def rung_jobs(self, full: list[Trace]) -> list[StudyJob]:
        """The rung arm's studies, whose goal comes from the rung-free arm's traces."""
        budget = int(2 * statistics.median(sum(t.steps) for t in full))
        goal = statistics.median(t.final_hypervolume for t in full)
        return [StudyJob(self.sampler, seed, step_budget=budget, fidelity=self.fidelity, goal=goal) for seed in range(self.seeds)]

    def report(self, full: list[Trace], rung: list[Trace], steps_per_trial: int) -> tuple[str, dict]:
        fidelity, seeds = self.fidelity, self.seeds
        full_steps = statistics.median(sum(t.steps) for t in full)
        goal = statistics.median(t.final_hypervolume for t in full)
        reach = [t.steps_to_reach(goal) for t in rung]
        ratio = statistics.median(reach) / full_steps
        stopped = statistics.median(t.stopped for t in rung)
        completed = statistics.median(t.completed for t in rung)
        rows = [
            ["off", f"{self.trials} trained trials", f"{full_steps:,.0f}", f"{goal:.1f}",
             _steps_text(statistics.median(t.steps_to_reach(goal) for t in full))],
            [f"on: rungs after {', '.join(map(str, fidelity.rung_steps(steps_per_trial)))} steps, eta {fidelity.reduction}, "
             f"{fidelity.measure} on {fidelity.eval_sample} examples per task, "
             + ("each trial ranked against its own method's" if fidelity.peers == "method" else "every trial ranked together"),
             f"{goal:.1f} hypervolume, or {2 * full_steps:,.0f} steps (median {completed:.0f} trials complete, {stopped:.0f} stopped at a rung)",
             f"{statistics.median(sum(t.steps) for t in rung):,.0f}", f"{statistics.median(t.final_hypervolume for t in rung):.1f}",
             _steps_text(statistics.median(reach))],
        ]  # fmt: skip
        text = table(
            ["rungs", "goal", "training steps (median)", "median hypervolume at the end", f"median steps to reach {goal:.1f}"], rows
        )
        text += (
            f"\n\nThe rung arm reached the rung-free arm's median final hypervolume with **{_ratio_text(ratio)}** of that arm's "
            f"{full_steps:,.0f} training steps (median over {seeds} seeds; seeds that reached it: "
            f"{sum(math.isfinite(r) for r in reach)} / {seeds})."
        )
        return text, {"multi_fidelity_step_ratio": ratio, "multi_fidelity_goal_hypervolume": goal}


def multi_fidelity(inputs: "SurrogateInputs", trials: int, seeds: int, sampler: str, fidelity=None, workers: int = 1) -> tuple[str, dict]:
    """The default sampler with and without rungs: training steps to reach the same hypervolume."""
    arms = FidelityArms(sampler, trials, seeds, fidelity or default_fidelity())
    full = run_studies(inputs, arms.full_jobs(), workers, "studies without rungs")
    rung = run_studies(inputs, arms.rung_jobs(full), workers, "studies with rungs")
    return arms.report(full, rung, int(inputs.measured[0]["steps"]))


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


def default_workers() -> int:
    """One study process per usable core (the studies are single-threaded)."""
    from training.worker_count import MachineResources

    return MachineResources.here().cores


def figures(data_dir: Path, measured_path: Path, trials: int, seeds: int, samplers=SAMPLERS, workers: int = 1) -> tuple[dict, dict]:
    """The figures and the texts of the tables."""
    inputs = surrogate_inputs(data_dir, measured_path)
    default = default_sampler()
    arms = FidelityArms(default, trials // 2, seeds, default_fidelity())
    full = run_studies(inputs, arms.full_jobs(), workers, "studies without rungs")
    # The rung arm's studies and the sampler comparison's in one pool: the rung studies that never
    # reach the goal run hundreds of stopped trials each, and the others keep the other cores busy.
    rung_jobs, compared = arms.rung_jobs(full), sampler_jobs(samplers, trials, seeds)
    traces = run_studies(inputs, rung_jobs + compared, workers, "studies with rungs, and sampler studies")
    samplers_text, sampler_figures = compare_samplers(traces[len(rung_jobs) :], trials, seeds, samplers, default)
    fidelity_text, fidelity_figures = arms.report(full, traces[: len(rung_jobs)], int(inputs.measured[0]["steps"]))
    result = {
        "multi_fidelity_step_ratio": fidelity_figures["multi_fidelity_step_ratio"],
        "sampler_trials_ratio": sampler_figures["sampler_trials_ratio"],
        "default_sampler": default,
        "rung_final_rank_correlation": rung_correlation(inputs.measured),
    }
    return result, {"samplers": samplers_text, "fidelity": fidelity_text, "document": inputs.document}


def run(
    data_dir: Path,
    quick: bool = False,
    measured: Path = DEFAULT_MEASURED,
    trials: int | None = None,
    seeds: int | None = None,
    workers: int | None = None,
) -> Section:
    trials = trials or (6 if quick else 48)
    seeds = seeds or (2 if quick else 15)
    result, texts = figures(data_dir, measured, trials, seeds, workers=workers or default_workers())
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
        ("--workers", {"type": positive_int, "default": None, "help": "study processes (default: one per usable core)"}),
        ("--json", {"action": "store_true", "help": "print the figures only, as one JSON object"}),
    )
    workers = args.workers or default_workers()
    try:
        if args.json:
            trials, seeds = args.trials or (6 if args.quick else 48), args.seeds or (2 if args.quick else 15)
            samplers = tuple(dict.fromkeys((default_sampler(), "random")))
            result, _ = figures(args.data_dir, args.measured, trials, seeds, samplers=samplers, workers=workers)
            # A ratio that was never reached (the arm did not get there) is null, not Infinity: JSON has no infinities.
            print(json.dumps({k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in result.items()}))
        else:
            print_section(run(args.data_dir, args.quick, args.measured, args.trials, args.seeds, workers))
    except MeasuredFileError as error:
        print(f"search_efficiency.py: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
