"""Rung reliability: how well a trial's measures early in training rank it by its final score.

    python benchmarks/rung_reliability.py [--measured 24] [--steps 225] [--jobs CORES] [--out benchmarks/measured/rung_trials_pinned.json]
    python benchmarks/rung_reliability.py --replay benchmarks/measured/rung_trials_pinned.json

Multi-fidelity stops a trial on a measure taken at a rung, so that measure must rank trials as
their final scores do. This measures it. `--measured` configurations are drawn from the default
search space within a 5% budget (random sampler, fixed seed) and trained for real on the default
study's tasks and backbone, `--jobs` at a time (each on one thread, as search trials run). At each
candidate rung position (1/9, 2/9, 1/3, 1/2 and 2/3 of the steps) the first 128 validation
examples of each task are answered and their held-out (teacher-forced) loss is taken, so that
either measure on any first-N sample can be computed afterwards; the training loss, which the
loop logs every 20 steps, costs nothing. The table gives Spearman's rank correlation between each
measure (position x sample size) and the final score, and what scoring a rung costs in training steps.

The measured trials are written to `--out` (JSON): benchmarks/search_efficiency.py replays them
as its surrogate, so that the search comparisons run in minutes without training.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import os
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import optuna
from tqdm.auto import tqdm

from common import Section, benchmark_arguments, out_file, positive_int, print_section, table

BUDGET_PCT = 5.0
FRACTIONS = ((1, 9), (2, 9), (1, 3), (1, 2), (2, 3))  # candidate rung positions, of the trial's steps
SAMPLES = (32, 64, 128)  # first-N validation examples per task (64 ranked as well as the whole split, 2026-12-06)
LOSS_WINDOW = 20  # steps per point of a trial's training-loss curve (training.loop)
DEFAULT_OUT = Path(__file__).parent / "measured" / "rung_trials_pinned.json"


def rung_steps(steps: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, steps * a // b) for a, b in FRACTIONS if steps * a // b < steps}))


def draw(defaults, env, count: int, seed: int = 12345) -> list[dict]:
    """`count` configurations drawn at random from the default space within the budget (their Optuna parameters)."""
    from search.space import config_from_trial
    from training.trial import count_trial_parameters

    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    drawn: list[dict] = []
    while len(drawn) < count:
        trial = study.ask()
        pct = count_trial_parameters(config_from_trial(trial, defaults), env).trainable_pct
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # the random sampler reads no history
        if pct <= BUDGET_PCT:
            drawn.append(dict(trial.params))
    return drawn


_WORKER: dict = {}  # each process's environment and space defaults (measure_one runs in a pool)


def _start_worker(data_dir: Path, steps: int) -> None:
    from models.backbones.presets import DEFAULT_SEARCH_BACKBONE as BACKBONE
    from models.config import TrainingConfig
    from search.launch import DEFAULT_TASKS
    from search.space import SpaceDefaults
    from training.environment import prepare_environment

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _WORKER["env"] = prepare_environment(data_dir, BACKBONE, DEFAULT_TASKS)
    _WORKER["defaults"] = SpaceDefaults(BACKBONE, DEFAULT_TASKS, TrainingConfig(steps=steps))


def measure_one(number: int, params: dict) -> dict:
    """Train one configuration with every candidate rung: its scores and held-out losses by rung and sample."""
    from search.space import config_from_trial
    from training.trial import count_trial_parameters, train_trial

    env, defaults = _WORKER["env"], _WORKER["defaults"]
    config = config_from_trial(optuna.trial.FixedTrial(params), defaults)
    pct = count_trial_parameters(config, env).trainable_pct
    steps = config.training.steps
    rung_training = dataclasses.replace(config.training, eval_at=rung_steps(steps), eval_sample=max(SAMPLES))
    run_config = dataclasses.replace(config, training=rung_training)
    predictions: list[tuple[int, dict[str, dict]]] = []
    losses: list[tuple[int, dict[str, dict]]] = []
    began = time.perf_counter()
    outcome = train_trial(run_config, env, show_progress=False, evaluation_predictions=predictions, evaluation_losses=losses).outcome
    seconds = time.perf_counter() - began
    task_scores = {str(step): rung_task_scores(env, answers) for step, answers in predictions}
    examples = len(predictions) * max(SAMPLES) * len(env.tasks) + sum(len(task.evaluation) for task in env.tasks.values())
    return {
        "number": number,
        "params": params,
        "method": config.method,
        "pct": pct,
        "score": outcome.score,
        "task_scores": outcome.task_scores,
        "steps": steps,
        "rungs": {step: rung_scores(by_sample) for step, by_sample in task_scores.items()},
        "rung_losses": {str(step): rung_losses(per_task) for step, per_task in losses},
        # each task's own, so that measures which weigh or rank the tasks apart can be replayed
        "rung_task_losses": {str(step): rung_task_losses(per_task) for step, per_task in losses},
        "rung_task_scores": task_scores,
        "loss_curve": outcome.losses,  # training loss, one mean per LOSS_WINDOW steps
        "seconds": seconds,
        "seconds_per_step": (seconds - outcome.evaluate_seconds) / steps,
        "seconds_per_example": outcome.evaluate_seconds / examples,  # the rungs' and the final scoring's
    }  # fmt: skip


def measure(data_dir: Path, steps: int, count: int, jobs: int, on_measured: Callable[[list[dict]], None]) -> list[dict]:
    """Train `count` in-budget configurations, `jobs` at a time (each trial runs on one thread);
    `on_measured` gets the trials measured so far after each one (to save them as they come)."""
    _start_worker(data_dir, steps)
    drawn = draw(_WORKER["defaults"], _WORKER["env"], count)
    measured: list[dict] = []
    with concurrent.futures.ProcessPoolExecutor(jobs, initializer=_start_worker, initargs=(data_dir, steps)) as pool:
        futures = [pool.submit(measure_one, n, params) for n, params in enumerate(drawn)]
        for future in tqdm(concurrent.futures.as_completed(futures), total=count, desc="measured", unit="trial"):
            m = future.result()
            measured.append(m)
            measured.sort(key=lambda m: m["number"])
            on_measured(measured)
            tqdm.write(f"trial {m['number']}: {m['method']} {m['pct']:.2f}% -> {m['score']:.1f} ({m['seconds']:.0f} s)")
    return measured


def rung_scores(task_scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """The average task score on the first N examples of each task's answers, per N."""
    return {sample: statistics.fmean(by_task.values()) for sample, by_task in task_scores.items()}


