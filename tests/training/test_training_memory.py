"""A trial's CPU memory peak (training.memory.PeakMemory): from the kernel's own peak where it can
be reset, from a sampling thread elsewhere; both see what the block added.

Each case runs in a fresh Python process: in the test suite's long-lived process, memory freed by
earlier tests is reused without raising the resident set, so an allocation there need not show
in it (the suite measured 0 MB for a 64 MB block that a fresh process measures at 64 MB)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import training.memory as memory

needs_kernel_peak = pytest.mark.skipif(not memory._reset_kernel_peak(), reason="no resettable VmHWM (Linux >= 4.0 with /proc)")

PRELUDE = """
import json, time
from pathlib import Path
import torch
import training.memory as memory
from training.memory import PeakMemory
CPU = torch.device("cpu")
MB = 2**20

def hold(megabytes, seconds=0.0):
    block = torch.ones(megabytes * MB // 4)  # written: resident, not just reserved
    time.sleep(seconds)
    del block
"""


def run_case(body: str) -> dict:
    """Run `body` after PRELUDE in a fresh interpreter; it prints one JSON object, returned here."""
    code = PRELUDE + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_kernel_peak
def test_the_kernel_peak_catches_an_allocation_freed_at_once_without_a_thread() -> None:
    got = run_case("""
        with PeakMemory(CPU) as peak:
            hold(64)
        print(json.dumps({"thread": peak._thread is not None, "mb": peak.megabytes}))
    """)
    assert got["thread"] is False  # no sampler woke during the block
    assert got["mb"] is not None and 60 <= got["mb"] < 200


@needs_kernel_peak
def test_a_nested_measurement_does_not_take_the_outer_ones_peak() -> None:
    got = run_case("""
        with PeakMemory(CPU) as outer:
            hold(64)
            with PeakMemory(CPU) as inner:  # resets the kernel's peak, after the 64 MB were freed
                hold(16)
        print(json.dumps({"inner": inner.megabytes, "outer": outer.megabytes}))
    """)
    assert got["inner"] is not None and 14 <= got["inner"] < 60
    assert got["outer"] is not None and got["outer"] >= 60


def test_where_the_kernel_peak_cannot_be_reset_a_thread_samples() -> None:
    got = run_case("""
        memory._CLEAR_REFS = Path("/nonexistent/clear_refs")
        with PeakMemory(CPU, interval=0.005) as peak:
            hold(64, seconds=0.1)  # held for 20 intervals: the sampler sees it
        print(json.dumps({"thread": peak._thread is not None, "alive": peak._thread.is_alive(), "mb": peak.megabytes,
                          "proc": memory._rss_bytes() > 0}))
    """)
    assert got["thread"] and not got["alive"]
    if not got["proc"]:  # no /proc at all: unmeasurable
        assert got["mb"] is None
    else:
        assert got["mb"] is not None and 60 <= got["mb"] < 200


@needs_kernel_peak
def test_a_reset_the_kernel_ignores_falls_back_to_the_thread(tmp_path) -> None:
    got = run_case(f"""
        memory._reset_kernel_peak()
        hold(64)  # the kernel's peak is now 64 MB above the resident set
        memory._CLEAR_REFS = Path({str(tmp_path / "clear_refs")!r})  # takes the write, resets nothing
        with PeakMemory(CPU) as peak:
            pass
        print(json.dumps({{"thread": peak._thread is not None, "mb": peak.megabytes}}))
    """)
    assert got["thread"]  # not the stale 64 MB
    assert got["mb"] is not None and got["mb"] < 60
