"""Peak memory of one trial: what a configuration costs beyond its parameter count.

On CUDA, the allocator's peak since the trial started. On a CPU, the process's resident set
is sampled every 20 ms from /proc (Linux) and the peak above its level at the start is
reported; torch's CPU allocator keeps no statistics of its own.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = Path("/proc/self/statm")


def _rss_bytes() -> int:
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class PeakMemory:
    """Context manager; `megabytes` is the peak added while inside (None where unmeasurable)."""

    def __init__(self, device: torch.device, interval: float = 0.02):
        self.device = device
        self.interval = interval
        self.megabytes: float | None = None
        self._stop = threading.Event()
        self._peak = 0
        self._start = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        self._start = self._peak = _rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes())
            if peak == 0:
                return
        self.megabytes = max(0, peak - self._start) / 2**20
