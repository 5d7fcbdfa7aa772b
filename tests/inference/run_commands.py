"""Run a command as a user would: `python -m MODULE ARGS` in a subprocess."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=900)
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
    return result
