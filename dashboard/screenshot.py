"""Screenshot the dashboard's Overview in headless Chromium (the README's ``docs/dashboard.png``).

After ``make demo``, from the repository root::

    python -m dashboard.screenshot                      # data/studies.db -> docs/dashboard.png
    python -m dashboard.screenshot --storage URL --study NAME --out FILE

Serves the dashboard as ``python -m dashboard`` does, opens it as a new user would (no
query parameters beyond the study: the budget is the study's own), waits until the Pareto
chart is drawn, and saves the whole Overview page. The storage is shown relative to the
working directory, so the image names no folder of the machine it was taken on.

Needs Playwright and Chromium at ``/usr/bin/chromium`` (``apt-get install -y chromium``);
Playwright is never asked to download a browser. The browser test serves the dashboard
through :func:`serve` too.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dashboard.settings import DEFAULT_DATA_DIR, STORAGE_ENV, resolve_storage_url

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "COUNT_POINTS", "ServeError", "capture", "main", "open_browser", "serve"]

ROOT = Path(__file__).resolve().parents[1]
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
# The height of everything the page would scroll through: Streamlit scrolls its main
# container, not the document, so a "full page" screenshot alone stops at the viewport.
_PAGE_HEIGHT = """() => {
    const main = document.querySelector('[data-testid="stMain"]') || document.scrollingElement;
    return Math.ceil(main.scrollHeight);
}"""
WIDTH, HEIGHT = 1400, 1000


class ServeError(RuntimeError):
    """The dashboard did not come up; the message holds the end of its log."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(storage_url: str, log: Path, *, cwd: Path = ROOT, timeout_s: float = 90) -> Iterator[str]:
    """Run ``python -m dashboard`` on a free local port until the block ends; yield its base URL.

    Raises:
        ServeError: The dashboard exited or did not answer its health check in time.
    """
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "--storage", storage_url, "--port", str(port)],
        cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServeError(f"the dashboard did not come up on {base}: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()  # the launcher passes SIGTERM on to Streamlit
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def open_browser() -> Iterator[Any]:
    """Headless Chromium from /usr/bin/chromium, through Playwright; yields the browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def capture(page: Any, out: Path) -> None:
    """Save the whole page (everything its main container scrolls through) as a PNG."""
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": max(HEIGHT, page.evaluate(_PAGE_HEIGHT))})
    page.wait_for_timeout(1000)  # charts re-lay themselves out for the new size
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)


def overview_ready(page: Any) -> None:
    """Wait until the Overview has drawn its Pareto chart and the study's description."""
    page.wait_for_function(f"({COUNT_POINTS})() > 0")
    page.locator(".st-key-study_description").wait_for()
    page.wait_for_timeout(500)  # let the chart finish its first layout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.screenshot", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)  # fmt: skip
    parser.add_argument("--storage", help=f"database URL (default: ${STORAGE_ENV}, else {DEFAULT_DATA_DIR}/studies.db)")
    parser.add_argument("--study", help="the study to show (default: the one most recently written to)")
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"), help="PNG file (default: docs/dashboard.png)")
    args = parser.parse_args(argv)
    if problem := _out_problem(args.out):
        parser.error(problem)
    if args.storage is not None and not args.storage.strip():
        parser.error("--storage is empty; give a database URL such as 'sqlite:///path/to/studies.db', or omit it for the default")
    url = resolve_storage_url(["--storage", args.storage] if args.storage else [], os.environ)
    if problem := _study_problem(url, args.study):  # before a browser waits a minute for a chart that never comes
        parser.error(problem)
    if not CHROMIUM.exists():
        parser.error(f"Chromium is not installed at {CHROMIUM}; apt-get install -y chromium")
    query = f"?{urllib.parse.urlencode({'study': args.study})}" if args.study else ""
    with tempfile.TemporaryDirectory() as folder:
        try:
            # Served from here, so the page shows the storage relative to this folder.
            with serve(url, Path(folder) / "dashboard.log", cwd=Path.cwd()) as base, open_browser() as browser:
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(f"{base}/{query}")
                overview_ready(page)
                capture(page, args.out)
        except ServeError as error:
            print(error, file=sys.stderr)
            return 1
    print(f"wrote {args.out}")
    return 0


def _out_problem(out: Path) -> str | None:
    if out.suffix.lower() != ".png":
        return f"--out {str(out)!r} must name a .png file, e.g. --out docs/dashboard.png"
    if out.is_dir():
        return f"--out {str(out)!r} is a folder; name the .png file to write"
    from core.data_dir import nearest_existing

    ancestor = nearest_existing(out.absolute().parent)
    if not ancestor.is_dir():
        return f"--out {str(out)!r} cannot be written: {str(ancestor)!r} is a file; name a .png in a folder"
    return None


def _study_problem(url: str, study: str | None) -> str | None:
    """Why the Overview of `study` (or of the latest study) could not be drawn from `url`."""
    from storage import list_studies, make_readonly_engine, redact
    from storage.persistent import validate_persistent_storage_url
    from storage.urls import StorageURLError

    try:
        validate_persistent_storage_url(url)
    except StorageURLError as error:
        return str(error)
    try:
        engine = make_readonly_engine(url)
    except FileNotFoundError as error:  # its message names the file and the fix
        return str(error)
    try:
        studies = list_studies(engine)
    except Exception as error:  # noqa: BLE001 -- any database failure is reported in the line below
        return f"--storage {redact(url)!r} cannot be read ({type(error).__name__}); check the URL and that the server is up"
    finally:
        engine.dispose()
    if not studies:
        return f"--storage {redact(url)!r} holds no study results; run one first (python -m search.launch --budget 5%)"
    if study is not None and study not in studies:
        return f"--study {study!r} is not in {redact(url)!r}; its studies: {', '.join(studies)}"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
