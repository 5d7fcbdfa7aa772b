"""Study data and an AppTest driver shared by the dashboard tests.

A plain module (not conftest) so tests can import it by its unique name.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.settings import STORAGE_ENV
from search.study_settings import INPUTS_ATTR, SETTINGS_ATTR, StudySettings
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


# A study on the user's own data, as search.launch stores it (tasks.data_spec's layout).
USER_DATA = {
    "tasks": {
        "shapes": {"format": "jsonl", "train": "shapes/train.jsonl", "val": "shapes/val.jsonl"},
        "vqa": {"format": "vqa", "root": "/datasets/vqa", "images": "/datasets/coco/images", "search_examples": 2000},
    },
    "source": "/home/someone/my-data/data.yaml",
    "base": "/home/someone/my-data",
}
DATA_FILES = {"shapes/train.jsonl": "a" * 32, "shapes/val.jsonl": "b" * 32, "/datasets/vqa/karpathy_train.json": "c" * 32}
WEIGHTS = {
    "clip_weights_sha256": "1c1c" * 16,
    "language_model_weights_sha256": "2d2d" * 16,
    "vl_projection_sha256": "3e3e" * 16,
}


def launch_settings(**changes: Any) -> dict[str, Any]:
    """The ``vlpetl_settings`` attribute ``search.launch --budget 5% --data data.yaml`` stores."""
    settings = StudySettings(
        budget="5%", backbone="tiny-clip+tiny-t5-vlp", tasks=("shapes", "vqa"), target_trials=24, seed=0,
        steps=225, sampler="tpe", space_yaml="methods:\n  lora:\n    rank: [4, 8]\n",
        space_source="/home/someone/vlpetl/search/spaces/default.yaml", count_clip=False,
        objectives=("score", "trainable_pct"), data=USER_DATA,
    )  # fmt: skip
    return {**settings.to_attr(), **changes}


def trial_inputs(data_files: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A row's ``environment`` as search.objective records it (only what the dashboard reads)."""
    inputs = {"backbone": "tiny-clip+tiny-t5-vlp", "random_init": False, **WEIGHTS, "data": USER_DATA,
              "data_files": data_files, **changes}  # fmt: skip
    return {"python": "3.11", "git_revision": "0123456789abcdef0123", "inputs": inputs}


def seed_launched(url: str, study: str, settings: dict[str, Any] | None, records: list[TrialRecord]) -> None:
    """An Optuna study with the user attributes search.launch writes, and our rows."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    created = optuna.create_study(study_name=study, storage=url, directions=["maximize", "minimize"])
    if settings is not None:
        created.set_user_attr(SETTINGS_ATTR, settings)
        created.set_user_attr(INPUTS_ATTR, {"files": DATA_FILES})
    seed(url, records)


SPACE_STUDY = "space-budget-5pct"
_SPACE_METHODS = {  # method -> its own parameters and their choices, as in search/spaces/default.yaml
    "adapter": {"reduction_factor": [4, 8, 16, 32]},
    "hyperformer": {"reduction_factor": [8, 16], "task_embedding_dim": [64, 512], "hidden_dim": [16, 128], "projected_dim": [4, 8]},
    "compacter": {"reduction_factor": [4, 8], "k": [2, 4], "rank": [1, 4], "shared_rule": [True, False]},
    "lora": {"rank": [4, 8, 16], "alpha": [16.0, 32.0]},
    "prompt": {"length": [10, 20, 40], "reparameterize": [True, False]},
}  # fmt: skip
_SHARED = {  # searched for every method: Optuna can rank these
    "optimizer": ["adamw", "sam"],
    "learning_rate_scale": [0.5, 1.0, 2.0],
    "sharing": ["single", "multiple", "half-shared"],
    "freeze.train_layernorm": [True, False],
    "freeze.visual_encoder": ["frozen", "last_block"],
}


def seed_space_study(url: str, trials: int = 40) -> None:
    """A study over a space like the default one: about 20 configuration entries vary.

    Optuna's trials carry the shared parameters (so importances rank five of them); the
    results rows carry full configurations, as ``search.objective`` records them.
    """
    rng = random.Random(7)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=SPACE_STUDY, storage=url, directions=["maximize", "minimize"])
    study.set_user_attr(SETTINGS_ATTR, launch_settings(tasks=["vqa", "gqa"], data=None))
    distributions = {"method": optuna.distributions.CategoricalDistribution(list(_SPACE_METHODS))}
    distributions |= {name: optuna.distributions.CategoricalDistribution(c) for name, c in _SHARED.items()}
    records = []
    for n in range(trials):
        method = rng.choice(list(_SPACE_METHODS))
        shared = {name: rng.choice(choices) for name, choices in _SHARED.items()}
        own = {name: rng.choice(choices) for name, choices in _SPACE_METHODS[method].items()}
        # The score depends on the learning-rate scale and the method, so both rank high.
        score = 40 + 10 * shared["learning_rate_scale"] + 3 * list(_SPACE_METHODS).index(method) + rng.random()
        pct = rng.uniform(0.2, 8.0)
        study.add_trial(optuna.trial.create_trial(
            params={"method": method, **shared}, distributions=distributions, values=[score, pct],
        ))  # fmt: skip
        config = {
            "backbone": "tiny-clip+tiny-t5-vlp", "tasks": ["vqa", "gqa"], "method": method, "method_params": own,
            "sharing": shared["sharing"],
            "freeze": {"train_layernorm": shared["freeze.train_layernorm"], "visual_encoder": shared["freeze.visual_encoder"],
                       "train_bias": method != "lora"},
            "training": {"learning_rate": 5e-3 * shared["learning_rate_scale"], "optimizer": shared["optimizer"], "steps": 225},
        }  # fmt: skip
        records.append(TrialRecord(
            study_name=SPACE_STUDY, trial_number=n, status="complete", method=method, config=config,
            trainable_params=round(pct / 100 * 2_000_000), total_params=2_000_000, score=score,
            train_seconds=rng.uniform(20, 600), peak_memory_mb=rng.uniform(40, 90), finished_at=FINISHED,
        ))  # fmt: skip
    seed(url, records)


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
    def report(app: AppTest, index: str) -> Any:
        """The one static table (``st.table``) drawn whose rows are named by ``index``."""
        frames = [t.value for t in app.table if t.value.index.name == index]
        assert len(frames) == 1, f"{len(frames)} static tables indexed by {index!r}"
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
