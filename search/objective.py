"""The Optuna objective: check the budget, train, score, record.

The budget is checked from the exact parameter count before anything trains; a
configuration over it is recorded as infeasible with the reason, and its constraint
violation, set with `trial.set_constraint`, steers the sampler away.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
import traceback
from datetime import datetime, timezone
from typing import Literal

import optuna
import torch
from sqlalchemy import Engine
from tqdm.auto import tqdm

from models.config import TrialConfig
from models.features import file_digest
from models.petl import get_method
from models.weight_digests import weight_digests
from tasks.digests import summary
from core.counts import ParameterCount
from core.budget import Budget
from training.faults import active_trial
from search.fidelity import NO_FIDELITY, STEPS_PLANNED_ATTR, STEPS_RUN_ATTR, Fidelity, RungJudge, RungPruned, with_rungs
from search.liveness import earlier_attempts
from search.space import SpaceDefaults, config_from_trial, reference_config
from search.trial_info import outcome_fields, run_environment, worker_id
from storage import TrialRecord, TrialStatus, claim_trial, record_trial
from training.environment import TrialEnvironment, benchmark_dir
from training.trial import count_trial_parameters, run_trial

log = logging.getLogger(__name__)

CONSTRAINT_KEY = "budget"  # > 0: over budget by that fraction of the total parameters
REFERENCE_ATTR = "reference"
WARM_START_ATTR = "warm_start"  # the run preset a warm-start trial stands for
# A confirmation trial (search.confirmation): the trial whose configuration it trains again, and its seed.
REPLICATE_ATTR = "replicate_of"
SEED_ATTR = "seed"


# Every objective a study can optimise, with its direction; score and trainable % come first.
OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {
    "score": "maximize",
    "trainable_pct": "minimize",
    "train_time": "minimize",
    "peak_memory": "minimize",
}


class Objective:
    """Callable for `study.optimize`; returns the values of `objectives` (default: score, trainable %).

    Args:
        env: the prepared benchmark, backbone and features.
        defaults: what every trial shares.
        budget: the trainable-parameter budget; the full fine-tuning reference is exempt.
        engine: the database of the project's results table.
        study_name: the Optuna study name, also the results table's key.
        fidelity: the rungs at which trials are scored on the way and stopped when dominated.
    """

    def __init__(
        self,
        env: TrialEnvironment,
        defaults: SpaceDefaults,
        budget: Budget,
        engine: Engine,
        study_name: str,
        count_clip: bool = False,
        objectives: tuple[str, ...] = ("score", "trainable_pct"),
        fidelity: Fidelity = NO_FIDELITY,
    ):
        self.env = env
        self.defaults = defaults
        self.budget = budget
        self.engine = engine
        self.study_name = study_name
        self.count_clip = count_clip
        self.objectives = objectives
        self.fidelity = fidelity
        self._inputs: dict | None = None  # data_identity(env), hashed on first use

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        started = time.perf_counter()
        reference = bool(trial.user_attrs.get(REFERENCE_ATTR))
        config = reference_config(self.defaults) if reference else config_from_trial(trial, self.defaults)
        if REPLICATE_ATTR in trial.user_attrs:  # the same configuration, trained with another seed
            config = dataclasses.replace(config, training=dataclasses.replace(config.training, seed=int(trial.user_attrs[SEED_ATTR])))
        params = count_trial_parameters(config, self.env, with_clip=self.count_clip)
        row = _TrialRow(self, trial, config, params)
        try:
            return self._run(trial, row, reference, started)
        except BaseException as error:  # KeyboardInterrupt too: never leave a trial without its row
            if not row.finished:
                row.write(TrialStatus.FAILED, error=_describe(error))
            raise

    def _run(self, trial: optuna.Trial, row: "_TrialRow", reference: bool, started: float) -> tuple[float, ...]:
        config, params = row.config, row.params
        trial.set_user_attr("parameter_definition", "with_clip" if self.count_clip else "paper")
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("trainable_params", params.trainable)
        # with "config": enough for liveness to write the failed row of a worker that dies before its first row
        trial.set_user_attr("total_params", params.total)
        violation = self._violation(trial, params)
        trial.set_constraint(CONSTRAINT_KEY, violation)
        if violation > 0:
            reason = (
                f"{params.trainable:,} trainable parameters ({params.trainable_pct:.2f}%) exceed the budget of {self.budget.describe()}"
            )
            row.write(TrialStatus.INFEASIBLE, error=reason)
            tqdm.write(f"trial {trial.number}: infeasible, not trained: {reason}")
            return self._values(0.0, params, 0.0, 0.0)
        holder = claim_trial(self.engine, row.record(TrialStatus.RUNNING), ignore=earlier_attempts(trial))
        if holder is not None:
            # A deterministic trial would only repeat itself: spend no training on it.
            if holder.status == TrialStatus.COMPLETE.value:
                reason = f"same configuration as trial {holder.trial_number}; not trained again"
            else:
                reason = f"same configuration as trial {holder.trial_number}, training on worker {holder.worker}; not trained twice"
            row.write(TrialStatus.PRUNED, error=reason)
            tqdm.write(f"trial {trial.number}: {reason}")
            raise optuna.TrialPruned(reason)
        # The rungs only change when the trial is scored on the way, not how it trains, so the
        # recorded (and exported) configuration stays the one without them.
        run_config = dataclasses.replace(config, training=with_rungs(config.training, self.fidelity))
        # The reference and the paper's configurations (warm starts) always run to the end: they
        # are the points of comparison a user reads the front against, one per method family,
        # and a study that stopped them early would show a family only by the sampler's chance.
        # A confirmation seed measures noise at full length: a rung would stop it on one lucky draw.
        exempt = reference or WARM_START_ATTR in trial.user_attrs or REPLICATE_ATTR in trial.user_attrs
        judge = RungJudge(trial, params.trainable_pct, self.fidelity, exempt=exempt) if run_config.training.eval_at else None
        trial.set_user_attr(STEPS_PLANNED_ATTR, config.training.steps)
        try:
            with active_trial(trial.number):
                outcome = run_trial(run_config, self.env, on_evaluation=judge)
        except torch.OutOfMemoryError as error:
            reason = (
                f"{_describe(error)}; memory was freed for the next trial; lower training.batch_size, "
                "or search smaller methods or a smaller backbone"
            )
            _free_memory(error)
            row.write(TrialStatus.FAILED, error=reason)
            tqdm.write(f"trial {trial.number}: failed, out of memory")
            # A fresh exception: the original's traceback would keep the failed model alive.
            raise TrialOutOfMemory(reason) from None
        except RungPruned as stopped:
            trial.set_user_attr(STEPS_RUN_ATTR, stopped.steps_run)
            row.write(TrialStatus.PRUNED, error=str(stopped), steps_run=stopped.steps_run)
            tqdm.write(f"trial {trial.number}: {config.method} {_params_text(config)} {stopped}")
            raise
        # The curve, peak memory and breakdown go to the results row only (the dashboard reads
        # them there); before schema version 2 the loss curve went to the trial's "loss_curve".
        row.write(
            TrialStatus.COMPLETE,
            score=outcome.score,
            task_scores=outcome.task_scores,
            train_seconds=outcome.train_seconds,
            steps_run=config.training.steps,
            **outcome_fields(outcome, config.training.steps, started),
        )
        tqdm.write(
            f"trial {trial.number}: {config.method} {_params_text(config)} -> score {outcome.score:.1f} "
            f"at {params.trainable_pct:.2f}% trainable ({outcome.train_seconds:.0f} s)"
        )
        return self._values(outcome.score, params, outcome.train_seconds, outcome.peak_memory_mb or 0.0)

    def _values(self, score: float, params: ParameterCount, seconds: float, memory_mb: float) -> tuple[float, ...]:
        by_name = {"score": score, "trainable_pct": params.trainable_pct, "train_time": seconds, "peak_memory": memory_mb}
        return tuple(by_name[name] for name in self.objectives)

    def _violation(self, trial: optuna.Trial, params: ParameterCount) -> float:
        if trial.user_attrs.get(REFERENCE_ATTR) or self.budget.allows(params):
            return 0.0
        if self.budget.fraction is not None:
            allowed: float = self.budget.fraction * params.total
        else:
            assert self.budget.count is not None  # a Budget sets exactly one of fraction and count
            allowed = self.budget.count
        return (params.trainable - allowed) / params.total

    def input_identity(self) -> dict:
        if self._inputs is None:
            self._inputs = data_identity(self.env)
        return self._inputs


class _TrialRow:
    """One trial's row in the results table: what every write of it shares, and whether it has an outcome."""

    def __init__(self, objective: Objective, trial: optuna.Trial, config: TrialConfig, params: ParameterCount):
        self.objective = objective
        self.trial = trial
        self.config = config
        self.params = params
        self.finished = False  # an outcome (not just "running") has been written

    def record(self, status: TrialStatus, **fields) -> TrialRecord:
        if status is not TrialStatus.RUNNING:
            fields["finished_at"] = datetime.now(timezone.utc)
        return TrialRecord(
            study_name=self.objective.study_name,
            trial_number=self.trial.number,
            status=status.value,
            method=self.config.method,
            config=self.config.to_dict(),
            trainable_params=self.params.trainable,
            total_params=self.params.total,
            worker=worker_id(),
            replicate_of=self.trial.user_attrs.get(REPLICATE_ATTR),
            environment={**run_environment(str(self.objective.env.device)), "inputs": self.objective.input_identity()},
            **fields,
        )

    def write(self, status: TrialStatus, **fields) -> None:
        record_trial(self.objective.engine, self.record(status, **fields))
        self.finished = status is not TrialStatus.RUNNING


