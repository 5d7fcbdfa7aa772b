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
