"""Storage URLs: the default location, validation and password redaction.

The study database is named by one SQLAlchemy URL, shared by Optuna's RDB
storage and our ``trial_results`` table. Only SQLite (single machine) and
PostgreSQL (many workers) are supported, the two backends the storage test
suite runs against.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "ACCEPTED_FORMS",
    "STORAGE_ENV",
    "StorageURLError",
    "default_storage_url",
    "is_secret_key",
    "is_sqlite",
    "redact",
    "sqlite_path",
    "validate_storage_url",
]

# The storage URL when no --storage is given (dashboard, worker). An environment variable,
# unlike a flag, is not shown to every user of the machine by ps: a PostgreSQL URL carries
# its password.
STORAGE_ENV = "VLPETL_STORAGE"

ACCEPTED_FORMS = (
    "sqlite:///relative/path/studies.db",
    "sqlite:////absolute/path/studies.db",
    "postgresql://user:password@host:5432/dbname",
    "postgresql+psycopg://user:password@host:5432/dbname",
    "postgresql+psycopg2://user:password@host:5432/dbname",
)

# Async drivers cannot back Optuna's synchronous RDB storage nor our engine.
_ASYNC_DRIVERS = frozenset({"asyncpg", "psycopg_async"})
_SQLITE_DRIVERS = frozenset({"pysqlite"})


class StorageURLError(ValueError):
    """A storage URL that cannot be parsed or names an unsupported database."""


def default_storage_url(data_dir: Path) -> str:
    """Return the default SQLite URL, ``sqlite:///<abs data_dir>/studies.db``.

    Args:
        data_dir: Folder that holds the database; made absolute so the URL
            means the same file whatever the working directory of a worker.

    Returns:
        A SQLite URL with an absolute path.
    """
    return f"sqlite:///{(Path(data_dir).resolve() / 'studies.db').as_posix()}"


def _accepted() -> str:
    return "accepted forms: " + ", ".join(ACCEPTED_FORMS)


def _parse(url: str) -> URL:
    if not isinstance(url, str) or not url.strip():
        raise StorageURLError(f"Storage URL must be a non-empty string, but got {url!r}; {_accepted()}.")
    try:
        return make_url(url.strip())
    except (ArgumentError, ValueError) as exc:
        # The message must not echo the URL: it may hold a password.
        raise StorageURLError(
            f"Storage URL could not be parsed ({exc.__class__.__name__}); expected 'dialect[+driver]://...', {_accepted()}."
        ) from None


def validate_storage_url(url: str) -> str:
    """Check that ``url`` names a supported database and return it stripped.

    Args:
        url: A SQLAlchemy database URL.

    Returns:
        The URL, with surrounding whitespace removed.

    Raises:
        StorageURLError: If the URL cannot be parsed, names a backend other
            than SQLite or PostgreSQL, or an async driver.
    """
    parsed = _parse(url)
    # Split by hand: get_driver_name() imports the dialect, which fails for
    # the very backends we want to reject with a helpful message.
    backend, _, driver = parsed.drivername.partition("+")
    shown = redact(url)
    if backend == "postgres":
        raise StorageURLError(
            f"Storage URL {shown!r} uses the scheme 'postgres', which SQLAlchemy does not accept; write 'postgresql://' instead."
        )
    if backend not in ("sqlite", "postgresql"):
        raise StorageURLError(
            f"Storage URL {shown!r} uses the backend {backend!r}, but only sqlite and postgresql are supported; {_accepted()}."
        )
    if driver in _ASYNC_DRIVERS:
        raise StorageURLError(
            f"Storage URL {shown!r} uses the async driver {driver!r}, but the "
            f"storage needs a synchronous one; drop '+{driver}' or use "
            f"'+psycopg' / '+psycopg2'."
        )
    if backend == "sqlite" and driver and driver not in _SQLITE_DRIVERS:
        raise StorageURLError(
            f"Storage URL {shown!r} uses the SQLite driver {driver!r}; only the "
            f"standard library driver is supported: write 'sqlite:///path'."
        )
    return url.strip()


# Query-string keys whose value is a secret. libpq takes ``password`` and ``sslpassword`` in the
# query as well as in the user info, and drivers pass unknown keys on to it; matching any key that
# contains one of these words (case-insensitively) also hides ``PGPASSWORD``, ``passwd``, ``pwd``
# and tokens a proxy may accept. Hiding a harmless value (``passfile``) costs nothing.
_SECRET_KEY_WORDS = ("pass", "pwd", "secret", "token")
HIDDEN = "***"


def is_secret_key(key: str) -> bool:
    """Whether the query-string parameter ``key`` carries a secret (see ``_SECRET_KEY_WORDS``)."""
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_KEY_WORDS)


def redact(url: str | URL) -> str:
    """Return ``url`` with every password replaced by ``***``, safe to log, show or store.

    SQLAlchemy's ``render_as_string(hide_password=True)`` hides only the user-info password
    (``user:password@``); a password in the query string (``?password=...``, which libpq
    accepts) would be printed as is, so secret query parameters are hidden here too.

    Args:
        url: A SQLAlchemy database URL, as text or a ``URL`` (``engine.url``).

    Returns:
        The URL with its passwords hidden; a fixed placeholder if it cannot
        be parsed (the raw text might still contain a password).
    """
    try:
        parsed = url if isinstance(url, URL) else make_url(url.strip())
        shown = parsed.set(query={}).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, AttributeError, TypeError):
        return "<unparsable storage URL>"
    pairs = []
    for key, values in parsed.query.items():
        for value in (values,) if isinstance(values, str) else values:
            pairs.append((key, HIDDEN if is_secret_key(key) else value))
    return f"{shown}?{urlencode(pairs, safe='*/:')}" if pairs else shown


def is_sqlite(url: str) -> bool:
    """Return whether ``url`` names a SQLite database.

    Args:
        url: A validated storage URL.

    Returns:
        True for ``sqlite://...`` URLs.
    """
    return _parse(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """Return the database file of a SQLite URL, or None for an in-memory one.

    Args:
        url: A validated SQLite URL.

    Returns:
        The absolute path of the database file, or None for ``sqlite://``
        and ``sqlite:///:memory:``.

    Raises:
        StorageURLError: If ``url`` is not a SQLite URL.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        raise StorageURLError(f"Expected a SQLite URL, but got {redact(url)!r}; write 'sqlite:///path'.")
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        # 'file:' URIs are SQLite's own syntax; treat them as not-a-plain-path.
        return None
    return Path(database).resolve()
