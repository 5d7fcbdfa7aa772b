"""One fixed torch thread count for every embedded-backbone build: the same bytes whatever the
machine's core count (the CPU kernels are pinned too: training.pretrain.pinned).

Why: torch's CPU kernels (MKL/oneDNN matmuls, convolutions, reductions) split their work across
the intra-op threads, and the split sets the order of the float additions. A build with 2 threads
and one with 1 differed in the last bits from the first step, and training amplified that into
other weights (measured on the reduced recipe: other SHA-256s for the CLIP, the T5 and the VL
variant, loss curves equal to 7 digits). Running the build's numerics on a count fixed here, not
taken from the machine, makes every reduction's order the same whatever `OMP_NUM_THREADS` or
the core count says. One thread, because it is the one count every machine can run without
oversubscription, and on the shared 2-core reference machine it was also the faster one: OpenMP
barriers stall whenever another job holds a core (benchmarks/build_threads.py measures both).

`torch.use_deterministic_algorithms` is not set: it only changes CUDA kernels and a few parallel
CPU ones (index_add, scatter with accumulation) that a single thread already runs in order, and
on CUDA it would require CUBLAS_WORKSPACE_CONFIG before CUDA starts. A CUDA build of the
VL-pretrained variant is reproducible on its own kind of GPU, not equal to a CPU build.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

BUILD_THREADS = 1


@contextlib.contextmanager
def build_threads(count: int | None = None) -> Iterator[None]:
    """Run the block on `count` torch threads (default BUILD_THREADS), restoring the caller's count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count or BUILD_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
