"""Build time of the embedded backbone family on one thread (bit-reproducible) against the machine's thread count.

    python benchmarks/build_threads.py [--quick] [--full] [--rounds 1] [--data-dir data]

Issue #21: builds now run their numerics on `training.pretrain.threads.BUILD_THREADS` (1) torch
threads, so that the same code writes the same bytes on any machine; before, they ran on torch's
default, one thread per core. The two arms build the default backbone's family (tiny CLIP, tiny
T5, and its VL-pretrained variant) into fresh folders with `BUILD_THREADS` set to 1 and to the
core count, interleaved round by round; the pretraining corpus excludes one benchmark generated
beforehand, so that only the build is timed. The reduced recipe of the tests
(VLPETL_PRETRAIN_STEPS=40, VLPETL_VLP_STEPS=20) is the default; `--full` times the default recipe
of `make demo` instead. The table also says whether an arm wrote the same bytes as the one-thread
arm (`models.embedded_digests`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from common import Section, benchmark_arguments, interleaved, median, print_section, table, timed

VARIANT = "tiny-clip+tiny-t5-vlp"
REDUCED = {"VLPETL_PRETRAIN_STEPS": "40", "VLPETL_VLP_STEPS": "20"}
QUICK = {"VLPETL_PRETRAIN_STEPS": "4", "VLPETL_VLP_STEPS": "4"}


def build_family(data_dir: Path, threads: int, exclude: Path) -> None:
    """A fresh build of the default backbone's family into `data_dir` on `threads` torch threads."""
    import training.pretrain.threads as build_threads
    from models.backbones.presets import get_preset
    from training.pretrain.vl_variant import ensure_vl_pretrained_backbone

    shutil.rmtree(data_dir / "backbones", ignore_errors=True)
    saved, build_threads.BUILD_THREADS = build_threads.BUILD_THREADS, threads
    try:
        ensure_vl_pretrained_backbone(data_dir, get_preset(VARIANT), exclude)
    finally:
        build_threads.BUILD_THREADS = saved


def run(data_dir: Path, quick: bool = False, full: bool = False, rounds: int = 1) -> Section:
    from models.embedded_digests import backbones_root, file_digests
    from training.pretrain.exclusion import excluded_benchmark

    recipe = QUICK if quick else {} if full else REDUCED
    saved_env = {name: os.environ.pop(name, None) for name in REDUCED}
    os.environ.update(recipe)
    cores = os.cpu_count() or 1
    exclude = excluded_benchmark(data_dir, 64)
    folders = {threads: data_dir / "build-threads" / f"{threads}-threads" for threads in sorted({1, cores})}
    names = {1: "1 thread (now, BUILD_THREADS)", cores: f"{cores} threads (before: one per core)"}
    try:
        seconds = interleaved({names[t]: (lambda t=t: timed(lambda: build_family(folders[t], t, exclude))) for t in folders}, rounds)
    finally:
        for name, value in saved_env.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
    digests = {t: file_digests(backbones_root(folder)) for t, folder in folders.items()}
    one = median(seconds[names[1]])
    rows = [
        [
            names[t],
            f"{median(seconds[names[t]]):.1f}",
            f"{median(seconds[names[t]]) / one:.2f}",
            "yes" if digests[t] == digests[1] else "no",
        ]
        for t in folders
    ]
    steps = ", ".join(f"{k}={v}" for k, v in recipe.items()) or "the default recipe of `make demo`"
    body = f"{VARIANT} and its base built from scratch ({steps}); median of {rounds} interleaved round(s).\n\n" + table(
        ["torch threads in the build", "seconds", "vs 1 thread", "same bytes as 1 thread"], rows
    )
    ratio = median(seconds[names[cores]]) / one if cores != 1 else 1.0
    return Section(
        "Embedded backbone build: one thread against one per core",
        "python benchmarks/build_threads.py" + (" --full" if full else ""),
        body,
        figures={"build_seconds_1_thread": one, "build_time_cores_over_1_thread": ratio},
    )


def main() -> None:
    args = benchmark_arguments(
        __doc__,
        ("--full", {"action": "store_true", "help": "time the default recipe instead of the tests' reduced one"}),
        ("--rounds", {"type": int, "default": 1, "help": "interleaved rounds per arm (default 1)"}),
    )
    print_section(run(args.data_dir, args.quick, args.full, args.rounds))


if __name__ == "__main__":
    main()
