"""Checks on a storage URL that a CLI will keep results in: SQLite must name a usable file.

``validate_storage_url`` accepts any SQLite URL, because tests and tools use in-memory
databases. A search, a worker or the dashboard given one would lose every result at exit (or
show an empty, different database), and SQLite's own errors for a folder or a non-database
file come late and as tracebacks; these checks say so up front, creating nothing.
"""

from __future__ import annotations

from storage.urls import StorageURLError, is_sqlite, redact, sqlite_path, validate_storage_url

__all__ = ["validate_persistent_storage_url"]

_SQLITE_HEADER = b"SQLite format 3\x00"
_FIX = "give a file path such as 'sqlite:///path/to/studies.db'"


def validate_persistent_storage_url(url: str) -> str:
    """Validate ``url`` like ``validate_storage_url``, and for SQLite require a usable database file.

    Args:
        url: A SQLAlchemy database URL from --storage or the environment.

    Returns:
        The URL, stripped.

    Raises:
        StorageURLError: In-memory SQLite; a path that is a folder; a parent that is a file;
            an existing file that is not a SQLite database. The message redacts the URL.
    """
    url = validate_storage_url(url)
    if not is_sqlite(url):
        return url
    path = sqlite_path(url)
    shown = redact(url)
    if path is None:
        raise StorageURLError(f"--storage {shown!r} is an in-memory SQLite database, whose results vanish at exit; {_FIX}")
    if path.is_dir():
        raise StorageURLError(f"--storage {shown!r} names the folder {str(path)!r}, not a file; {_FIX} inside it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StorageURLError(f"--storage {shown!r}: {str(parent)!r} is a file, not a folder; {_FIX} in a folder")
            break
    if path.is_file():
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
        if header and header != _SQLITE_HEADER:  # an empty file is a new database to SQLite
            raise StorageURLError(f"--storage {shown!r}: {str(path)!r} is not a SQLite database; give a new path or the study's .db file")
    return url
