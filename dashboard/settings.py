"""Where the dashboard finds its database: ``--storage``, then the environment."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from storage.urls import (
    STORAGE_ENV,
    default_storage_url,
    is_sqlite,
    redact,
    sqlite_path,
)

__all__ = ["DEFAULT_DATA_DIR", "STORAGE_ENV", "resolve_storage_url", "shown_storage"]

DEFAULT_DATA_DIR = Path("data")


def resolve_storage_url(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """Pick the storage URL: ``--storage URL``, else ``$VLPETL_STORAGE``, else the default.

    Unknown arguments are ignored, because Streamlit and test runners put
    their own arguments in ``sys.argv``.

    Args:
        argv: Command-line arguments, without the program name.
        environ: The process environment.

    Returns:
        The URL, not yet validated; the default is ``data/studies.db`` under
        the working directory.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--storage", default=None)
    known, _ = parser.parse_known_args(list(argv))
    return known.storage or environ.get(STORAGE_ENV) or default_storage_url(DEFAULT_DATA_DIR)


def shown_storage(url: str, cwd: Path | None = None) -> str:
    """The storage URL as the page shows it: no password, and a SQLite file under the
    working directory by its relative path (``sqlite:///data/studies.db``), which is both
    shorter and what the user would type there; the page names no folder of this machine
    that the user did not choose to show.

    Args:
        url: A validated storage URL.
        cwd: The folder paths are made relative to; the working directory if None.
    """
    if not is_sqlite(url):
        return redact(url)
    path = sqlite_path(url)
    if path is None:  # in-memory
        return redact(url)
    try:
        relative = path.relative_to((cwd or Path.cwd()).resolve()).as_posix()
    except ValueError:
        return redact(url)
    # Keep the query (redacted: it may carry a password) after the shortened path.
    query = redact(url).partition("?")[2]
    return f"sqlite:///{relative}" + (f"?{query}" if query else "")
