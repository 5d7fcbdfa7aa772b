"""Trials per hour with 1 and 2 workers on one study, measured side by side in one run.

    python benchmarks/throughput.py [--steps 10] [--trials 4] [--data-dir data] [--storage URL]

Each arm runs the real command, `python -m search.launch --workers W`, on a fresh study of the
embedded default (tiny CLIP + T5, VQA, budget 5%, random sampler, no reference trial and no
warm starts, so both arms draw from the same space) until it has `--trials` trained trials.
Throughput is trained trials per hour between the first trial's start and the last one's end
in Optuna's own timestamps (the steady state: process start-up and data loading excluded); the
wall time of the whole command is printed beside it. Infeasible configurations (over budget,
never trained) are counted apart. By default each arm gets its own SQLite file; `--storage`
names a PostgreSQL database instead, where each arm gets its own study name.

Each worker process gets cores / workers torch threads (OMP_NUM_THREADS), so the arms use the
same cores without oversubscribing them; `--threads N` fixes the count per worker instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import data_folder, positive_int

import optuna

from search.progress import trained


def run_arm(workers: int, args: argparse.Namespace, storage: str, study: str) -> dict[str, float]:
    command = [
        sys.executable, "-m", "search.launch", "--tasks", "vqa", "--budget", "5%", "--trials", str(args.trials),
        "--steps", str(args.steps), "--workers", str(workers), "--sampler", "random", "--seed", "0",
        "--no-reference", "--no-warm-start", "--study", study, "--storage", storage,
        "--data-dir", str(args.data_dir),
    ]  # fmt: skip
    threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{workers} worker(s): search.launch failed:\n{result.stderr[-3000:]}")
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if trained(t)]
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    span = (last - first).total_seconds()
    return {
        "workers": workers,
        "threads": threads,
        "trained": len(done),
        "infeasible": sum(t.state == optuna.trial.TrialState.COMPLETE and not trained(t) for t in trials),
        "span_s": span,
        "wall_s": wall,
        "per_hour": 3600 * len(done) / span,
        "per_hour_wall": 3600 * len(done) / wall,
    }


def measure(args: argparse.Namespace) -> list[dict[str, float]]:
    """Both arms, one after the other, on fresh studies; the benchmark is prepared once first."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from models.backbones.presets import DEFAULT_BACKBONE
    from training.environment import prepare_environment

    prepare_environment(args.data_dir, DEFAULT_BACKBONE, ("vqa",))
    run_id = uuid.uuid4().hex[:8]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, 2):
            storage = args.storage or f"sqlite:///{folder}/throughput-{workers}.db"
            rows.append(run_arm(workers, args, storage, f"throughput-{workers}w-{run_id}"))
            print(f"{workers} worker(s) done: {rows[-1]['trained']} trained trials in {rows[-1]['wall_s']:.0f} s", file=sys.stderr)
    return rows


def render(rows: list[dict[str, float]], args: argparse.Namespace) -> str:
    lines = [
        f"steps per trial {args.steps}, trained trials per arm {args.trials}, {os.cpu_count()} CPU cores",
        "",
        "| workers | threads each | trained (infeasible) | first start -> last end | trials/hour | whole command | trials/hour incl. start-up |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['threads']} | {r['trained']} ({r['infeasible']}) | {r['span_s']:.0f} s | {r['per_hour']:.0f} "
            f"| {r['wall_s']:.0f} s | {r['per_hour_wall']:.0f} |"
        )
    lines += ["", f"speed-up with 2 workers: {rows[1]['per_hour'] / rows[0]['per_hour']:.2f}x "
              f"(whole command: {rows[1]['per_hour_wall'] / rows[0]['per_hour_wall']:.2f}x)"]  # fmt: skip
    return "\n".join(lines)


def run(data_dir: Path, quick: bool = False):
    """The section of BENCHMARKS.md (benchmarks/run_all.py): 10-step trials, 4 per arm (quick: 3 and 2)."""
    from common import Section

    args = argparse.Namespace(steps=3 if quick else 10, trials=2 if quick else 4, data_dir=data_dir, storage=None, threads=None)
    rows = measure(args)
    body = render(rows, args) + (
        "\n\nEach arm is `python -m search.launch --workers W` on a fresh SQLite study of the embedded default (VQA, "
        "budget 5%, random sampler, no reference trial, no warm starts), each worker with cores / workers torch "
        "threads; trials/hour counts trained trials between the first start and the last end (the whole command "
        "adds process start-up and data loading). Each trial also scores the whole VQA validation split."
    )
    return Section(
        title="Trials per hour with 1 and 2 workers",
        command=f"python benchmarks/throughput.py --steps {args.steps} --trials {args.trials}",
        body=body,
        figures={
            "trials_per_hour_1": rows[0]["per_hour"],
            "trials_per_hour_2": rows[1]["per_hour"],
            "speedup_2_workers": rows[1]["per_hour"] / rows[0]["per_hour"],
        },  # fmt: skip
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--steps", type=positive_int, default=10, help="training steps per trial (default 10)")
    parser.add_argument("--trials", type=positive_int, default=4, help="trained trials per arm (default 4)")
    parser.add_argument("--data-dir", type=data_folder, default=Path(os.environ.get("VLPETL_DATA_DIR", "data")))
    parser.add_argument("--storage", default=None, help="a PostgreSQL URL for both arms (default: a SQLite file each)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads per worker (default: cores / workers)")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    print(render(measure(args), args))


if __name__ == "__main__":
    main()
