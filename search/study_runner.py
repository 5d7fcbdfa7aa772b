"""Running a study's trials: shared by `search.launch` and `search.worker`."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

import optuna
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from core.budget import Budget, parse_budget
from core.counts import ParameterCount
from models.config import TrialConfig
from search.fidelity import Fidelity, steps_spent
from search.objective import Objective
from search.progress import StudyProgress, goal_met, queued_confirmations, queued_retries, trained, trials_left
from search.space import SpaceDefaults, fixed_config
from search.space_file import DEFAULT_SPACE_SOURCE, Choices
from search.study_settings import StudySettings
from storage.engine import RETRY_DELAYS_S, is_disconnect
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
    if settings.space_source == DEFAULT_SPACE_SOURCE:  # a user's file searches what it says
        defaults = fitting_freeze_choices(
            defaults, lambda config: count_trial_parameters(config, env, with_clip=settings.count_clip), budget
        )
    return defaults


def fitting_freeze_choices(defaults: SpaceDefaults, measure: Callable[[TrialConfig], ParameterCount], budget: Budget) -> SpaceDefaults:
    """The default space without the freezing choices a trial would waste: one that trains
    nothing more than the method's default freezing on this backbone (biases of T5, which has
    none), or one that adds parameters and puts the method's default configuration over the
    budget (the word embedding is 4.7% of the tiny backbone, a quarter of BART-base; CLIP's last
    block, counted with --count-clip, 14% of the tiny one). The choice is judged at the method's
    default sizes: a draw at other sizes that is still over is caught by the objective's
    pre-check, as any configuration is. Deterministic in the settings and the backbone, so every
    worker of a study narrows the space the same way; the method's default always stays."""
    space = defaults.space
    dropped: list[str] = []
    for method, searched in defaults.space.methods.items():
        base_params = space.fixed_params(method, {})
        if base_params is None:
            continue
        base = measure(fixed_config(base_params, defaults)).trainable
        for name, parameter in searched.params.items():
            if not name.startswith("freeze.") or not isinstance(parameter, Choices):
                continue
            kept = []
            for value in parameter.values:
                params = space.fixed_params(method, {name: value})
                if params == base_params:
                    kept.append(value)
                elif params is not None:
                    count = measure(fixed_config(params, defaults))
                    if count.trainable < base or (count.trainable > base and budget.allows(count)):
                        kept.append(value)
            if len(kept) < len(parameter.values):
                dropped.append(f"{method}.{name}={[v for v in parameter.values if v not in kept]}")
                space = space.narrowed(method, name, tuple(kept))
    if dropped:
        log.info("freezing choices not searched (they train nothing more on this backbone, or are over the budget): %s", ", ".join(dropped))
    return dataclasses.replace(defaults, space=space)


def make_objective(settings: StudySettings, env: TrialEnvironment, engine: Engine, study_name: str) -> Objective:
    return Objective(
        env,
        study_defaults(settings, env),
        parse_budget(settings.budget),
        engine,
        study_name,
        count_clip=settings.count_clip,
        objectives=settings.objectives,
        fidelity=Fidelity.for_study(settings.rungs, settings.rung_measure, settings.rung_peers),
    )


def run_until_target(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    target: int,
    time_limit: float | None,
    engine: Engine | None = None,
    step_budget: int | None = None,
    collect_garbage: bool = True,
    workers: int = 1,
    show_progress: bool = True,
) -> int:
    """Train trials until the study (all its workers together) has `target` trained ones (or,
    with `step_budget`, has used that many training steps) and no retry of a failed trial is
    left queued.

    A dropped database connection that escapes Optuna (its `ask` or `tell` failing, say) does
    not end the worker: it waits with backoff and goes on. A trial whose result could not be
    told stays "running" without heartbeats, so the study's liveness check fails it and queues
    it again (search.liveness).

    Args:
        engine: The study's database. With it, a worker whose study reached its goal while
            other workers' trials still run waits until each is known alive or released as
            dead, and trains the retry of a dead one (:func:`search.liveness.await_other_trials`);
            without it (an in-memory study) it leaves at once.
        collect_garbage: run the cyclic collector after each trial (what a trained model needs;
            a surrogate objective allocates nothing worth a quarter-second collection).
        workers: local workers on the study, for the progress bar's label.
        show_progress: draw the progress bar (local workers leave it to their launcher's).

    Returns:
        How many trials this process trained.

    Raises:
        optuna.exceptions.StorageInternalError, sqlalchemy.exc.DBAPIError: the database stayed
            unreachable through every retry.
    """
    from search.liveness import await_other_trials

    started = time.monotonic()
    trained_here = 0
    failures = 0
    while True:
        trials = study.get_trials(deepcopy=False)
        done = sum(trained(t) for t in trials)
        owed = queued_retries(trials) + queued_confirmations(trials)
        remaining = 0 if goal_met(trials, target, step_budget) else trials_left(trials, target, step_budget)
        timeout = None if time_limit is None else time_limit - (time.monotonic() - started)
        if timeout is not None and timeout <= 0:
            return trained_here
        if not (remaining or owed):
            if engine is not None and await_other_trials(study, engine, timeout):
                continue  # a dead trial was released: train its retry
            return trained_here
        already = done if step_budget is None else steps_spent(trials)
        progress = StudyProgress(
            target, already, max_attempts=10 * remaining + owed, step_budget=step_budget, workers=workers, show=show_progress
        )
        try:
            # gc_after_trial: a failed trial's model and optimiser sit in reference cycles with
            # its traceback; collect them before the next trial allocates its own.
            study.optimize(objective, timeout=timeout, callbacks=[progress], catch=(Exception,), gc_after_trial=collect_garbage)
            trained_here += progress.trained_here
            if not progress.goal_reached:
                # A time limit, a stop signal, or almost nothing fitting the budget: leave.
                return trained_here
        except (optuna.exceptions.StorageInternalError, DBAPIError) as error:
            if isinstance(error, DBAPIError) and not is_disconnect(error):
                raise
            failures = 0 if progress.attempts else failures + 1  # a trial got through: a new outage
            if failures > len(RETRY_DELAYS_S):
                raise
            delay = RETRY_DELAYS_S[failures - 1] if failures else RETRY_DELAYS_S[0]
            log.warning("the study database failed (%s); going on in %.1f s", type(error).__name__, delay)
            trained_here += progress.trained_here
            time.sleep(delay)
        finally:
            progress.close()
