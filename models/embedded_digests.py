"""Content digests of the built embedded backbones: how two builds are checked to be the same bytes.

The build is meant to be bit-reproducible (training.pretrain.threads, training.pretrain.exclusion):
the same code and package versions give the same files whatever the machine's thread count.
These digests are how a user checks it: `python -m models.pretrain --digests` prints one line per
file in `sha256sum` format (paths relative to `<data>/backbones/`), and each build logs one
combined digest per folder it writes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from models.features import file_digest


def backbones_root(data_dir: Path) -> Path:
    return data_dir / "backbones"


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder`, keyed by its POSIX path relative to `folder`, in sorted order.

    Folders and files whose name starts with "." are skipped: they are staging folders of a build
    in progress (models.embedded.ensure_built), never part of a built backbone.
    """
    found = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found[relative.as_posix()] = str(file_digest(path))
    return dict(sorted(found.items()))


def digest_lines(digests: dict[str, str]) -> list[str]:
    """`sha256sum`'s format (digest, two spaces, path), so that `sha256sum -c` can check a copy."""
    return [f"{digest}  {path}" for path, digest in digests.items()]


def combined_digest(folder: Path) -> str:
    """One SHA-256 for a whole folder: of its `digest_lines`, newline-terminated."""
    return hashlib.sha256("".join(line + "\n" for line in digest_lines(file_digests(folder))).encode()).hexdigest()
