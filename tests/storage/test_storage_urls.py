"""URL defaults, validation and redaction (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import StorageURLError, default_storage_url, redact, validate_storage_url


def test_default_url_is_absolute_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = default_storage_url(Path("data"))
    assert url == f"sqlite:///{(tmp_path / 'data' / 'studies.db').resolve().as_posix()}"
    assert url.startswith("sqlite:////")  # three slashes + the absolute path's own


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///studies.db",
        "sqlite:////tmp/x/studies.db",
        "postgresql://user:pw@localhost:5432/db",
        "postgresql+psycopg://user@localhost/db",
        "postgresql+psycopg2://user@localhost/db",
        "  sqlite:///padded.db  ",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert validate_storage_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "non-empty"),
        ("not a url", "could not be parsed"),
        ("mysql://u:pw@h/db", "'mysql'"),
        ("postgres://u:pw@h/db", "write 'postgresql://'"),
        ("postgresql+asyncpg://u:pw@h/db", "async driver"),
    ],
)
def test_rejected_urls_explain_the_fix(url: str, fragment: str) -> None:
    with pytest.raises(StorageURLError) as info:
        validate_storage_url(url)
    message = str(info.value)
    assert fragment in message
    assert "pw" not in message  # the rejected URL is shown redacted
    assert isinstance(info.value, ValueError)


def test_unsupported_backend_lists_accepted_forms() -> None:
    with pytest.raises(StorageURLError, match="accepted forms: sqlite:///"):
        validate_storage_url("oracle://u@h/db")


def test_redact_hides_password() -> None:
    shown = redact("postgresql+psycopg://alice:s3cr%40t@db.example:5432/studies")
    assert "s3cr" not in shown
    assert shown == "postgresql+psycopg://alice:***@db.example:5432/studies"


def test_redact_keeps_urls_without_password() -> None:
    assert redact("sqlite:///data/studies.db") == "sqlite:///data/studies.db"
    assert "pw" not in redact("::: pw")
