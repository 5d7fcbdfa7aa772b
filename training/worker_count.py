"""How many local workers `search.launch` runs when `--workers` is not given: every core or GPU busy.

On CUDA, one worker per GPU in use (training.devices.local_worker_devices gives each its own).
On a CPU, a trial trains on one torch thread (training.trial_threads: the same score on any
machine), so one worker per usable core keeps every core busy; more would oversubscribe them
(BENCHMARKS.md "Trials per hour": 2 single-thread workers gave 1.92x the trials per hour of one
on 2 cores). Workers are limited by memory as well: each holds its own copy of the language
model, and the reference trial (full fine-tuning) holds the weights, their gradients and AdamW's
two moments, four copies, besides the process itself (torch, tokenizer, the task data), 1.1 GB
resident on the embedded backbone (measured with `ps` during `make demo`). The estimate reads
the backbone's weight files, so it is as large as what will be loaded, not a guess by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from training.trial_threads import TRIAL_THREADS

# The process without the model: torch, tokenizers, the task data (1.1 GB measured on the embedded backbone).
WORKER_BASE_BYTES = 1_200_000_000
# The reference trial: weights, gradients and AdamW's two moments.
TRAINING_COPIES = 4
# Leave this share of the available memory to the system and the page cache of the features.
MEMORY_SHARE = 0.8
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class MachineResources:
    """What the launcher may use: cores it may run on, and memory available now (None: unknown)."""

    cores: int
    available_bytes: int | None

    @classmethod
    def here(cls) -> "MachineResources":
        import psutil

        try:
            cores = len(os.sched_getaffinity(0))  # a container or taskset may allow fewer than the machine has
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        return cls(cores=max(1, cores), available_bytes=int(psutil.virtual_memory().available))


@dataclass(frozen=True)
class WorkerCount:
    """The default number of local workers, and why (shown in the launch log and the summary)."""

    count: int
    reason: str

    def describe(self) -> str:
        return f"{self.count} local worker{'s' if self.count != 1 else ''} ({self.reason})"


def default_workers(gpus: tuple[int, ...], resources: MachineResources, weight_bytes: int) -> WorkerCount:
    """One worker per GPU in use; on a CPU one per core, as many as the memory holds (at least one).

    Args:
        gpus: the GPUs the study trains on (empty: the CPU).
        weight_bytes: the backbone's weight files on disk (0 when not built yet: the embedded
            backbone, a few MB).
    """
    if gpus:
        return WorkerCount(len(gpus), f"one per GPU ({len(gpus)} in use)")
    by_cores = max(1, resources.cores // TRIAL_THREADS)
    cores_reason = f"one per CPU core ({resources.cores}), {TRIAL_THREADS} torch thread each"
    if resources.available_bytes is None:
        return WorkerCount(by_cores, cores_reason)
    per_worker = WORKER_BASE_BYTES + TRAINING_COPIES * weight_bytes
    by_memory = max(1, int(resources.available_bytes * MEMORY_SHARE) // per_worker)
    if by_memory >= by_cores:
        return WorkerCount(by_cores, cores_reason)
    return WorkerCount(
        by_memory,
        f"as many as memory holds: {_gib(resources.available_bytes)} available, about {_gib(per_worker)} each "
        f"({resources.cores} CPU cores)",
    )


def weight_bytes(paths: list[str | None]) -> int:
    """Total size of the weight files under `paths` (files, or folders searched for weight files)."""
    total = 0
    for text in paths:
        if not text:
            continue
        path = Path(text)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.suffix in _WEIGHT_SUFFIXES)
    return total


def _gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"