class TrialOutOfMemory(RuntimeError):
    """A trial ran out of memory; it failed, and what it held was freed before the next trial."""


def _free_memory(error: BaseException) -> None:
    """Release what an out-of-memory trial allocated, before the study's next trial starts.

    The model, its gradients and the optimiser state are locals of the training frames, which
    the exception's traceback keeps alive, and they sit in reference cycles that only the
    cyclic collector frees, before the next trial rather than whenever it next runs. CUDA's
    caching allocator keeps freed blocks reserved for this process until told to return them.
    """
    traceback.clear_frames(error.__traceback__)
    error.__traceback__ = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def data_identity(env: TrialEnvironment) -> dict:
    """What a trial reads besides its config, by content: the backbone's weights and the data.

    With the config (seed included) and the code revision and packages of `run_environment`,
    this is what a row needs to be rerun, and to tell why a rerun differs: the embedded
    backbone, say, pretrained with other settings on another machine, or a changed data file.
    `data` is the data description itself, so that a recipe exported from the row trains on
    the same data with no further flag.
    """
    location = env.location
    identity: dict[str, object] = {"backbone": location.preset.name, "random_init": location.random_init, **weight_digests(location)}
    if env.data is not None:
        identity["data"] = env.data.to_dict()
        identity["data_files"] = summary(env.inputs)
    if env.data is None or env.data.generated is not None:
        root = env.data_base or benchmark_dir(env.data_dir, 0, location.preset.image_size)
        identity.update(benchmark=root.name, benchmark_manifest_sha256=file_digest(root / "manifest.json"))
    return identity


def _params_text(config: TrialConfig) -> str:
    """The method's parameters, then the freezing where it is not the method's own (a searched choice)."""
    own = dataclasses.asdict(get_method(config.method).freeze)
    changed = {k: v for k, v in dataclasses.asdict(config.freeze).items() if own[k] != v}
    return " ".join([*(f"{k}={v}" for k, v in config.method_params.items()), *(f"freeze.{k}={v}" for k, v in changed.items())])


def _describe(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted by the user before the trial finished"
    return "".join(traceback.format_exception_only(type(error), error)).strip()
