"""Secrets: a password in a storage URL, in the user info or the query string, is never printed or stored.

SQLAlchemy hides only ``user:password@``; libpq also takes ``?password=`` (and ``sslpassword``), which
``storage.redact`` hides too. The CLIs run as subprocesses against a server that is not there
(port 1 refuses at once), so what they print is what a user's terminal or log would hold.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import REPO

from core.recipes import dump_recipe, recipe_from_row
from dashboard.settings import shown_storage
from storage import redact

SECRET = "s3cret"
QUERY_URL = f"postgresql+psycopg://alice@127.0.0.1:1/db?password={SECRET}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (QUERY_URL, "postgresql+psycopg://alice@127.0.0.1:1/db?password=***"),
        (f"postgresql://alice:{SECRET}@h/db", "postgresql://alice:***@h/db"),
        (
            f"postgresql://h/db?sslmode=require&PGPASSWORD={SECRET}&sslpassword={SECRET}",
            "postgresql://h/db?sslmode=require&PGPASSWORD=***&sslpassword=***",
        ),
        (f"postgresql://h/db?Passwd={SECRET}&pass={SECRET}", "postgresql://h/db?Passwd=***&pass=***"),
        (f"sqlite:///x.db?password={SECRET}", "sqlite:///x.db?password=***"),
        ("sqlite:///x.db?mode=ro", "sqlite:///x.db?mode=ro"),
    ],
)
def test_redact_hides_a_password_in_the_user_info_and_the_query(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_the_dashboard_sidebar_hides_a_query_password(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}?password={SECRET}"
    assert SECRET not in shown_storage(url, cwd=tmp_path)
    assert SECRET not in shown_storage(url, cwd=Path("/nonexistent"))


def test_an_exported_recipe_records_the_redacted_url() -> None:
    row = {
        "config": {"method": "lora"},
        "trial_number": 0,
        "study_name": "s",
        "score": 1.0,
        "trainable_params": 1,
        "total_params": 10,
        "trainable_pct": 10.0,
    }
    text = dump_recipe(recipe_from_row(row, storage_url=redact(QUERY_URL)), "yaml")
    assert SECRET not in text and "password=***" in text


@pytest.mark.parametrize(
    "argv",
    [
        [
            "search.launch",
            "--workers",
            "1",
            "--confirm-seeds",
            "1",
            "--budget",
            "5%",
            "--storage",
            QUERY_URL,
            "--data-dir",
            "d",
            "--backbone",
            "clip-vit-b32+bart-base",
            "--random-init",
        ],
        ["search.worker", "--study", "s", "--storage", QUERY_URL],
        ["search.export", "--study", "s", "--storage", QUERY_URL, "--budget", "5%", "--out", "r.yaml"],
        ["dashboard", "--storage", QUERY_URL.replace("+psycopg", "+asyncpg")],
    ],
    ids=["launch", "worker", "export", "dashboard"],
)
def test_no_cli_prints_a_query_string_password(argv: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert "password=***" in result.stderr, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing may be written"
