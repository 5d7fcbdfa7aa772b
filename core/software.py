"""The software a result was produced by: package versions, Python, platform, git revision.

Recorded with every results row and in every run folder, so that a number can be traced to the
code and libraries that made it. Torch is read only when the process has already loaded it.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["GIT_REVISION_ENV", "PACKAGES", "git_revision", "run_environment"]

# Images built without .git pass the revision in (Dockerfile: ARG GIT_REVISION).
GIT_REVISION_ENV = "VLPETL_GIT_REVISION"
# The packages whose versions change results or their meaning.
PACKAGES = (
    "vlpetl-search", "torch", "transformers", "tokenizers", "open_clip_torch", "peft",
    "optuna", "sqlalchemy", "numpy", "psycopg",
)  # fmt: skip
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


@functools.cache
def git_revision() -> str | None:
    """The code's git revision (`+dirty` with uncommitted changes), or None where it is unknown."""
    return _git_revision()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def run_environment(device: str) -> dict[str, Any]:
    """Package versions, Python, platform, CPU kernels, device and git revision of this process.

    Args:
        device: The torch device trials run on (``str(env.device)``).

    Returns:
        A JSON-ready dict; a package that is not installed maps to None.
    """
    torch = sys.modules.get("torch")  # the process that trains has it; nothing here loads it
    info: dict[str, Any] = {
        "packages": {name: _version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        # The instruction set of torch's CPU kernels ("AVX512", "AVX2", ...): kernels of another set
        # round differently, so a CPU trial's score is reproducible on machines that share it.
        "cpu_kernels": torch.backends.cpu.get_cpu_capability() if torch is not None else None,
        "device": device,
        "git_revision": git_revision(),
    }
    if torch is not None and device.startswith("cuda") and torch.cuda.is_available():
        info["cuda"] = {"version": torch.version.cuda, "device_name": torch.cuda.get_device_name(torch.device(device))}
    return info
