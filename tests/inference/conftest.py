"""A trained run folder shared by the inference tests: a real 2-trial search, export and train."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_commands import cli

STUDY = "runs-e2e"


@pytest.fixture(scope="session")
def run_dir(data_dir, env, tmp_path_factory) -> Path:
    """A 2-trial study on VQA and NLVR2, its best configuration within 5% exported and trained."""
    work = tmp_path_factory.mktemp("runs-e2e")
    url = f"sqlite:///{work / 'study.db'}"
    data = ("--data-dir", str(data_dir))
    cli(
        "search.launch",
        *"--budget 5% --trials 2 --steps 30 --tasks vqa,nlvr2 --confirm-seeds 1".split(),
        "--study",
        STUDY,
        "--storage",
        url,
        *data,
    )
    cli("search.export", "--study", STUDY, "--storage", url, "--budget", "5%", "--out", str(work / "best.yaml"))
    cli("search.train", "--recipe", str(work / "best.yaml"), "--out", str(work / "run"), *data)
    return work / "run"


@pytest.fixture(scope="session")
def predictions(run_dir, data_dir) -> Path:
    out = run_dir.parent / "predictions"
    printed = cli("search.predict", "--run", str(run_dir), "--split", "test", "--out", str(out), "--data-dir", str(data_dir)).stdout
    assert f"vqa: predictions -> {out / 'vqa.json'}" in printed
    return out
