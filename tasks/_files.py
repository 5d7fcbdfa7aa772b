"""File helpers shared by the dataset generators and the commands: stable JSON, atomic publish,
atomic writes of one file (recipes, metrics, predictions)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
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


def build_dataset(
    root: Path,
    manifest: dict[str, Any],
    generator: str,
    write: Callable[[Path], None],
    is_complete: Callable[[Path], bool],
) -> Path:
    """Write a generated dataset to ``root`` atomically, or reuse an identical one.

    The dataset is built by ``write`` in a temporary sibling directory, the
    manifest is added, and the directory is renamed into place (see
    :func:`publish_dir`), so a crash never leaves a half-written dataset.

    Args:
        root: Dataset directory (created; its parent must be writable).
        manifest: The full description of the request; a dataset at ``root``
            with an equal manifest that ``is_complete`` accepts is reused.
        generator: The manifest's ``generator`` field.
        write: Fills the (empty) staging directory it is given.
        is_complete: Whether an existing dataset still has all its files; the
            manifest alone would hide deletions.

    Returns:
        ``root``, as a Path.

    Raises:
        DatasetError: If ``root`` holds something ``generator`` did not write.
    """
    root = Path(root)
    if read_manifest(root) == manifest and is_complete(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    # A sibling of root, so the final rename stays on one file system.
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the dataset is not
        write(staging)
        write_json(staging / MANIFEST_NAME, manifest)
        publish_dir(staging, root, manifest, generator)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only left over on failure
    return root


def write_jsonl(path: Path, records: Iterable[Any]) -> None:
    """Write one compact ASCII JSON object per line (the VALUE ``.jsonl`` layout)."""
    lines = [json.dumps(r, ensure_ascii=True, separators=(",", ":")) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so no partial file is ever left.

    The data reaches the disk (fsync) before the rename: otherwise a power loss right after it
    may leave the new name on an empty file. A crash before the rename leaves the old file.

    Raises:
        OSError: the folder cannot be created or the disk refuses the data; ``path`` is unchanged.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
