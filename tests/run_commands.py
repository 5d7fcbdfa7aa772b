"""Run a command as a user would: `python -m MODULE ARGS` in a subprocess, or its `main` in this process."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from typing import Callable


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=900)
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def in_process(main: Callable[[list[str]], int | None], *args: str) -> subprocess.CompletedProcess:
    """Run a command's `main(args)` in this process, as `python -m` runs it: its exit code and
    what it printed, as `cli` returns them. For input a command refuses before it trains: a
    subprocess spends most of its 13 s importing torch and transformers, which the test process
    has already imported (search.launch's own test of a fast failure stays a subprocess)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse's errors and the commands' `fail`
            code = exit.code
    if isinstance(code, str):  # sys.exit("message"): Python prints it and exits 1
        err.write(code + "\n")
        code = 1
    return subprocess.CompletedProcess(["main", *args], code or 0, out.getvalue(), err.getvalue())
