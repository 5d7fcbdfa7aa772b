"""Shared datasets for the task tests: generated once per session, never edited.

Tests that damage a dataset copy it into their own tmp_path first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import generate_vqa

# Small enough to generate in well under a second on a shared 2-core machine.
TINY = {"n_train_images": 6, "n_val_images": 3, "n_test_images": 3, "questions_per_image": 2}


@pytest.fixture
def tiny_sizes() -> dict[str, int]:
    """The size arguments of :func:`tiny_vqa`, to regenerate or count against it."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_vqa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset (6/3/3 images, 2 questions each). Treat as read-only."""
    return generate_vqa(tmp_path_factory.mktemp("tiny") / "vqa_mini", seed=0, **TINY)


@pytest.fixture(scope="session")
def default_vqa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset with default sizes (a few seconds). Treat as read-only."""
    return generate_vqa(tmp_path_factory.mktemp("default") / "vqa_mini")


# A few of everything; generates in about a second.
TINY_BENCHMARK = dict(
    images={"train": 8, "val": 4, "test": 4, "test_ood": 4},
    nlvr2_pairs={"train": 6, "val": 4, "test": 4, "test_ood": 4},
    videos={"train": 3, "val": 2, "test": 2, "test_ood": 2},
    frames_per_video=3,
)


@pytest.fixture
def tiny_benchmark_sizes():
    """The sizes of :func:`tiny_benchmark`."""
    from tasks import BenchmarkSizes

    return BenchmarkSizes(**TINY_BENCHMARK)


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny mini-VL benchmark (seed 0). Treat as read-only."""
    from tasks import BenchmarkSizes, generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("bench") / "mini-vl", seed=0, sizes=BenchmarkSizes(**TINY_BENCHMARK))
