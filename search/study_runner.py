"""Running a study's trials: shared by `search.launch` and `search.worker`."""

from __future__ import annotations

import dataclasses
import logging

import optuna
from sqlalchemy import Engine

from search.budget import parse_budget
from search.fidelity import Fidelity
from search.objective import Objective
from search.progress import StudyProgress, trained
from search.space import SpaceDefaults, fixed_config
from search.study_settings import StudySettings
from training.environment import TrialEnvironment
from training.trial import count_trial_parameters

log = logging.getLogger(__name__)


def study_defaults(settings: StudySettings, env: TrialEnvironment) -> SpaceDefaults:
    """The space and shared recipe of a study, without methods the budget rules out entirely."""
    from models.config import TrainingConfig

    budget = parse_budget(settings.budget)
    space = settings.space()
    training = TrainingConfig(seed=settings.seed) if settings.steps is None else TrainingConfig(seed=settings.seed, steps=settings.steps)
    defaults = SpaceDefaults(backbone=settings.backbone, tasks=settings.tasks, training=training, space=space)
    over = set()
    for method, searched in space.methods.items():
        # A method whose space changes only the learning rate has one parameter count: check it once.
        if set(searched.params) <= {"learning_rate", "learning_rate_scale"}:
            config = fixed_config(space.fixed_params(method, {}), defaults)
            if not budget.allows(count_trial_parameters(config, env, with_clip=settings.count_clip)):
                over.add(method)
    if over:
        log.info("not searched, every configuration is over the budget: %s", ", ".join(sorted(over)))
        defaults = dataclasses.replace(defaults, space=space.without(over))
    return defaults


def make_objective(settings: StudySettings, env: TrialEnvironment, engine: Engine, study_name: str) -> Objective:
    return Objective(
        env, study_defaults(settings, env), parse_budget(settings.budget), engine, study_name,
        count_clip=settings.count_clip, objectives=settings.objectives, fidelity=Fidelity(rungs=settings.rungs),
    )


def run_until_target(study: optuna.Study, objective: Objective, target: int, time_limit: float | None) -> int:
    """Train trials until the study (all its workers together) has `target` trained ones.

    Returns:
        How many trials this process trained.
    """
    done = sum(trained(t) for t in study.get_trials(deepcopy=False))
    remaining = max(0, target - done)
    if not remaining:
        return 0
    progress = StudyProgress(target, done, max_attempts=10 * remaining)
    try:
        study.optimize(objective, timeout=time_limit, callbacks=[progress], catch=(Exception,))
    finally:
        progress.close()
    return progress.trained_here
