"""Trial time on one torch thread (the same score on any machine) against one thread per core.

    python benchmarks/trial_threads.py [--quick] [--rounds 3] [--steps 80] [--data-dir data]

Issue #21: a trial's training and scoring now run on `training.trial_threads.TRIAL_THREADS` (1)
torch threads on CPU, so that the same configuration and seed give the same score whatever the
machine's thread count; before, they ran on torch's default, one thread per core. The two arms
train the same adapter trial of the embedded default backbone (VQA, `--steps` steps, seed 3)
with `TRIAL_THREADS` set to 1 and to the core count, interleaved round by round (the order
rotates), in this one process after a warm-up trial. The table also says whether an arm's
score and loss curve equal the one-thread arm's.
"""

from __future__ import annotations

import os

from common import Section, benchmark_arguments, interleaved, load_average, median, print_section, table, timed

BACKBONE = "tiny-clip+tiny-t5-vlp"


def run(data_dir, quick: bool = False, rounds: int = 3, steps: int = 80) -> Section:
    import training.trial_threads as threads
    from models.config import TrainingConfig, TrialConfig
    from training.environment import prepare_environment
    from training.trial import run_trial

    env = prepare_environment(data_dir, BACKBONE, ("vqa",))
    steps = 4 if quick else steps
    config = TrialConfig(
        backbone=BACKBONE,
        tasks=("vqa",),
        method="adapter",
        method_params={"reduction_factor": 16},
        training=TrainingConfig(steps=steps, seed=3, learning_rate=0.02),
    )
    cores = os.cpu_count() or 1
    counts = sorted({1, cores})
    names = {1: "1 thread (now, TRIAL_THREADS)", cores: f"{cores} threads (before: one per core)"}
    outcomes: dict[int, tuple[float, list[float]]] = {}

    def trial(count: int) -> None:
        saved, threads.TRIAL_THREADS = threads.TRIAL_THREADS, count
        try:
            outcome = run_trial(config, env, show_progress=False)
        finally:
            threads.TRIAL_THREADS = saved
        outcomes[count] = (outcome.score, outcome.losses)

    trial(1)  # warm-up: first-use costs (feature cache, allocator) out of the timed rounds
    seconds = interleaved({names[c]: (lambda c=c: timed(lambda: trial(c))) for c in counts}, rounds)
    one = median(seconds[names[1]])
    rows = [
        [
            names[c],
            f"{median(seconds[names[c]]):.1f}",
            f"{median(seconds[names[c]]) / one:.2f}",
            f"{outcomes[c][0]:.2f}",
            "yes" if outcomes[c] == outcomes[1] else "no",
        ]
        for c in counts
    ]
    body = (
        f"Adapter (reduction factor 16) on VQA, {steps} steps of batch 32, seed 3, on {BACKBONE}; median of {rounds} "
        f"interleaved round(s) after one warm-up trial; load average at the end {load_average()}.\n\n"
        + table(["torch threads in the trial", "seconds", "vs 1 thread", "score", "same score and losses as 1 thread"], rows)
    )
    ratio = median(seconds[names[cores]]) / one if cores != 1 else 1.0
    return Section(
        "Trial time: one thread against one per core",
        "python benchmarks/trial_threads.py",
        body,
        figures={"trial_seconds_1_thread": one, "trial_time_cores_over_1_thread": ratio},
    )


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--rounds", {"type": int, "default": 3, "help": "interleaved rounds per arm (default 3)"}),
        ("--steps", {"type": int, "default": 80, "help": "training steps per trial (default 80)"}),
    )
    print_section(run(args.data_dir, args.quick, args.rounds, args.steps))


if __name__ == "__main__":
    main()
