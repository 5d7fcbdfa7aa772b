"""Build steps run on pinned CPU kernels: the same bytes on every x86-64 machine with AVX2.

Why: torch picks its CPU kernels from the processor it runs on. ATen's vectorised kernels use
the widest instruction set it finds (AVX-512, AVX2, or none), MKL's matrix products and oneDNN's
convolutions likewise, and each set orders and fuses the float operations its own way. Training
amplifies the last-bit differences: on one machine, builds of the base family with ATen's
kernels set to AVX-512 (its own), AVX2 and none wrote three different CLIP and T5 weight files
(T5 held-out perplexity 2.55, 2.47 and 2.65), so a worker that built its own copy of the
embedded backbone on another kind of processor was refused by the study's backbone pin
(models.backbone_pin), and the same `make demo` scored differently on two machines. The thread
count is fixed for the same reason (training.pretrain.threads).

These kernel choices are read once, when the libraries load, and cannot change in a process
that has already run torch. So a build step runs in a fresh Python process started with them
pinned (AVX2: every x86-64 processor since 2013 has it), through the standard library's process
pool, which sends the arguments and the result (or the step's error) across. That costs one torch
import per step (seconds; a step trains for a minute or more, once per data directory). Where AVX2 is not there (ARM, or an x86 processor without it) the step runs in this
process, and its bytes match only machines of the same kind.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import platform
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from training.pretrain import threads

__all__ = ["PINNED_KERNELS", "PinnedBuildFailed", "kernel_identity", "pinned_build"]

log = logging.getLogger(__name__)

# ATen's kernels, MKL's code path ("conditional numerical reproducibility") and oneDNN's, all on AVX2.
PINNED_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}

F = TypeVar("F", bound=Callable[..., Any])


class PinnedBuildFailed(RuntimeError):
    """The build step's process ended without a result (killed, or out of memory)."""


def pinned_build(function: F) -> F:
    """Run `function` on BUILD_THREADS threads and pinned CPU kernels (in a fresh process when
    this one's kernels are not the pinned ones); its arguments, result and errors must pickle."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        if _runs_here():
            with threads.build_threads():
                return function(*args, **kwargs)
        return _in_pinned_process(run, args, kwargs)

    return run  # type: ignore[return-value]


def kernel_identity() -> str:
    """The kernels the build steps run on, for the build's manifest: builds on other kernels are other bytes."""
    return "x86-64 avx2 (aten, mkl, onednn)" if _has_avx2() else f"{platform.machine().lower() or 'unknown'} native"


def _runs_here() -> bool:
    """Whether this process already has the pinned kernels, or pinning cannot apply here."""
    if all(os.environ.get(name) == value for name, value in PINNED_KERNELS.items()):
        return True
    return not _has_avx2()


@functools.cache
def _has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux says; elsewhere (macOS, Windows) every x86-64 machine torch supports has it
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
        if " avx2" not in flags:
            log.info("this processor has no AVX2: the backbone build runs on its own kernels, its bytes match machines like it only")
            return False
    return True


def _in_pinned_process(function: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    count = threads.BUILD_THREADS  # read now: benchmarks/build_threads.py sets it to compare counts
    pinned = {**PINNED_KERNELS, "OMP_NUM_THREADS": str(count), "MKL_NUM_THREADS": str(count)}
    level = logging.getLogger("training").getEffectiveLevel()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this one's torch
    try:
        with ProcessPoolExecutor(1, mp_context=context, initializer=_start_child, initargs=(count, level, os.getpid())) as pool:
            with _environment(pinned):  # the process starts inside the first submit, with this environment
                step = pool.submit(os.getpid).result()
            future = pool.submit(function, *args, **kwargs)
            try:
                return future.result()  # the step's own error, if it raised one
            except BaseException:
                if not future.done():
                    # Ctrl-C or a stop while the step trains: end it now (leaving the pool would
                    # wait for the step to finish), then let the stop go on.
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(step, signal.SIGKILL)
                raise
    except BrokenProcessPool:
        raise PinnedBuildFailed(
            f"the build step {function.__qualname__} ran in a process that ended without a result (killed, or out of "
            "memory; its messages are above). Free memory and run again: the build restarts cleanly"
        ) from None


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_child(count: int, level: int, parent: int) -> None:
    threads.BUILD_THREADS = count
    # A parent killed outright (SIGTERM, SIGKILL) cannot end the step: the step ends itself.
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="pinned-build-parent").start()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("training", "models"):
        logging.getLogger(name).setLevel(level)


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)
