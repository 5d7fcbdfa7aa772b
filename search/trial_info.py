"""What a results row records about the run besides the score: environment, worker, curves.

Plain values only (the row's JSON columns), computed once per process where they cannot
change (the environment) and per trial from its outcome otherwise.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.results import learning_curve

if TYPE_CHECKING:  # torch and training load only where trials run, not for worker_id
    from training.trial import TrialOutcome

__all__ = ["GIT_REVISION_ENV", "PACKAGES", "outcome_fields", "run_environment", "worker_id"]

# Images built without .git pass the revision in (Dockerfile: ARG GIT_REVISION).
GIT_REVISION_ENV = "VLPETL_GIT_REVISION"
# The packages whose versions change results or their meaning.
PACKAGES = (
    "vlpetl-search", "torch", "transformers", "tokenizers", "open_clip_torch", "peft",
    "optuna", "sqlalchemy", "numpy", "psycopg",
)  # fmt: skip
LOSS_WINDOW = 20  # training.loop logs the mean loss of every 20 steps
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def worker_id() -> str:
    """This process as ``"host:pid"``, the ``worker`` of the rows it writes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _git_revision() -> str | None:
    if os.environ.get(GIT_REVISION_ENV):
        return os.environ[GIT_REVISION_ENV]
    if not (_PROJECT_ROOT / ".git").exists():
        return None

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(_PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        revision = git("rev-parse", "HEAD")
        # Uncommitted changes to tracked files: the revision alone does not reproduce the run.
        return revision + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def run_environment(device: str) -> dict[str, Any]:
    """Package versions, Python, platform, device and git revision of this process.

    Args:
        device: The torch device trials run on (``str(env.device)``).

    Returns:
        A JSON-ready dict; a package that is not installed maps to None.
    """
    import torch

    info: dict[str, Any] = {
        "packages": {name: _version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "git_revision": _git_revision(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["cuda"] = {"version": torch.version.cuda, "device_name": torch.cuda.get_device_name(torch.device(device))}
    return info


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
        "learning_curve": learning_curve(outcome.losses, LOSS_WINDOW, steps, outcome.evaluations),
    }
