"""A build step runs in its own process on AVX2 kernels, whatever this process uses, and its
result or its error comes back here (training.pretrain.pinned)."""

from __future__ import annotations

import os

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
