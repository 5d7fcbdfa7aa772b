"""Peak memory of one trial: what a configuration costs beyond its parameter count.

On CUDA, the allocator's peak since the trial started. On a CPU, the process's resident set at
its peak above its level at the start; torch's CPU allocator keeps no statistics of its own.
On Linux the kernel keeps that peak itself (VmHWM in /proc/self/status), and writing "5" to
/proc/self/clear_refs (Linux >= 4.0) starts it again from the current resident set: the
measurement then costs two file operations and catches a peak however short. Where that reset
is refused (another OS, a read-only /proc), a thread samples the resident set every 20 ms from
/proc/self/statm instead, as every CPU trial once did: it misses peaks shorter than its
interval, and its 50 wake-ups a second cost a trial about 2% of its wall time on the loaded
2-core reference machine (interleaved runs, at the edge of that machine's noise).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = Path("/proc/self/statm")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_PEAK_RSS = "5"  # clear_refs command: reset the peak resident set (VmHWM) to the current one
_RESET_SLACK = 2**20

# The kernel keeps one peak per process: a measurement that resets it first folds the peak so
# far into every measurement still open (nested ones), so that none of them loses it.
_open_kernel_peaks: list["PeakMemory"] = []
_open_lock = threading.Lock()


def _rss_bytes() -> int:
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _kernel_peak_bytes() -> int:
    """The process's peak resident set since its start or the last reset (VmHWM); 0 where unknown."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _reset_kernel_peak() -> bool:
    """Restart the kernel's peak from the current resident set; False where that is impossible."""
    if _kernel_peak_bytes() == 0:
        return False
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK_RSS)
    except OSError:
        return False
    # A kernel that took the write but kept the old peak would report it as this block's: after a
    # real reset the peak is the resident set itself (the slack covers pages touched in between).
    return _kernel_peak_bytes() <= _rss_bytes() + _RESET_SLACK


class PeakMemory:
    """Context manager; `megabytes` is the peak added while inside (None where unmeasurable).

    Args:
        device: where the trial runs (CUDA: the allocator's peak; otherwise the resident set).
        interval: seconds between samples where the kernel's peak cannot be reset (see the module).
    """

    def __init__(self, device: torch.device, interval: float = 0.02):
        self.device = device
        self.interval = interval
        self.megabytes: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._start = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        with _open_lock:
            self._fold_kernel_peak_into_open()
            if _reset_kernel_peak():
                self._start = self._peak = _rss_bytes()
                _open_kernel_peaks.append(self)
                return self
        self._start = self._peak = _rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _fold_kernel_peak_into_open() -> None:
        peak = _kernel_peak_bytes()
        for measurement in _open_kernel_peaks:
            measurement._peak = max(measurement._peak, peak)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.megabytes = max(0, torch.cuda.max_memory_allocated(self.device) - self._start) / 2**20
            return
        if self._thread is None:
            with _open_lock:
                _open_kernel_peaks.remove(self)
                peak = max(self._peak, _kernel_peak_bytes(), _rss_bytes())
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes())
        if peak > 0:  # 0: no /proc to read
            self.megabytes = max(0, peak - self._start) / 2**20
