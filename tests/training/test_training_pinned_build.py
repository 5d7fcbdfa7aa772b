"""A build step runs in its own process on AVX2 kernels, whatever this process uses, and its
result or its error comes back here (training.pretrain.pinned)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.pretrain.pinned import kernel_identity, pinned_build

pytestmark = pytest.mark.skipif(not kernel_identity().startswith("x86-64"), reason="the kernels are pinned on x86-64 with AVX2 only")


@pinned_build
def kernels_seen(label: str) -> dict:
    import torch

    return {
        "label": label,
        "aten": torch.backends.cpu.get_cpu_capability(),
        "mkl": os.environ.get("MKL_CBWR"),
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
    }


@pinned_build
def refuses(steps: int) -> None:
    raise ValueError(f"steps must be positive, got {steps}")


@pytest.fixture
def other_kernels_here(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")  # this process's choice must not reach the step
    monkeypatch.delenv("MKL_CBWR", raising=False)


def test_a_step_runs_in_its_own_process_on_avx2_kernels_and_one_thread(other_kernels_here):
    seen = kernels_seen("clip")
    assert seen == {"label": "clip", "aten": "AVX2", "mkl": "AVX2", "pid": seen["pid"], "threads": 1}
    assert seen["pid"] != os.getpid()
    assert os.environ["ATEN_CPU_CAPABILITY"] == "default" and "MKL_CBWR" not in os.environ  # this process's, as they were


def test_a_steps_error_is_raised_here_with_its_message(other_kernels_here):
    with pytest.raises(ValueError, match="steps must be positive, got 0"):
        refuses(0)


@pinned_build
def trains_until_stopped(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(300)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").is_dir() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_the_caller_ends_the_step_at_once(tmp_path, stop):
    pid_file = tmp_path / "step.pid"
    caller = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
         f"from {Path(__file__).stem} import trains_until_stopped; trains_until_stopped({str(pid_file)!r})"],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        step = int(pid_file.read_text())
        caller.send_signal(stop)  # Ctrl-C: the caller ends the step; SIGTERM kills the caller, the step sees it gone
        caller.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _alive(step) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(step), f"the build step (pid {step}) trains on after its caller stopped"
    finally:
        caller.kill()
