"""Every page on PostgreSQL, read-only: our rows and Optuna's, in a schema of their own.

Needs ``VLPETL_TEST_POSTGRES_URL`` (``.ci/run`` sets it); skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from dashboard_helpers import PAGES, STUDY, TRIALS, seed
from optuna.distributions import CategoricalDistribution
from postgres_schemas import fresh_schema

from dashboard.sources import open_optuna_study, readonly_optuna_storage

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The synthetic study, in Optuna's tables and ours, in a fresh schema."""
    with fresh_schema("vlpetl_dash", "the dashboard on PostgreSQL") as url:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=STUDY, storage=url, directions=["maximize", "minimize"])
        for record in TRIALS:
            if record.status == "complete":
                study.add_trial(optuna.trial.create_trial(
                    params={"method": record.method},
                    distributions={"method": CategoricalDistribution(["adapter", "lora"])},
                    values=[record.score, record.trainable_pct],
                ))  # fmt: skip
        seed(url, TRIALS)
        yield url


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_postgres(postgres_url: str, dash: Any, page: str) -> None:
    app = dash.open(postgres_url, page, trial="0", trials="0,1")
    assert app.selectbox(key="study").value == STUDY


def test_optuna_view_on_postgres_keeps_the_schema_and_refuses_writes(postgres_url: str) -> None:
    storage = readonly_optuna_storage(postgres_url)
    view = open_optuna_study(storage, STUDY)
    assert view is not None and len(view.trials) == 4  # found in the URL's search_path schema
    with pytest.raises(optuna.exceptions.StorageInternalError) as refused:
        storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "intruder")
    assert "read-only transaction" in str(refused.value.__cause__)
    storage.engine.dispose()