def rung_task_scores(env, answers: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Each task's score on its first N answers, per N."""
    return {
        str(sample): {name: env.tasks[name].score(dict(itertools.islice(got.items(), sample))) for name, got in answers.items()}
        for sample in SAMPLES
    }


def rung_task_losses(per_task: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Each task's mean held-out loss on its first N examples, per N."""
    return {
        str(sample): {name: statistics.fmean(itertools.islice(by_key.values(), sample)) for name, by_key in per_task.items()}
        for sample in SAMPLES
    }


def rung_losses(per_task: dict[str, dict]) -> dict[str, float]:
    """The average over tasks of the mean held-out loss on each task's first N examples, per N."""
    return {sample: statistics.fmean(by_task.values()) for sample, by_task in rung_task_losses(per_task).items()}


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def training_loss_at(measured: dict, step: int) -> float:
    """The training loss of the last LOSS_WINDOW steps that end at or before `step` (free: the loop logs it)."""
    points = step // LOSS_WINDOW
    if points < 1:
        raise ValueError(f"no training-loss point ends by step {step} (one per {LOSS_WINDOW} steps)")
    return float(measured["loss_curve"][points - 1])


def correlations(measured: list[dict]) -> dict[tuple[str, str, str], float]:
    """(measure, rung step, sample) -> Spearman's rho between the rung's measure and the final score.

    Measures: "score" (the official metric on generated answers), "loss" (minus the held-out
    loss averaged over tasks), "task_rank" (minus the trial's rank by held-out loss on each task,
    averaged over tasks) and "train" (minus the training loss before the rung; sample "-"):
    larger is better in each.
    """
    finals = [m["score"] for m in measured]
    steps = list(measured[0]["rungs"])
    samples = list(measured[0]["rungs"][steps[0]])
    rho = {}
    for step in steps:
        for sample in samples:
            rho["score", step, sample] = spearman([m["rungs"][step][sample] for m in measured], finals)
            if all("rung_losses" in m for m in measured):
                rho["loss", step, sample] = spearman([-m["rung_losses"][step][sample] for m in measured], finals)
            if all("rung_task_losses" in m for m in measured):
                rho["task_rank", step, sample] = spearman([-r for r in mean_task_ranks(measured, step, sample)], finals)
        if all("loss_curve" in m for m in measured) and int(step) >= LOSS_WINDOW:
            rho["train", step, "-"] = spearman([-training_loss_at(m, int(step)) for m in measured], finals)
    return rho


def mean_task_ranks(measured: list[dict], step: str, sample: str) -> list[float]:
    """Each trial's rank by held-out loss on each task (1: the lowest), averaged over the tasks.

    Unlike the mean loss it weighs every task alike, whatever the scale of its loss: on the
    default tasks NLVR2's loss is the largest and (LST aside) varies the most across trials, while its score does not move.
    """
    from scipy.stats import rankdata

    tasks = list(measured[0]["rung_task_losses"][step][sample])
    ranks = [rankdata([m["rung_task_losses"][step][sample][task] for m in measured]) for task in tasks]
    return [statistics.fmean(float(r[i]) for r in ranks) for i in range(len(measured))]


def task_breakdown(measured: list[dict]) -> str:
    """What the final score's spread is made of, task by task, and how each task's loss at the first rung ranks it."""
    finals = [m["score"] for m in measured]
    first = min(measured[0].get("rung_task_losses", {}) or measured[0]["rungs"], key=int)
    sample = min(measured[0]["rungs"][first], key=int)
    parts = []
    for task in measured[0]["task_scores"]:
        scores = [m["task_scores"][task] for m in measured]
        part = f"{task} standard deviation {statistics.pstdev(scores):.1f} (rho with the final score {spearman(scores, finals):.2f}"
        if all("rung_task_losses" in m for m in measured):
            losses = [-m["rung_task_losses"][first][sample][task] for m in measured]
            part += f"; its held-out loss after {first} steps, first {sample}: {spearman(losses, finals):.2f}"
        parts.append(part + ")")
    return "The final score is the mean of the tasks' scores. Across these trials: " + "; ".join(parts) + "."


MEASURES = {
    "score": "score on generated answers",
    "loss": "held-out loss",
    "task_rank": "held-out loss ranked per task",
    "train": "training loss, last 20 steps",
}


def report(measured: list[dict], tasks: int) -> tuple[str, dict[str, float]]:
    rho = correlations(measured)
    steps = list(measured[0]["rungs"])
    samples = list(measured[0]["rungs"][steps[0]])
    step_s = statistics.median(m["seconds_per_step"] for m in measured)
    example_s = statistics.median(m["seconds_per_example"] for m in measured)
    total = measured[0]["steps"]
    columns = [(measure, sample) for measure in MEASURES for sample in (samples if measure != "train" else ["-"])]
    columns = [c for c in columns if any((c[0], step, c[1]) in rho for step in steps)]
    header = [
        "rung step",
        *[f"{MEASURES[m]}" + (f", first {s}" if s not in ("all", "-") else ", whole split" if s == "all" else "") for m, s in columns],
    ]
    rows = [
        [f"{step} ({int(step) / total:.0%})", *[f"{rho[m, step, s]:.2f}" if (m, step, s) in rho else "" for m, s in columns]]
        for step in steps
    ]
    whole = {sample: int(sample) if sample != "all" else None for sample in samples}
    cost = [f"{s}: {tasks * (whole[s] or 0) * example_s / step_s:.1f} steps" for s in samples if whole[s]]
    text = (
        table(header, rows) + f"\n\nCost of scoring one rung's generated answers, in training steps (median {step_s:.3f} s per step, "
        f"{1000 * example_s:.1f} ms per scored example, {tasks} tasks; per task sample): "
        + "; ".join(cost)
        + ".\n\n"
        + task_breakdown(measured)
    )
    return text, {f"rho_{m}_{step}_{sample}": value for (m, step, sample), value in rho.items()}


def run(data_dir: Path, measured_count: int, steps: int | None, out: Path, jobs: int) -> Section:
    from core.software import run_environment
    from models.backbones.presets import DEFAULT_SEARCH_BACKBONE as BACKBONE
    from models.config import TrainingConfig
    from search.objective import data_identity
    from search.launch import DEFAULT_TASKS

    steps = steps or TrainingConfig().steps
    command = f"python benchmarks/rung_reliability.py --measured {measured_count}" + (
        f" --steps {steps}" if steps != TrainingConfig().steps else ""
    )
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(measured: list[dict]) -> None:  # after every trial: a long run stopped early keeps what it measured
        env = _WORKER["env"]
        document = {
            "command": command,
            "backbone": BACKBONE,
            "tasks": list(DEFAULT_TASKS),
            "steps": steps,
            "budget_pct": BUDGET_PCT,
            "environment": run_environment(str(env.device)),  # packages and git revision
            "inputs": data_identity(env),  # the backbone's and the benchmark's digests
            "trials": measured,
        }
        partial = out.with_name(out.name + ".partial")
        partial.write_text(json.dumps(document, indent=1) + "\n")
        partial.replace(out)

    measured = measure(data_dir, steps, measured_count, jobs, save)
    return section(command, measured, {"backbone": BACKBONE, "tasks": list(DEFAULT_TASKS), "steps": steps}, out)


def replay(path: Path) -> Section:
    """The report on trials measured before (`--replay`): no training."""
    from search_efficiency import load_measured  # only here: it turns tqdm's bars off when imported

    document = load_measured(path, "--replay")
    return section(f"python benchmarks/rung_reliability.py --replay {path}", document["trials"], document, path)


def section(command: str, measured: list[dict], document: dict, out: Path) -> Section:
    text, figures = report(measured, len(document["tasks"]))
    scores = sorted(m["score"] for m in measured)
    body = (
        f"{len(measured)} configurations drawn at random from the default space within a {BUDGET_PCT:g}% budget, each trained "
        f"{document['steps']} steps on {', '.join(document['tasks'])} with `{document['backbone']}`; final scores "
        f"{scores[0]:.1f}-{scores[-1]:.1f} (median {statistics.median(scores):.1f}). Spearman's rho between a measure at a rung "
        "and the final score (losses and ranks negated, so that larger is better in every column):\n\n"
        + text
        + f"\n\nThe measured trials are in `{out.name}`, which `benchmarks/search_efficiency.py` replays."
    )
    return Section(title="Rung reliability: early measures against final scores", command=command, body=body, figures=figures)


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--measured", {"type": positive_int, "default": 24, "help": "configurations to train (default 24)"}),
        ("--steps", {"type": positive_int, "default": None, "help": "training steps of each (default: the default study's, 225)"}),
        ("--out", {"type": out_file, "default": DEFAULT_OUT, "help": f"where the measured trials go (default {DEFAULT_OUT})"}),
        ("--replay", {"type": Path, "default": None, "help": "report on a file this wrote before, without training (FILE)"}),
        (
            "--jobs",
            {"type": positive_int, "default": os.cpu_count() or 1, "help": "trials trained at once, one thread each (default: the cores)"},
        ),
    )
    if args.replay is None:
        print_section(run(args.data_dir, args.measured, args.steps, args.out, args.jobs))
        return
    from search_efficiency import MeasuredFileError

    try:
        print_section(replay(args.replay))
    except MeasuredFileError as error:
        print(f"rung_reliability.py: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
