"""What a results row records about the run besides the score: environment, worker, curves.

Plain values only (the row's JSON columns), computed once per process where they cannot
change (the environment) and per trial from its outcome otherwise.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from core.results import LOSS_WINDOW, learning_curve
from core.software import run_environment

if TYPE_CHECKING:  # torch and training load only where trials run, not for worker_id
    from training.trial import TrialOutcome

__all__ = ["LOSS_WINDOW", "outcome_fields", "run_environment", "worker_id"]


def worker_id() -> str:
    """This process as ``"host:pid"``, the ``worker`` of the rows it writes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def outcome_fields(outcome: "TrialOutcome", steps: int, started: float) -> dict[str, Any]:
    """The row's peak memory, parameter breakdown, timings and learning curve.

    Args:
        outcome: The finished trial.
        steps: Its training steps (the last loss point ends there).
        started: ``time.perf_counter()`` when the objective began the trial.

    Returns:
        Keyword arguments for ``TrialRecord``.
    """
    total = time.perf_counter() - started
    return {
        "peak_memory_mb": outcome.peak_memory_mb,
        "param_breakdown": outcome.param_breakdown,
        "timings": {
            "train_and_evaluate_s": outcome.train_seconds,
            "evaluate_s": outcome.evaluate_seconds,  # scheduled (rung) and final scoring
            "trial_s": total,
            # parameter counting, the duplicate check and the database writes before training
            "setup_s": max(0.0, total - outcome.train_seconds),
        },
        "learning_curve": learning_curve(outcome.losses, LOSS_WINDOW, steps, outcome.evaluations, outcome.evaluation_measure),
    }
