"""``python -m dashboard``: command line, URL passing, and no torch anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import PAGES

import dashboard.__main__ as launcher
from dashboard.settings import STORAGE_ENV, resolve_storage_url

ROOT = Path(__file__).resolve().parents[2]


def test_command_binds_locally_and_headless() -> None:
    command = launcher.build_command(port=8600, address="127.0.0.1")
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert command[4].endswith("dashboard/app.py")
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options == {
        "--server.headless": "true",
        "--server.address": "127.0.0.1",
        "--server.port": "8600",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "viewer",
    }


def test_main_passes_the_url_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[FakeProcess] = []

    class FakeProcess:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            self.command, self.env = command, env
            started.append(self)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(launcher.subprocess, "Popen", FakeProcess)
    url = "postgresql://alice:s3cret@db/studies"
    assert launcher.main(["--storage", url, "--port", "9000"]) == 0
    (process,) = started
    assert process.env[STORAGE_ENV] == url
    assert not any("s3cret" in part for part in process.command)  # not visible in `ps`
    assert "9000" in process.command


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--storage", "mysql://x/y"], "only sqlite and postgresql are supported"),
        (["--port", "0"], "--port must be in 1..65535, but got 0"),
    ],
)
def test_main_rejects_bad_arguments(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        launcher.main(argv)
    assert info.value.code == 2
    assert fragment in capsys.readouterr().err


def test_storage_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {STORAGE_ENV: "sqlite:///env.db"}
    assert resolve_storage_url(["-q", "--storage", "sqlite:///arg.db"], env) == "sqlite:///arg.db"
    assert resolve_storage_url(["tests/dashboard", "-q"], env) == "sqlite:///env.db"
    default = resolve_storage_url([], {})
    assert default == f"sqlite:///{(tmp_path / 'data' / 'studies.db').as_posix()}"


def test_dashboard_modules_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import core, core.budget, core.formats, core.pareto, core.recipes, core.results\n"
        "import storage, storage.results\n"
        "import dashboard, dashboard.processing, dashboard.charts, dashboard.settings\n"
        "import dashboard.details, dashboard.history, dashboard.importance\n"
        "import dashboard.sources, dashboard.ui, dashboard.__main__, dashboard.app, streamlit\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
    )
    result: Any = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_rendering_every_page_does_not_import_torch(seeded: Any) -> None:
    # The page scripts run only under Streamlit, so render them all in a fresh process.
    code = (
        "import os, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"os.environ[{STORAGE_ENV!r}] = {seeded.url!r}\n"
        "app = AppTest.from_file('dashboard/app.py', default_timeout=90)\n"
        "app.query_params['trials'] = '0,1'\n"
        "app.run()\n"
        f"for page in {list(PAGES)!r}:\n"
        "    app.switch_page(page).run()\n"
        "    assert not app.exception, (page, [e.value for e in app.exception])\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
    )
    result: Any = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
