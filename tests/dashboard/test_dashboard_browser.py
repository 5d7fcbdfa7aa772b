"""The dashboard served by ``python -m dashboard`` and driven in headless Chromium.

Needs Chromium at /usr/bin/chromium (``apt-get install -y chromium``); Playwright never
downloads a browser here. Skipped without it, except under ``CI=true``, where it must run.
Writes ``test-artifacts/dashboard.png``, and ``docs/dashboard.png`` too when
``VLPETL_UPDATE_SCREENSHOT=1`` (the README's screenshot).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
TIMEOUT_MS = 60_000
# The Pareto chart's markers, as plotly.js holds them on the chart's DOM node.
COUNT_POINTS = """() => {
    const plot = document.querySelector('.st-key-pareto .js-plotly-plot');
    if (!plot || !plot.data) return -1;
    return plot.data.filter(t => (t.mode || '').includes('markers')).reduce((n, t) => n + t.x.length, 0);
}"""


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing; .ci/run installs it (apt-get install -y chromium).")
    pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium); runs whenever it is.")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(real_study: Any, tmp_path: Path) -> Iterator[str]:
    """The dashboard on the real study, served on a free local port; yields its base URL."""
    _require_chromium()
    port = _free_port()
    log = tmp_path / "dashboard.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "--storage", real_study.url, "--port", str(port)],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not come up on {base}: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()  # the launcher passes SIGTERM on to Streamlit
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_front_trial_page_and_download_in_chromium(served: str, real_study: Any) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{served}/?budget={real_study.budget.replace('%', '%25')}")

            page.wait_for_function(f"({COUNT_POINTS})() > 0")
            assert page.evaluate(COUNT_POINTS) == real_study.n_complete
            page.get_by_text(f"Best within {real_study.budget}").wait_for()
            page.wait_for_timeout(500)  # let the chart finish its first layout
            _screenshot(page)

            page.get_by_role("link", name=f"Open trial #{real_study.best_trial} (best within budget)").click()
            page.get_by_role("heading", name=f"Trial #{real_study.best_trial}:").wait_for()
            page.wait_for_url(re.compile(rf"/trial\?.*\btrial={real_study.best_trial}\b"))
            with page.expect_download() as download:
                page.get_by_role("button", name="Download recipe (YAML)").click()
            path = download.value.path()
            assert Path(path).read_bytes() == real_study.exported["yaml"]
        finally:
            browser.close()


def _screenshot(page: Any) -> None:
    targets = [ROOT / "test-artifacts" / "dashboard.png"]
    if os.environ.get("VLPETL_UPDATE_SCREENSHOT") == "1":
        targets.append(ROOT / "docs" / "dashboard.png")
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
