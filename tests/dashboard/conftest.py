"""Fixtures: a small synthetic study database, and a real study made by the search CLI.

The synthetic study (``dashboard_helpers.TRIALS``) covers edge cases cheaply; the real
one is made once per session by ``python -m search.launch`` (2 tiny trials, about a
minute on two cores; the benchmark it generates is shared through the suite's
``data_dir``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dashboard_helpers import TRIALS, Dash, RealStudy, Seeded, seed

from storage import default_storage_url, load_results, make_readonly_engine

REAL_STUDY = "dash"
REAL_BUDGET = "5%"


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    """A SQLite database holding the synthetic ``TRIALS`` study."""
    url = default_storage_url(tmp_path)
    seed(url, TRIALS)
    return Seeded(url)


@pytest.fixture
def results(seeded: Seeded) -> Iterator[pd.DataFrame]:
    """The seeded study as ``load_results`` returns it."""
    engine = make_readonly_engine(seeded.url)
    try:
        yield load_results(engine, seeded.study)
    finally:
        engine.dispose()


@pytest.fixture
def empty_url(tmp_path: Path) -> str:
    """A SQLite URL of a database with our schema but no trials."""
    url = default_storage_url(tmp_path)
    seed(url, [])
    return url


@pytest.fixture
def dash(monkeypatch: pytest.MonkeyPatch) -> Dash:
    """Runs the app with AppTest on a given storage URL."""
    return Dash(monkeypatch)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def real_study(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RealStudy:
    """A 2-trial study run by ``search.launch``, exported by ``search.export`` as YAML and JSON."""
    root = tmp_path_factory.mktemp("dashboard-real")
    path = root / "s.db"
    url = f"sqlite:///{path}"
    _cli(
        "search.launch", "--workers", "1", "--confirm-seeds", "1", "--budget", REAL_BUDGET, "--trials", "2", "--steps", "10", "--tasks", "vqa",
        "--study", REAL_STUDY, "--storage", url, "--data-dir", str(data_dir),
    )  # fmt: skip
    exported, printed = {}, ""
    for fmt in ("yaml", "json"):
        out = root / f"best.{fmt}"
        printed = _cli("search.export", "--study", REAL_STUDY, "--storage", url, "--budget", REAL_BUDGET, "--out", str(out)).stdout
        exported[fmt] = out.read_bytes()
    best = int(printed.split()[1])  # "trial 1 (adapter, 1.23% trainable, score 4.5) -> ..."
    engine = make_readonly_engine(url)
    try:
        n_complete = int((load_results(engine, REAL_STUDY)["status"] == "complete").sum())
    finally:
        engine.dispose()
    return RealStudy(url, path, REAL_STUDY, REAL_BUDGET, exported, best, n_complete)
