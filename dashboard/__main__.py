"""Serve the read-only dashboard of a study's results: ``python -m dashboard --storage URL [--port N]``.

Binds to 127.0.0.1 unless ``--address`` says otherwise, because the page
shows study details to whoever can reach the port.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboard.settings import STORAGE_ENV, resolve_storage_url
from storage.persistent import validate_persistent_storage_url
from storage.urls import StorageURLError

__all__ = ["APP_PATH", "build_command", "main"]

APP_PATH = Path(__file__).resolve().with_name("app.py")


def build_command(*, port: int, address: str) -> list[str]:
    """The ``streamlit run`` command line for the dashboard.

    Args:
        port: TCP port to serve on.
        address: Interface to bind; 127.0.0.1 keeps the page local.

    Returns:
        An argv list that runs Streamlit with this interpreter.
    """
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.headless", "true",
        "--server.address", address,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",  # no Deploy / clear-cache buttons on a read-only page
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the arguments, then run Streamlit until it exits.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        Streamlit's exit status (2 for a bad storage URL or port).
    """
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__, allow_abbrev=False)
    parser.add_argument("--storage", help=f"database URL (default: ${STORAGE_ENV}, else data/studies.db)")
    parser.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    parser.add_argument("--address", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, but got {args.port}.")
    if not _is_address(args.address):
        parser.error(
            f"--address must be an IP address or 'localhost', but got {args.address!r}; "
            "keep the default 127.0.0.1, or give 0.0.0.0 to serve every interface."
        )
    if args.storage is not None and not args.storage.strip():
        # An empty value would silently fall back to $VLPETL_STORAGE or data/studies.db: another database.
        parser.error(
            f"--storage is empty; give a database URL such as 'sqlite:///path/to/studies.db', or omit --storage for ${STORAGE_ENV} or the default"
        )
    url = resolve_storage_url(["--storage", args.storage] if args.storage else [], os.environ)
    try:
        validate_persistent_storage_url(url)
    except StorageURLError as exc:
        parser.error(str(exc))
    # The URL goes to the app through the environment, not argv, so a
    # password in it does not show up in `ps` output.
    env = {**os.environ, STORAGE_ENV: url}
    return _run(build_command(port=args.port, address=args.address), env)


def _is_address(text: str) -> bool:
    # Streamlit would fail on anything else only once started, with a traceback.
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text == "localhost"
    return True


def _run(command: list[str], env: dict[str, str]) -> int:
    process = subprocess.Popen(command, env=env)
    # Stopping the launcher (SIGTERM from a supervisor, Ctrl-C) must stop
    # Streamlit too, instead of leaving it serving as an orphan.
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
