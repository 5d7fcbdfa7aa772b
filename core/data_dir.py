"""Where a machine keeps the generated benchmark, the backbones and the feature cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "default_data_dir"]

DATA_DIR_ENV = "VLPETL_DATA_DIR"


def default_data_dir() -> Path:
    """`$VLPETL_DATA_DIR`, else ./data: every command's `--data-dir` default."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))
