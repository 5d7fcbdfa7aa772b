"""Rung reliability: how well a trial's score early in training ranks it by its final score.

    python benchmarks/rung_reliability.py [--measured 24] [--steps 225] [--out benchmarks/measured/rung_trials.json]

Multi-fidelity stops a trial on its score at a rung, so that score must rank trials as their
final scores do. This measures it. `--measured` configurations are drawn from the default search
space within a 5% budget (random sampler, fixed seed) and trained for real on the default study's
tasks and backbone; at each candidate rung position (1/9, 2/9, 1/3, 1/2 and 2/3 of the steps) the
whole validation split is predicted once, so that the score on any first-N sample of it can be
computed afterwards. The table gives Spearman's rank correlation between the rung score (each
position x sample size) and the final score, and what each rung costs in training steps.

The measured trials are written to `--out` (JSON): benchmarks/search_efficiency.py replays them
as its surrogate, so that the search comparisons run in minutes without training.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import statistics
import time
from pathlib import Path

import optuna

from common import Section, benchmark_arguments, out_file, positive_int, print_section, table

BUDGET_PCT = 5.0
FRACTIONS = ((1, 9), (2, 9), (1, 3), (1, 2), (2, 3))  # candidate rung positions, of the trial's steps
SAMPLES = (32, 64, 128)  # first-N validation examples per task, besides the whole split
DEFAULT_OUT = Path(__file__).parent / "measured" / "rung_trials.json"


def rung_steps(steps: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, steps * a // b) for a, b in FRACTIONS if steps * a // b < steps}))


def measure(env, defaults, count: int, seed: int = 12345) -> list[dict]:
    """Train `count` in-budget configurations with every candidate rung; their scores by rung and sample."""
    from search.space import config_from_trial
    from training.trial import count_trial_parameters, train_trial

    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    measured: list[dict] = []
    while len(measured) < count:
        trial = study.ask()
        config = config_from_trial(trial, defaults)
        pct = count_trial_parameters(config, env).trainable_pct
        if pct > BUDGET_PCT:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        steps = config.training.steps
        whole = max(len(task.evaluation) for task in env.tasks.values())
        run_config = dataclasses.replace(
            config, training=dataclasses.replace(config.training, eval_at=rung_steps(steps), eval_sample=whole)
        )
        predictions: list[tuple[int, dict[str, dict]]] = []
        began = time.perf_counter()
        outcome = train_trial(run_config, env, show_progress=False, evaluation_predictions=predictions).outcome
        seconds = time.perf_counter() - began
        scored = len(predictions) + 1  # the rungs and the final scoring, each of the whole split
        examples = sum(len(task.evaluation) for task in env.tasks.values())
        measured.append({
            "number": len(measured),
            "params": dict(trial.params),
            "method": config.method,
            "pct": pct,
            "score": outcome.score,
            "task_scores": outcome.task_scores,
            "steps": steps,
            "rungs": {str(step): rung_scores(env, answers) for step, answers in predictions},
            "seconds_per_step": (seconds - outcome.evaluate_seconds) / steps,
            "seconds_per_example": outcome.evaluate_seconds / (scored * examples),
        })  # fmt: skip
        print(f"measured {len(measured)}/{count}: {config.method} {pct:.2f}% -> {outcome.score:.1f} ({seconds:.0f} s)", flush=True)
        study.tell(trial, [outcome.score, pct])
    return measured


def rung_scores(env, answers: dict[str, dict]) -> dict[str, float]:
    """The average task score on the first N examples of each task's answers, per N ("all": every one)."""
    scores = {}
    for sample in (*SAMPLES, None):
        per_task = [env.tasks[name].score(dict(itertools.islice(got.items(), sample))) for name, got in answers.items()]
        scores["all" if sample is None else str(sample)] = sum(per_task) / len(per_task)
    return scores


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def correlations(measured: list[dict]) -> dict[tuple[str, str], float]:
    """(rung step, sample) -> Spearman's rho between the rung score and the final score."""
    finals = [m["score"] for m in measured]
    steps = list(measured[0]["rungs"])
    samples = list(measured[0]["rungs"][steps[0]])
    return {(step, sample): spearman([m["rungs"][step][sample] for m in measured], finals) for step in steps for sample in samples}


