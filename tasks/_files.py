"""File helpers shared by the dataset generators: stable JSON, atomic publish."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from tasks.errors import DatasetError

MANIFEST_NAME = "manifest.json"


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as compact ASCII JSON; same object, same bytes."""
    path.write_text(json.dumps(obj, ensure_ascii=True, separators=(",", ":")), encoding="ascii")


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of a generated dataset, or ``None`` if absent or unreadable."""
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def publish_dir(staging: Path, root: Path, manifest: dict[str, Any], generator: str) -> None:
    """Move a finished ``staging`` directory to ``root`` with renames only.

    Readers never see a half-written dataset: ``root`` is either absent, the
    old dataset or the new one. An old dataset from the same generator is
    replaced; anything else at ``root`` is left alone.

    Args:
        staging: The complete new dataset, on the same file system as ``root``.
        root: Where the dataset must end up.
        manifest: The new dataset's manifest, to recognise a concurrent writer
            that already published the same dataset.
        generator: The ``generator`` field that marks datasets we may replace.

    Raises:
        DatasetError: If ``root`` holds something other than an empty directory
            or a dataset written by ``generator``.
    """
    retired: Path | None = None
    if root.exists():
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        elif (read_manifest(root) or {}).get("generator") == generator:
            retired = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(root, retired)
        else:
            raise DatasetError(
                f"{root} exists and is not a dataset written by {generator} "
                f"(no {MANIFEST_NAME} naming it); refusing to overwrite it. "
                "Pass a new or empty directory, or delete this one."
            )
    try:
        os.rename(staging, root)
    except OSError:
        # Another process published between our check and the rename; keep its
        # copy when it is the very dataset we were writing.
        if read_manifest(root) != manifest:
            raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
