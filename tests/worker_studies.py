"""A study stored the way search.launch stores it, for tests that start real search.worker processes."""

from __future__ import annotations

from typing import Any

import optuna

from models.backbones.presets import DEFAULT_BACKBONE
from search.liveness import LIVENESS_ATTR, Liveness
from search.study_settings import SETTINGS_ATTR, StudySettings
from storage import init_schema, make_engine


def make_worker_study(
    url: str, name: str, *, target: int, steps: int, space_yaml: str, space_source: str,
    liveness: Liveness, enqueue: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Our tables, and an Optuna study on task vqa with its settings, liveness and `enqueue` queued first."""
    engine = make_engine(url)
    init_schema(engine)
    engine.dispose()
    settings = StudySettings(
        budget="5%", backbone=DEFAULT_BACKBONE, tasks=("vqa",), target_trials=target, seed=0, steps=steps,
        sampler="random", space_yaml=space_yaml, space_source=space_source, count_clip=False,
        objectives=("score", "trainable_pct"),
    )  # fmt: skip
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=url, directions=["maximize", "minimize"])
    study.set_user_attr(SETTINGS_ATTR, settings.to_attr())
    study.set_user_attr(LIVENESS_ATTR, liveness.to_attr())
    for params in enqueue:
        study.enqueue_trial(params)
