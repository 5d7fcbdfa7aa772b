"""Multi-fidelity on the surrogate under other promotion rules: does the rule limit the saving?

    python benchmarks/promotion_rules.py [--measured FILE] [--seeds 15] [--workers N] [--quick]

search_efficiency.py measures the default rule (search.fidelity: rungs after 1/9 and 1/3 of the
steps, eta 3, a 0.02-nat margin, a trial stopped when a finished one matches it, and each trial
ranked against its own method's). This runs the same comparison, the default sampler with and
without rungs on the surrogate of measured trials, under variants of that rule the measured
trials can replay (their held-out losses were measured after 25, 50, 75, 112 and 150 of 225
steps): successive halving alone (no stop for a trial a finished one matches), at eta 3 and at
eta 2 (rungs at 1/9 and 2/9), and every trial ranked together (the rule before), with and
without the margin. Each variant prints the
training steps its rung arm needs to reach the rung-free arm's median final hypervolume, over
the rung-free arm's steps (search_efficiency's `multi_fidelity_step_ratio`).
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: hundreds of surrogate studies, no bar each

import dataclasses
import sys
from pathlib import Path

from common import benchmark_arguments, positive_int, table
from search_efficiency import DEFAULT_MEASURED, MeasuredFileError, default_sampler, default_workers, multi_fidelity, surrogate_inputs


def variants() -> dict[str, object]:
    from search.fidelity import Fidelity
    from search.launch import DEFAULT_RUNG_PEERS

    default = Fidelity.for_study(2, "loss", DEFAULT_RUNG_PEERS)
    asha = dataclasses.replace(default, match_finished=False)
    every = dataclasses.replace(default, peers="all")
    return {
        "default: within each method, eta 3 after 25 and 75 steps, margin 0.02 nats, matched by a finished trial": default,
        "within each method, successive halving alone": asha,
        "within each method, successive halving alone, eta 2 after 25 and 50 steps": dataclasses.replace(asha, reduction=2, last=2 / 9),
        "every trial together (the rule before), matched by a finished trial": every,
        "every trial together, successive halving alone": dataclasses.replace(every, match_finished=False),
        "every trial together, successive halving alone, no margin": dataclasses.replace(every, match_finished=False, margin=0.0),
    }


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--measured", {"type": Path, "default": DEFAULT_MEASURED, "help": f"measured trials to replay (default {DEFAULT_MEASURED})"}),
        ("--seeds", {"type": positive_int, "default": None, "help": "seeds per arm (default 15)"}),
        ("--workers", {"type": positive_int, "default": None, "help": "study processes (default: one per usable core)"}),
    )
    seeds = args.seeds or (2 if args.quick else 15)
    trials = 6 if args.quick else 24
    try:
        inputs = surrogate_inputs(args.data_dir, args.measured)
    except MeasuredFileError as error:
        print(f"promotion_rules.py: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    sampler = default_sampler()
    rows = []
    for name, fidelity in variants().items():
        _, figures = multi_fidelity(inputs, trials, seeds, sampler, fidelity, workers=args.workers or default_workers())
        ratio = figures["multi_fidelity_step_ratio"]
        rows.append([name, f"{ratio:.3f}"])
        print(f"{name}: {ratio:.3f}", file=sys.stderr, flush=True)
    print(f"{sampler}, {trials} trained trials without rungs against twice their steps with them, {seeds} seeds\n")
    print(table(["promotion rule", "steps to reach the rung-free median hypervolume / rung-free steps"], rows))


if __name__ == "__main__":
    main()
