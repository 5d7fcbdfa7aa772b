"""Fixtures shared across the suite: one prepared benchmark + embedded backbone per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# A quicker embedded-backbone pretraining for the suite (subprocesses inherit it); the full
# recipe runs in `make demo` and `python -m models.pretrain`.
os.environ.setdefault("VLPETL_PRETRAIN_STEPS", "40")
# Likewise a short VL pretraining, for the search's default backbone (tiny-clip+tiny-t5-vlp).
os.environ.setdefault("VLPETL_VLP_STEPS", "20")

from models.backbones.presets import DEFAULT_BACKBONE


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the generated benchmark, the embedded backbone and features."""
    return tmp_path_factory.mktemp("vlpetl-data")


@pytest.fixture(scope="session")
def env(data_dir: Path):
    from training.environment import prepare_environment

    return prepare_environment(data_dir, DEFAULT_BACKBONE, ("vqa",))
