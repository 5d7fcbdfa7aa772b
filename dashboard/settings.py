"""Where the dashboard finds its database: ``--storage``, then the environment."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from storage.urls import STORAGE_ENV, default_storage_url

__all__ = ["DEFAULT_DATA_DIR", "STORAGE_ENV", "resolve_storage_url"]

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
