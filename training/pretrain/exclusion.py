"""The benchmark that every embedded backbone's pretraining corpus stays disjoint from.

Why one place: the corpus skips the scenes and images of that benchmark, so the exclusion decides
the corpus and with it the weights. `make demo` (training.environment) excluded the seed-0
benchmark while `python -m models.pretrain` excluded nothing, and the manifest did not say which:
the same settings built other backbones depending on the entry point (measured: the corpora
differ from pair 52 on, and the T5's perplexity before pretraining with them), and whichever ran
first won. Now every entry point excludes the seed-0 benchmark of its data directory, and the
manifests record the excluded benchmark by the digest of its ground truth, so that a backbone
built against another one is rebuilt, never mixed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

EXCLUDED_BENCHMARK_SEED = 0


def excluded_benchmark(data_dir: Path, image_size: int) -> Path:
    """The seed-0 benchmark of `data_dir` at `image_size` (generated when missing, a check when present)."""
    from tasks import generate_benchmark
    from training.environment import benchmark_dir  # here, not above: training.environment imports this package

    root = benchmark_dir(data_dir, EXCLUDED_BENCHMARK_SEED, image_size)
    return generate_benchmark(root, seed=EXCLUDED_BENCHMARK_SEED, image_size=image_size)


def exclusion_identity(root: Path) -> str:
    """What a manifest records of the excluded benchmark: the SHA-256 of its ground truth (`scenes.json`),
    the same wherever the benchmark lies."""
    return hashlib.sha256((root / "scenes.json").read_bytes()).hexdigest()
