"""Shared CLI plumbing: one-line errors, quiet third-party logs, the data directory."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

from core.data_dir import DATA_DIR_ENV, default_data_dir

__all__ = ["DATA_DIR_ENV", "configure_logging", "default_data_dir", "fail", "fail_lines", "refuse_dash_values"]


def fail(program: str, message: str, code: int = 2) -> NoReturn:
    """Print one line naming the problem and exit non-zero."""
    print(f"{program}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def fail_lines(program: str, problems: list[str], code: int = 2) -> NoReturn:
    """Print each problem on a line of its own (every problem of a data file at once) and exit."""
    for problem in problems:
        print(f"{program}: error: {problem}", file=sys.stderr)
    raise SystemExit(code)


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
