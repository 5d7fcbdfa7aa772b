"""A trial's CPU memory peak (training.memory.PeakMemory): from the kernel's own peak where it can
be reset, from a sampling thread elsewhere; both see what the block added."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

import training.memory as memory
from training.memory import PeakMemory

CPU = torch.device("cpu")
MB = 2**20

needs_kernel_peak = pytest.mark.skipif(not memory._reset_kernel_peak(), reason="no resettable VmHWM (Linux >= 4.0 with /proc)")


def hold(megabytes: int, seconds: float = 0.0) -> None:
    """Allocate and write `megabytes` (resident, not just reserved), keep them `seconds`, free them."""
    block = torch.ones(megabytes * MB // 4)
    time.sleep(seconds)
    del block


@needs_kernel_peak
def test_the_kernel_peak_catches_an_allocation_freed_at_once_without_a_thread() -> None:
    with PeakMemory(CPU) as peak:
        hold(64)
    assert peak._thread is None  # no sampler woke during the block
    assert peak.megabytes is not None and 60 <= peak.megabytes < 200


@needs_kernel_peak
def test_a_nested_measurement_does_not_take_the_outer_ones_peak() -> None:
    with PeakMemory(CPU) as outer:
        hold(64)
        with PeakMemory(CPU) as inner:  # resets the kernel's peak, after the 64 MB were freed
            hold(16)
    assert inner.megabytes is not None and 14 <= inner.megabytes < 60
    assert outer.megabytes is not None and outer.megabytes >= 60


def test_where_the_kernel_peak_cannot_be_reset_a_thread_samples(monkeypatch) -> None:
    monkeypatch.setattr(memory, "_CLEAR_REFS", Path("/nonexistent/clear_refs"))
    with PeakMemory(CPU, interval=0.005) as peak:
        hold(64, seconds=0.1)  # held for 20 intervals: the sampler sees it
    assert peak._thread is not None and not peak._thread.is_alive()
    if memory._rss_bytes() == 0:  # no /proc at all: unmeasurable
        assert peak.megabytes is None
    else:
        assert peak.megabytes is not None and 60 <= peak.megabytes < 200


@needs_kernel_peak
def test_a_reset_the_kernel_ignores_falls_back_to_the_thread(monkeypatch, tmp_path) -> None:
    memory._reset_kernel_peak()
    hold(64)  # the kernel's peak is now 64 MB above the resident set
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "clear_refs")  # takes the write, resets nothing
    with PeakMemory(CPU) as peak:
        pass
    assert peak._thread is not None  # not the stale 64 MB
    assert peak.megabytes is not None and peak.megabytes < 60
