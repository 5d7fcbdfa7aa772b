"""Study data and an AppTest driver shared by the dashboard tests.

A plain module (not conftest) so tests can import it by its unique name.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.settings import STORAGE_ENV
from storage import TrialRecord, init_schema, make_engine, record_trial

STUDY = "clip-bart-demo"
TOTAL = 100_000
FINISHED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def make_trial(
    number: int,
    status: str,
    method: str,
    pct: float,
    score: float | None,
    finished_at: datetime | None = FINISHED,
    study: str = STUDY,
    **extra: object,
) -> TrialRecord:
    config = {
        "backbone": "tiny-bart",
        "tasks": ["vqa", "gqa"],
        "method": method,
        "method_params": {"rank": 8} if method == "lora" else {"reduction_factor": 8},
        "sharing": "single",
        "training": {"learning_rate": 1e-3, "steps": 10},
    }
    return TrialRecord(
        study_name=study, trial_number=number, status=status, method=method,
        config=config, trainable_params=round(pct / 100 * TOTAL), total_params=TOTAL,
        score=score, finished_at=finished_at, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


# Four complete trials, of which #2, #0 and #5 form the front.
TRIALS = [
    make_trial(0, "complete", "adapter", 4.18, 77.4, task_scores={"vqa": 65.9, "gqa": 54.5}, train_seconds=12.0),
    make_trial(1, "complete", "lora", 5.93, 76.5, task_scores={"vqa": 65.2, "gqa": 53.6}, train_seconds=15.0),
    make_trial(2, "complete", "lora", 1.14, 47.1),
    make_trial(3, "infeasible", "adapter", 40.0, None, error="over the 10% budget"),
    make_trial(4, "failed", "lora", 6.0, None, error="CUDA out of memory"),
    make_trial(5, "complete", "adapter", 100.0, 77.6),
    make_trial(6, "running", "adapter", 2.0, None, finished_at=None),
]
N_COMPLETE = 4
FRONT = (2, 0, 5)


def seed(url: str, records: list[TrialRecord]) -> None:
    """Write ``records`` through the same API the search workers use."""
    engine = make_engine(url)
    try:
        init_schema(engine)
        for record in records:
            record_trial(engine, record)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Seeded:
    """The seeded database and what the tests expect of it."""

    url: str
    study: str = STUDY
    n_complete: int = N_COMPLETE
    front: tuple[int, ...] = FRONT


@dataclass(frozen=True)
class RealStudy:
    """A study made by the real search CLI, and the recipes its export CLI wrote."""

    url: str
    path: Path
    study: str
    budget: str
    exported: dict[str, bytes]  # format -> the bytes `search.export` wrote
    best_trial: int
    n_complete: int


APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = ("views/overview.py", "views/progress.py", "views/parameters.py", "views/trials.py",
         "views/trial.py", "views/compare.py")  # fmt: skip


class Dash:
    """Drive the app with AppTest and read what it drew."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def open(self, url: str, page: str | None = None, **query: str) -> AppTest:
        """Run the app on ``url`` with ``?query``, then switch to ``page``; fail on any exception."""
        self._monkeypatch.setenv(STORAGE_ENV, url)
        app = AppTest.from_file(APP, default_timeout=90)
        app.query_params.update(query)
        app.run()
        if page is not None:
            app.switch_page(page).run()
        self.check(app)
        return app

    def capture_downloads(self) -> dict[str, bytes]:
        """Record the bytes every download button serves, by file name, from now on.

        AppTest keeps no handle on the media files it serves, so the in-memory media store
        is wrapped; what it stores is exactly what a browser would download.
        """
        from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

        served: dict[str, bytes] = {}
        original = MemoryMediaFileStorage.load_and_get_id

        def load_and_get_id(store: Any, data: Any, mimetype: str, kind: Any, filename: str | None = None) -> str:
            if filename is not None and isinstance(data, bytes):
                served[filename] = data
            return original(store, data, mimetype, kind, filename)

        self._monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
        return served

    @staticmethod
    def check(app: AppTest) -> None:
        assert not app.exception, [e.value for e in app.exception]

    @staticmethod
    def figure(app: AppTest, key: str) -> dict[str, Any]:
        """The Plotly spec of the chart drawn with ``key``."""
        specs = [json.loads(c.proto.spec) for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
        assert len(specs) == 1, f"{len(specs)} charts keyed {key!r}"
        return specs[0]

    @staticmethod
    def table(app: AppTest, *columns: str) -> Any:
        """The one DataFrame drawn that has all of ``columns`` (read-only tables carry no key)."""
        frames = [d.value for d in app.dataframe if set(columns) <= set(d.value.columns)]
        assert len(frames) == 1, f"{len(frames)} tables with columns {columns}"
        return frames[0]

    @staticmethod
    def values(array: Any) -> list[Any]:
        """Plotly >= 6 may send numeric arrays as base64 ``{"dtype", "bdata"}`` dicts."""
        if isinstance(array, dict):
            return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
        return list(array)

    @staticmethod
    def texts(elements: Any) -> str:
        return "\n".join(str(e.value) for e in elements)

    @staticmethod
    def markers(figure: dict[str, Any]) -> int:
        """How many points the figure's marker traces draw."""
        return sum(len(Dash.values(t["x"])) for t in figure["data"] if "markers" in t.get("mode", ""))

    @staticmethod
    def links(app: AppTest) -> list[tuple[str, str]]:
        """(page url path, query string) of every page link drawn."""
        return [(p.proto.page, p.proto.query_string) for p in app.get("page_link")]
