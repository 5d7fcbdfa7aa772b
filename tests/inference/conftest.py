"""A trained run folder shared by the inference tests: a real 2-trial search, export and train."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_commands import cli


@pytest.fixture(scope="session")
def run_dir(shared_run) -> Path:
    """The run folder of the session's shared 2-trial study on VQA and NLVR2 (tests/conftest.py):
    its best configuration within 5%, exported and trained."""
    return shared_run.run_dir


@pytest.fixture(scope="session")
def predictions(run_dir, data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "predictions"  # not beside the run: its folder is shared with the other test processes
    printed = cli("search.predict", "--run", str(run_dir), "--split", "test", "--out", str(out), "--data-dir", str(data_dir)).stdout
    assert f"vqa: predictions -> {out / 'vqa.json'}" in printed
    return out
