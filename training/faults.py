"""Fault injection for reliability tests: make chosen trials fail the way real trials do.

    VLPETL_INJECT_FAULTS="nan@3,oom@5:2,kill@7" python -m search.worker --study S --storage URL

Each entry is ``KIND@TRIAL[:STEP]``: when trial number TRIAL reaches training step STEP
(default 1), the training loop

- ``nan``: turns that step's loss into NaN, so the loop's own non-finite check fails the trial;
- ``oom``: raises ``torch.OutOfMemoryError``, as CUDA's allocator does;
- ``kill``: SIGKILLs its own process, a worker dying mid-trial (no cleanup, no last write).

The faults go through the real code paths (the loop's check, the objective's error handling,
Optuna's heartbeats); only their cause is artificial. Unset, the hook costs one dictionary
lookup per step. The variable is read in this module only, so no other code knows about
faults beyond calling :func:`active_trial` (the objective) and :func:`inject` (the loop).
"""

from __future__ import annotations

import functools
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = ["FAULTS_ENV", "KINDS", "Fault", "FaultSpecError", "active_trial", "inject", "parse_faults"]

FAULTS_ENV = "VLPETL_INJECT_FAULTS"
KINDS = ("nan", "oom", "kill")
_ENTRY = re.compile(r"(?P<kind>[a-z]+)@(?P<trial>\d+)(?::(?P<step>\d+))?")

# The trial this process is training now; set by the objective around `run_trial`. A process
# trains one trial at a time (Optuna's n_jobs=1), so a module-level value is enough.
_current_trial: int | None = None


class FaultSpecError(ValueError):
    """A malformed ``VLPETL_INJECT_FAULTS`` value."""


@dataclass(frozen=True)
class Fault:
    kind: str
    trial: int
    step: int = 1


def parse_faults(text: str) -> dict[tuple[int, int], Fault]:
    """Parse ``KIND@TRIAL[:STEP],...`` into (trial, step) -> fault; every problem at once.

    Raises:
        FaultSpecError: an entry that does not parse, an unknown kind, step 0, or two faults
            for the same trial and step.
    """
    faults: dict[tuple[int, int], Fault] = {}
    problems = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        match = _ENTRY.fullmatch(entry)
        if match is None or match["kind"] not in KINDS:
            problems.append(f"{entry!r} is not KIND@TRIAL[:STEP] with KIND one of {', '.join(KINDS)}")
            continue
        fault = Fault(match["kind"], int(match["trial"]), int(match["step"] or 1))
        if fault.step < 1:
            problems.append(f"{entry!r}: steps count from 1")
        elif (fault.trial, fault.step) in faults:
            problems.append(f"{entry!r}: trial {fault.trial} already has a fault at step {fault.step}")
        else:
            faults[(fault.trial, fault.step)] = fault
    if problems:
        raise FaultSpecError(f"{FAULTS_ENV}={text!r}: " + "; ".join(problems) + ", e.g. 'nan@3,oom@5:2,kill@7'")
    return faults


@functools.cache
def _plan(text: str) -> dict[tuple[int, int], Fault]:
    return parse_faults(text)


@contextmanager
def active_trial(number: int) -> Iterator[None]:
    """Mark trial ``number`` as the one this process trains (the objective wraps ``run_trial``)."""
    global _current_trial
    _current_trial = number
    try:
        yield
    finally:
        _current_trial = None


def inject(step: int, loss: torch.Tensor) -> torch.Tensor:
    """The loss of training step ``step`` (from 1), with the planned fault of the active trial.

    Returns:
        ``loss`` unchanged, or NaN for a ``nan`` fault.

    Raises:
        torch.OutOfMemoryError: an ``oom`` fault.
        FaultSpecError: a malformed ``VLPETL_INJECT_FAULTS``.
    """
    text = os.environ.get(FAULTS_ENV)
    if not text or _current_trial is None:
        return loss
    fault = _plan(text).get((_current_trial, step))
    if fault is None:
        return loss
    where = f"injected by {FAULTS_ENV} at step {step} of trial {_current_trial}"
    if fault.kind == "nan":
        return loss * float("nan")  # keeps the graph: the loop's own check must catch it
    if fault.kind == "oom":
        raise torch.OutOfMemoryError(f"out of memory trying to allocate the next step's activations ({where})")
    os.kill(os.getpid(), signal.SIGKILL)  # "kill": nothing after this line runs
    raise AssertionError("unreachable")
