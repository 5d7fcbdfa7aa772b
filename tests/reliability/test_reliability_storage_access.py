"""Storage URLs that cannot be used, and credentials that must never be shown or stored.

Unsupported schemes are covered by tests/storage/test_storage_urls.py; here the URL parses but
the server is down, the host unknown, the password wrong or the database missing, and a real
study on PostgreSQL is searched for its password afterwards (PostgreSQL tests skip without
``VLPETL_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from reliability_helpers import POSTGRES_ENV, postgres_schema, run_cli
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from search import export, worker

SECRET = "Zebra-S3cret-42"  # a password nobody has: it appears only where it leaked


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres(**parts) -> str:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_ENV} to reach a real PostgreSQL server")
    return make_url(base).set(**parts).render_as_string(hide_password=False)


CASES = {
    "server down": (lambda: f"postgresql+psycopg://vlpetl:{SECRET}@127.0.0.1:{_free_port()}/studies", "Connection refused"),
    "unknown host": (lambda: f"postgresql+psycopg://vlpetl:{SECRET}@no-such-host.invalid/studies", "no-such-host.invalid"),
    "wrong password": (lambda: _postgres(password=SECRET), "password authentication failed"),
    "missing database": (lambda: _postgres(database=f"nodb_{uuid.uuid4().hex[:6]}"), "does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("program", [worker, export], ids=["worker", "export"])
def test_an_unusable_database_is_named_with_the_cause_and_no_password(program, case, tmp_path: Path, monkeypatch, capsys) -> None:
    make, cause = CASES[case]
    url = make()
    monkeypatch.chdir(tmp_path)
    argv = ["--study", "s", "--storage", url]
    argv += ["--budget", "5%", "--out", "r.yaml"] if program is export else []
    with pytest.raises(SystemExit) as exited:
        program.main(argv)
    assert exited.value.code == 2
    message = capsys.readouterr().err
    assert "cannot connect to" in message and cause in message and "check that the server runs" in message, message
    assert ":***@" in message or SECRET not in url, message
    assert SECRET not in message
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_launch_names_a_wrong_password_before_preparing_anything(tmp_path: Path, monkeypatch, capsys) -> None:
    from search import launch

    monkeypatch.chdir(tmp_path)
    url = CASES["wrong password"][0]()
    with pytest.raises(SystemExit) as exited:
        launch.main(["--budget", "5%", "--tasks", "vqa", "--data-dir", str(tmp_path / "data"), "--storage", url])
    assert exited.value.code == 2
    message = capsys.readouterr().err
    assert "cannot connect to" in message and "password authentication failed" in message and SECRET not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_real_study_keeps_its_password_out_of_logs_database_and_exports(data_dir: Path, env, tmp_path: Path) -> None:
    app = f"rel-creds-{uuid.uuid4().hex[:8]}"
    with postgres_schema(app) as url:
        password = make_url(url).password
        assert password, f"{POSTGRES_ENV} must carry a password for this test"
        # The ways a URL's password would show: in a URL, in a libpq key=value string.
        leaks = (f":{password}@", f"password={password}", f"'password': '{password}'")
        space = tmp_path / "space.yaml"
        space.write_text("methods:\n  vl_only:\n    learning_rate_scale: [1.0]\noptimizer: [adamw]\n")
        launch = run_cli(
            "search.launch", "--workers", "1", "--confirm-seeds", "1", "--budget", "5%", "--trials", "1", "--steps", "1", "--tasks", "vqa", "--rungs", "0",
            "--no-warm-start", "--no-reference", "--space", str(space), "--study", "creds", "--storage", url,
            "--data-dir", str(data_dir),
        )  # fmt: skip
        assert launch.returncode == 0, launch.stderr[-3000:]
        recipe = tmp_path / "best.yaml"
        exported = run_cli("search.export", "--study", "creds", "--storage", url, "--budget", "5%", "--out", str(recipe))
        assert exported.returncode == 0, exported.stderr[-3000:]
        worker_run = run_cli("search.worker", "--study", "creds", "--storage", url, "--data-dir", str(data_dir))
        assert worker_run.returncode == 0, worker_run.stderr[-3000:]
        schema = make_url(url).query["options"].split("=", 1)[1]
        engine = create_engine(url)
        with engine.connect() as connection:
            tables = (
                connection.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"), {"schema": schema}
                )
                .scalars()
                .all()
            )
            # Every row of every table, Optuna's and ours, as text.
            stored = "\n".join(str(row) for table in tables for row in connection.execute(text(f'SELECT * FROM "{schema}"."{table}"')))
        engine.dispose()
    assert {"trial_results", "studies", "trial_user_attributes"} <= set(tables)
    assert "vl_only" in stored, "the dump holds the study's rows"
    outputs = {
        "launch": launch.stdout + launch.stderr, "export": exported.stdout + exported.stderr,
        "worker": worker_run.stdout + worker_run.stderr, "recipe": recipe.read_text(), "database": stored,
    }  # fmt: skip
    assert ":***@" in outputs["launch"] and ":***@" in outputs["recipe"], "the URL is shown, redacted"
    for where, content in outputs.items():
        assert not any(leak in content for leak in leaks), f"the password appears in the {where}"
