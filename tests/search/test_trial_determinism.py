"""A trial is deterministic given its inputs: the same score on SQLite and PostgreSQL, with 1 or 2 threads.

One real search trial, launched twice as a user would (`python -m search.launch`): on SQLite in
a process of 1 torch thread, on PostgreSQL in a process of 2, with the same seed, space and
data. Before trials ran on a fixed thread count (training.trial_threads), the second run's
weights and loss curve differed from the first's from the 7th digit on. One test covers both
dimensions, and stays short: one task, no reference, no warm start, no rungs, 80 steps (enough
for a score above zero, so that equal scores mean something).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_schemas import fresh_schema

from storage import default_storage_url, load_results, make_engine

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STUDY = "determinism"
# One configuration: the sampler has nothing to choose, so both studies train the same trial.
SPACE = "methods:\n  adapter:\n    reduction_factor: [16]\n    learning_rate: [0.02]\noptimizer: [adamw]\n"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_schema("vlpetl_determinism", "the SQLite-against-PostgreSQL determinism test") as url:
        yield url


def launch_one_trial(url: str, threads: int, data_dir: Path, space: Path) -> None:
    """A 1-trial study in a fresh process whose torch starts with `threads` intra-op threads."""
    argv = [sys.executable, "-m", "search.launch", "--workers", "1", "--budget", "50%", "--tasks", "vqa", "--trials", "1", "--steps", "80"]
    argv += ["--rungs", "0", "--no-reference", "--no-warm-start", "--confirm-seeds", "1", "--seed", "3", "--space", str(space)]
    argv += ["--study", STUDY, "--storage", url, "--data-dir", str(data_dir)]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]


def the_trial(url: str):
    engine = make_engine(url)
    try:
        rows = load_results(engine, STUDY)
    finally:
        engine.dispose()
    assert list(rows["status"]) == ["complete"], rows[["status", "error"]]
    return rows.iloc[0]


def test_the_same_trial_scores_the_same_on_sqlite_with_1_thread_and_postgresql_with_2(
    data_dir: Path, env, postgres_url: str, tmp_path: Path
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    sqlite_url = default_storage_url(tmp_path / "sqlite")
    launch_one_trial(sqlite_url, 1, data_dir, space)
    launch_one_trial(postgres_url, 2, data_dir, space)
    on_sqlite, on_postgres = the_trial(sqlite_url), the_trial(postgres_url)

    # The two processes really ran on different thread counts, and trained the same configuration.
    assert on_sqlite["environment"]["torch_threads"] == 1 and on_postgres["environment"]["torch_threads"] == 2
    assert on_sqlite["config"] == on_postgres["config"] and on_sqlite["config"]["training"]["seed"] == 3
    assert on_sqlite["environment"]["inputs"] == on_postgres["environment"]["inputs"]

    assert on_sqlite["score"] > 0
    assert on_sqlite["score"] == on_postgres["score"]  # exactly: not approx
    assert on_sqlite["task_scores"] == on_postgres["task_scores"]
    # The loss curve (every 20 steps) is where a different summation order showed first.
    assert on_sqlite["learning_curve"] == on_postgres["learning_curve"]
    assert len(on_sqlite["learning_curve"]["loss"]) >= 2
