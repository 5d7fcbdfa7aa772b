"""Where a machine keeps the generated benchmark, the backbones and the feature cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "data_dir_problem", "default_data_dir", "nearest_existing"]

DATA_DIR_ENV = "VLPETL_DATA_DIR"


def default_data_dir() -> Path:
    """`$VLPETL_DATA_DIR`, else ./data: every command's `--data-dir` default."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def nearest_existing(path: Path) -> Path:
    """`path` itself, or its nearest ancestor that exists: where creating it would start."""
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def data_dir_problem(path: Path, flag: str = "--data-dir") -> str | None:
    """Why `path` cannot be (or become) a data directory, as one line naming the value and the fix;
    None when it can. Checked before any work: a build or a study must not fail at its first write.

    A missing folder is fine when it can be created: its nearest existing ancestor must be a
    writable folder, and no part of its name longer than the file system allows.
    """
    shown = str(path)
    absolute = path.absolute()
    try:
        limit = os.pathconf(absolute.anchor or "/", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    too_long = next((part for part in absolute.parts if len(os.fsencode(part)) > limit), None)
    if too_long is not None:  # checked first: even asking whether such a path exists fails
        return f"{flag} {shown[:60]!r}... cannot be created: a name in it is longer than {limit} bytes; pass a shorter path"
    if path.exists():
        if not path.is_dir():
            return f"{flag} {shown!r} is a file; pass a folder (created when missing)"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{flag} {shown!r} is not writable by this user; pass a folder you can write to"
        return None
    ancestor = nearest_existing(absolute.parent)
    if not ancestor.is_dir():
        return f"{flag} {shown!r} cannot be created: {str(ancestor)!r} is a file; pass a folder (created when missing)"
    if not os.access(ancestor, os.W_OK | os.X_OK) or not _creatable_in(ancestor):
        return f"{flag} {shown!r} cannot be created in {str(ancestor)!r} (not writable); pass a folder you can write to"
    return None


def _creatable_in(folder: Path) -> bool:
    # os.access trusts permission bits; pseudo file systems (/proc, /sys) refuse new entries
    # even to root, so try one (removed at once).
    probe = folder / f".vlpetl-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True
