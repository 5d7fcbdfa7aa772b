"""Optuna's side of a study, read-only: importances, user-attribute curves, no writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from dashboard_helpers import STUDY, make_trial, seed
from optuna.distributions import CategoricalDistribution, FloatDistribution
from sqlalchemy.exc import OperationalError

from dashboard.sources import (
    ImportanceUnavailable,
    fingerprint,
    open_optuna_study,
    readonly_optuna_storage,
    score_importances,
)
from storage import default_storage_url, make_readonly_engine

DISTRIBUTIONS = {
    "method": CategoricalDistribution(["adapter", "lora"]),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
}


@pytest.fixture
def optuna_url(tmp_path: Path) -> str:
    """Eight trials in Optuna's tables and ours; #7 is over budget (score 0 to Optuna)."""
    url = default_storage_url(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=STUDY, storage=url, directions=["maximize", "minimize"])
    records = []
    for n in range(8):
        method, lr = ("adapter", "lora")[n % 2], 1e-4 * 2**n
        score, pct = (0.0, 40.0) if n == 7 else (50.0 + 10 * (n % 2) + n, 2.0 + n)
        attrs = {"loss_curve": [3.0, 2.0, 1.5]} if n == 1 else {}
        study.add_trial(optuna.trial.create_trial(
            params={"method": method, "lr": lr}, distributions=DISTRIBUTIONS, values=[score, pct], user_attrs=attrs,
        ))  # fmt: skip
        status = "infeasible" if n == 7 else "complete"
        records.append(make_trial(n, status, method, pct, None if n == 7 else score))
    seed(url, records)
    return url


def test_importances_use_only_feasible_trials(optuna_url: str) -> None:
    view = open_optuna_study(readonly_optuna_storage(optuna_url), STUDY)
    assert view is not None and len(view.trials) == 8
    importances = score_importances(view, feasible=set(range(7)))
    assert set(importances) == {"method", "lr"}
    assert sum(importances.values()) == pytest.approx(1.0)
    with pytest.raises(ImportanceUnavailable, match="at least 3 completed, within-budget trials; this study has 2"):
        score_importances(view, feasible={0, 1})
    assert open_optuna_study(readonly_optuna_storage(optuna_url), "no-such-study") is None


def test_optuna_storage_is_read_only(optuna_url: str, tmp_path: Path) -> None:
    # The database file itself; SQLite's WAL readers may create empty -wal/-shm files.
    before = (tmp_path / "studies.db").read_bytes()
    storage = readonly_optuna_storage(optuna_url)
    with pytest.raises(optuna.exceptions.StorageInternalError) as refused:
        storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "intruder")
    assert isinstance(refused.value.__cause__, OperationalError)
    assert "readonly database" in str(refused.value.__cause__)
    storage.engine.dispose()
    assert (tmp_path / "studies.db").read_bytes() == before


def test_no_optuna_tables_means_no_optuna_view(seeded: Any) -> None:
    assert readonly_optuna_storage(seeded.url) is None
    engine = make_readonly_engine(seeded.url)
    try:
        count, running, _, finished = fingerprint(engine, seeded.study)
        assert (count, running) == (7, 1) and finished is not None
        assert fingerprint(engine, "other")[:2] == (0, 0)
    finally:
        engine.dispose()


def test_parameters_page_draws_importances(optuna_url: str, dash: Any) -> None:
    app = dash.open(optuna_url, "views/parameters.py")
    bars = dash.figure(app, "importance")["data"][0]
    assert sorted(bars["y"]) == ["lr", "method"]
    assert "get_param_importances" in dash.texts(app.caption)


def test_trial_page_draws_the_loss_curve_from_user_attrs(optuna_url: str, dash: Any) -> None:
    app = dash.open(optuna_url, "views/trial.py", trial="1")
    curve = dash.figure(app, "curve")["data"][0]
    assert dash.values(curve["y"]) == [3.0, 2.0, 1.5]
    assert "Optuna user attribute `loss_curve`" in dash.texts(app.caption)
    app = dash.open(optuna_url, "views/compare.py", trials="0,1")
    assert [t["name"] for t in dash.figure(app, "compare_curves")["data"]] == ["#1 loss"]
