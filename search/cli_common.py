"""Shared CLI plumbing: one-line errors, quiet third-party logs, the data directory."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

from core.data_dir import DATA_DIR_ENV, default_data_dir

if TYPE_CHECKING:
    import argparse

    import torch

__all__ = [
    "DATA_DIR_ENV",
    "DEVICE_HELP",
    "add_device_argument",
    "configure_logging",
    "default_data_dir",
    "device_or_fail",
    "fail",
    "fail_lines",
    "refuse_dash_values",
    "write_refusals_end_the_run",
]


def fail(program: str, message: str, code: int = 2) -> NoReturn:
    """Print one line naming the problem and exit non-zero."""
    print(f"{program}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def fail_lines(program: str, problems: list[str], code: int = 2) -> NoReturn:
    """Print each problem on a line of its own (every problem of a data file at once) and exit."""
    for problem in problems:
        print(f"{program}: error: {problem}", file=sys.stderr)
    raise SystemExit(code)


DEVICE_HELP = "where trials train and CLIP encodes: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N (default auto)"


def add_device_argument(parser: argparse.ArgumentParser, help: str = DEVICE_HELP) -> None:
    parser.add_argument("--device", default="auto", metavar="DEVICE", help=help)


def device_or_fail(program: str, text: str | None) -> torch.device:
    """`--device`, checked against this machine (training.devices.parse_device), or exit 2 with one line."""
    from training.devices import DeviceError, parse_device

    try:
        return parse_device(text)
    except DeviceError as error:
        fail(program, str(error))


def configure_logging() -> None:
    """Our progress lines on stderr; third-party INFO chatter (open_clip, transformers) off."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("search", "training", "models", "storage"):
        logging.getLogger(name).setLevel(logging.INFO)
    import optuna
    import transformers

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def refuse_dash_values(program: str, argv: list[str] | None, flags: tuple[str, ...]) -> None:
    """Refuse ``--budget -5%`` with a clear line before argparse says only "expected one argument".

    argparse takes a value starting with '-' (other than a plain negative number) for an option,
    so the user never learns why; the value is negative, which no such flag accepts.
    """
    args = sys.argv[1:] if argv is None else argv
    for flag, value in zip(args, args[1:]):
        if flag in flags and value.startswith("-") and (value[1:2].isdigit() or value[1:2] == "."):
            fail(program, f"{flag} {value!r} is negative; {flag} must be positive, such as {flag} 5%")


@contextmanager
def write_refusals_end_the_run(program: str, url: str) -> Iterator[None]:
    """A full disk or a read-only study database ends the command with one line saying so, exit 1.

    Retrying cannot help, and the error would otherwise surface as a long traceback ending in
    Optuna's bookkeeping. The trial that was running cannot be marked failed (nothing can be
    written); its heartbeats stop, and the next process to open the study releases and retries it.
    """
    from storage.engine import write_refusal
    from storage.urls import redact

    try:
        yield
    except Exception as error:
        cause = write_refusal(error)
        if cause is None and _operational(error) and _read_only_folder(url):
            cause = "it is read-only"  # SQLite cannot even open a database whose folder it cannot write
        if cause is None:
            raise
        if _no_space_left(url):  # SQLite reports a journal it cannot grow as a disk I/O error
            cause = "its disk is full"
        fail(
            program,
            f"the study database {redact(url)} refuses writes: {cause}; free space on its disk (or make it writable), then run "
            "the same command again: the trial that was running is released and retried then",
            code=1,
        )


def _no_space_left(url: str) -> bool:
    """Whether a SQLite database's file system has (next to) no free space left."""
    import shutil

    from storage.urls import is_sqlite, sqlite_path

    path = sqlite_path(url) if is_sqlite(url) else None
    if path is None or not path.parent.exists():
        return False
    return shutil.disk_usage(path.parent).free < 1 << 20


def _read_only_folder(url: str) -> bool:
    """Whether a SQLite database's folder is on a file system this process cannot write."""
    import os

    from storage.urls import is_sqlite, sqlite_path

    path = sqlite_path(url) if is_sqlite(url) else None
    return path is not None and path.parent.exists() and not os.access(path.parent, os.W_OK)


def _operational(error: BaseException | None) -> bool:
    """Whether the database driver raised `error` or what caused it (not a bug of ours)."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OperationalError | sqlite3.OperationalError):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False
