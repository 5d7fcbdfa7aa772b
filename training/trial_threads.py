"""One fixed torch thread count for a trial's CPU numerics: the same score whatever the machine's threads.

Why: as in the backbone build (training.pretrain.threads), torch's CPU kernels split matmuls
and reductions across the intra-op threads, and the split sets the order of the float
additions. Measured on the embedded default (VQA, 80 steps, issue #21): the same configuration
and seed trained on 1 and on 2 threads ended with other weights (an adapter, full fine-tuning,
and a LoRA trial that trains CLIP's last block alike), and final losses apart by 2e-6 to 2e-2
(the gap grows with the steps), and an adapter of reduction factor 16 scored 51.07 on one
thread and 47.60 on two (benchmarks/trial_threads.py). So a trial's training and scoring run on
TRIAL_THREADS whatever `search.worker --threads`, `OMP_NUM_THREADS` or the core count says.

One thread, not one per core: it is the one count every machine can run, and on the shared
2-core reference machine a one-thread trial was also the faster, 7.3x under a load average of
5-6 (BENCHMARKS.md appendix): OpenMP barriers stall whenever another job holds a core. The cores a
single trial leaves idle go to more workers (`search.launch --workers`), which BENCHMARKS.md
("Trials per hour") measured at 1.8x the trials per hour of one worker on every core.

Only CPU devices are pinned: on CUDA the numerics run in GPU kernels whose order does not
depend on the CPU thread count, and the host's part (batching, tokenising) is exact.
`torch.use_deterministic_algorithms` is not set, for the reasons training.pretrain.threads gives.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from training.pretrain.threads import build_threads

TRIAL_THREADS = 1


@contextlib.contextmanager
def trial_threads(device: torch.device) -> Iterator[None]:
    """Run the block on TRIAL_THREADS torch threads when `device` is the CPU; restore the caller's count after."""
    if device.type != "cpu":
        yield
        return
    with build_threads(TRIAL_THREADS):
        yield