def report(measured: list[dict], tasks: int) -> tuple[str, dict[str, float]]:
    rho = correlations(measured)
    steps = list(measured[0]["rungs"])
    samples = list(measured[0]["rungs"][steps[0]])
    step_s = statistics.median(m["seconds_per_step"] for m in measured)
    example_s = statistics.median(m["seconds_per_example"] for m in measured)
    total = measured[0]["steps"]
    whole = {sample: int(sample) if sample != "all" else None for sample in samples}
    rows = [[f"{step} ({int(step) / total:.0%})", *[f"{rho[step, s]:.2f}" for s in samples]] for step in steps]
    cost = [
        f"{s}: {tasks * (whole[s] or 0) * example_s / step_s:.0f} steps" if whole[s] else "all: see below" for s in samples
    ]  # fmt: skip
    text = (
        table(["rung step", *[f"rho, first {s} per task" if s != "all" else "rho, whole split" for s in samples]], rows)
        + f"\n\nCost of one rung in training steps (median {step_s:.3f} s per step, {1000 * example_s:.1f} ms per scored example, "
        f"{tasks} tasks): " + "; ".join(cost) + "."
    )
    return text, {f"rho_{step}_{sample}": value for (step, sample), value in rho.items()}


def run(data_dir: Path, measured_count: int, steps: int | None, out: Path) -> Section:
    from core.software import run_environment
    from models.backbones.presets import DEFAULT_SEARCH_BACKBONE as BACKBONE
    from models.config import TrainingConfig
    from search.objective import data_identity
    from search.launch import DEFAULT_TASKS
    from search.space import SpaceDefaults
    from training.environment import prepare_environment

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    steps = steps or TrainingConfig().steps
    env = prepare_environment(data_dir, BACKBONE, DEFAULT_TASKS)
    defaults = SpaceDefaults(BACKBONE, DEFAULT_TASKS, TrainingConfig(steps=steps))
    measured = measure(env, defaults, measured_count)
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "command": f"python benchmarks/rung_reliability.py --measured {measured_count}"
        + (f" --steps {steps}" if steps != TrainingConfig().steps else ""),
        "backbone": BACKBONE,
        "tasks": list(DEFAULT_TASKS),
        "steps": steps,
        "budget_pct": BUDGET_PCT,
        "environment": run_environment(str(env.device)),  # packages and git revision
        "inputs": data_identity(env),  # the backbone's and the benchmark's digests
        "trials": measured,
    }
    out.write_text(json.dumps(document, indent=1) + "\n")
    text, figures = report(measured, len(DEFAULT_TASKS))
    scores = sorted(m["score"] for m in measured)
    body = (
        f"{len(measured)} configurations drawn at random from the default space within a {BUDGET_PCT:g}% budget, each trained "
        f"{steps} steps on {', '.join(DEFAULT_TASKS)} with `{BACKBONE}`; final scores {scores[0]:.1f}-{scores[-1]:.1f} "
        f"(median {statistics.median(scores):.1f}). Spearman's rho between the score at a rung and the final score:\n\n"
        + text
        + f"\n\nThe measured trials are in `{out.name}`, which `benchmarks/search_efficiency.py` replays."
    )
    return Section(
        title="Rung reliability: early scores against final scores",
        command=f"python benchmarks/rung_reliability.py --measured {measured_count}",
        body=body,
        figures=figures,
    )


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--measured", {"type": positive_int, "default": 24, "help": "configurations to train (default 24)"}),
        ("--steps", {"type": positive_int, "default": None, "help": "training steps of each (default: the default study's, 225)"}),
        ("--out", {"type": out_file, "default": DEFAULT_OUT, "help": f"where the measured trials go (default {DEFAULT_OUT})"}),
    )
    print_section(run(args.data_dir, args.measured, args.steps, args.out))


if __name__ == "__main__":
    main()
