"""The result contract: what one trial's row holds, declared once for every layer.

The search writes rows in this shape (``storage.TrialRecord``), the database stores them in
it (``storage.schema.TrialResult`` builds its columns from :data:`RESULT_SCHEMA`),
``storage.load_results`` hands them out as a DataFrame with :data:`RESULT_COLUMNS` of
:data:`RESULT_DTYPES`, and the dashboard reads them. Adding a column means one entry here
plus a step in ``storage.migrations`` for databases that predate it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "JSON_COLUMNS",
    "LOSS_SERIES",
    "LOSS_WINDOW",
    "RESULT_COLUMNS",
    "RESULT_DTYPES",
    "RESULT_SCHEMA",
    "STATUSES",
    "VALIDATION_PREFIX",
    "HELD_OUT_LOSS_PREFIX",
    "WORKER_LENGTH",
    "Kind",
    "LearningCurve",
    "ResultColumn",
    "TrialStatus",
    "check_names",
    "learning_curve",
]


class TrialStatus(enum.StrEnum):
    """Lifecycle of one trial as recorded in ``trial_results``."""

    RUNNING = "running"
    COMPLETE = "complete"
    INFEASIBLE = "infeasible"  # over the parameter budget or an invalid config
    FAILED = "failed"  # raised while building, training or evaluating
    PRUNED = "pruned"


# The order the dashboard lists and filters statuses in.
STATUSES: tuple[str, ...] = tuple(
    s.value for s in (TrialStatus.COMPLETE, TrialStatus.RUNNING, TrialStatus.FAILED, TrialStatus.INFEASIBLE, TrialStatus.PRUNED)
)


class Kind(enum.Enum):
    """What a column holds; the database type and the DataFrame dtype follow from it."""

    TEXT = "text"  # str; bounded by ``max_length`` when it has one
    INT = "int"
    COUNT = "count"  # an int that may pass 2**31 (parameter counts): BIGINT
    FLOAT = "float"
    JSON = "json"  # a dict of plain values (lists, numbers, strings), never NaN
    TIME = "time"  # a timezone-aware datetime, stored as UTC


@dataclass(frozen=True)
class ResultColumn:
    """One column of ``trial_results``: its name, kind, whether it may be empty, and what it holds."""

    name: str
    kind: Kind
    nullable: bool
    doc: str
    max_length: int | None = None

    @property
    def dtype(self) -> str:
        """The pandas dtype of this column in ``load_results``; fixed, so an empty frame has it too."""
        if self.kind in (Kind.INT, Kind.COUNT) and not self.nullable:
            return "int64"
        if self.kind is Kind.FLOAT:
            return "float64"
        if self.kind is Kind.TIME:
            return "datetime64[us, UTC]"
        return "object"


# A host name (at most 253 characters) and a process id fit.
WORKER_LENGTH = 300

_C = ResultColumn
RESULT_SCHEMA: tuple[ResultColumn, ...] = (
    # 512 matches Optuna's own study_name column, so any Optuna name fits.
    _C("study_name", Kind.TEXT, False, "the Optuna study", max_length=512),
    _C("trial_number", Kind.INT, False, "the Optuna trial number; unique within the study"),
    _C("status", Kind.TEXT, False, "a TrialStatus value", max_length=16),
    _C("method", Kind.TEXT, False, "the PETL method's registry key", max_length=64),
    _C("config", Kind.JSON, False, "TrialConfig.to_dict(): rebuilds the trial"),
    _C("score", Kind.FLOAT, True, "the average of the task scores (0-100)"),
    _C("task_scores", Kind.JSON, True, "task -> official metric"),
    _C("trainable_params", Kind.COUNT, False, "trainable parameters by the study's definition"),
    _C("total_params", Kind.COUNT, False, "all parameters by the study's definition"),
    _C("trainable_pct", Kind.FLOAT, False, "100 * trainable_params / total_params"),
    _C("train_seconds", Kind.FLOAT, True, "wall time of training and evaluation"),
    _C("error", Kind.TEXT, True, "why the trial is infeasible, failed or pruned"),
    _C("created_at", Kind.TIME, False, "when the row was first written"),
    _C("finished_at", Kind.TIME, True, "when the outcome was written"),
    # Schema version 2 (storage.migrations adds these to a version-1 table; all nullable, so
    # rows written before the upgrade simply lack them).
    _C("peak_memory_mb", Kind.FLOAT, True, "memory the trial added at its peak"),
    _C("param_breakdown", Kind.JSON, True, 'component -> {"trainable": n, "total": n}'),
    _C("timings", Kind.JSON, True, "phase -> seconds"),
    _C("learning_curve", Kind.JSON, True, "series -> {step: value}; see learning_curve()"),
    _C("environment", Kind.JSON, True, "packages, Python, device, git revision and the inputs' digests"),
    _C("worker", Kind.TEXT, True, '"host:pid" of the process that ran the trial', max_length=WORKER_LENGTH),
    _C("weights_path", Kind.TEXT, True, "where trained weights were saved, when they were"),
    # Schema version 3.
    _C(
        "replicate_of",
        Kind.INT,
        True,
        "the trial whose configuration this row trains again with another seed (core.seeds); None for a searched trial",
    ),
    # Schema version 4.
    _C(
        "steps_run",
        Kind.INT,
        True,
        "training steps the trial ran: all of its steps when complete, fewer when stopped at a rung; None when it did not train or failed",
    ),
)
del _C

RESULT_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULT_SCHEMA)
RESULT_DTYPES: dict[str, str] = {c.name: c.dtype for c in RESULT_SCHEMA}
JSON_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULT_SCHEMA if c.kind is Kind.JSON)

# The learning curve: series name -> {str(step): value}; JSON object keys are text, so steps
# are stored as their decimal text. "loss" is the training loss (the mean over the window
# that ends at the step); "validation <task>" the task's score at each scheduled evaluation, or
# "held-out loss <task>" its held-out loss where the evaluations measured that.
LearningCurve = dict[str, dict[str, float]]
LOSS_SERIES = "loss"
LOSS_WINDOW = 20  # training.loop logs the mean loss of every 20 steps
VALIDATION_PREFIX = "validation "
HELD_OUT_LOSS_PREFIX = "held-out loss "  # a task's held-out loss at each rung measured by it (search.fidelity)


def learning_curve(
    losses: Sequence[float],
    window: int,
    steps: int,
    evaluations: Iterable[tuple[int, Mapping[str, float]]] = (),
    measure: str = "score",
) -> LearningCurve | None:
    """The ``learning_curve`` column of a trial.

    Args:
        losses: The mean training loss of each window of ``window`` steps, in order.
        window: Steps per loss point; the last window ends at ``steps``.
        steps: The trial's training steps.
        evaluations: ``(step, task -> value)`` of each scheduled evaluation.
        measure: what the evaluations measured: "score" (series "validation <task>") or the
            held-out "loss" (series "held-out loss <task>").

    Returns:
        The curve, or None when there are no points.
    """
    curve: LearningCurve = {}
    if losses:
        ends = [min((i + 1) * window, steps) for i in range(len(losses))]
        curve[LOSS_SERIES] = {str(end): float(loss) for end, loss in zip(ends, losses, strict=True)}
    prefix = HELD_OUT_LOSS_PREFIX if measure == "loss" else VALIDATION_PREFIX
    for step, values in evaluations:
        for task, value in values.items():
            curve.setdefault(f"{prefix}{task}", {})[str(step)] = float(value)
    return curve or None


def check_names(names: Iterable[str], what: str) -> None:
    """Raise if ``names`` are not exactly the contract's columns (a writer or reader out of step).

    Raises:
        RuntimeError: naming the missing and the extra names.
    """
    names = list(names)
    missing = [c for c in RESULT_COLUMNS if c not in names]
    extra = [n for n in names if n not in RESULT_COLUMNS]
    if missing or extra:
        raise RuntimeError(
            f"{what} is out of step with core.results.RESULT_SCHEMA: missing {missing}, extra {extra}; "
            "add the column to the contract (and a storage migration) or remove it here"
        )
