"""Content digests of every file a study reads, to pin the study to its data.

`search.launch` stores the digests with a new study; a worker or a relaunch computes them
again on its own machine and refuses to train when a file differs, naming the first one,
so that one study never mixes results of two versions of a dataset. Files are keyed by
their path relative to the data description's base folder (the data file's folder, or the
generated benchmark's), so a copy of the data elsewhere (``--data-root``) compares equal.

Images are read once here: their bytes are hashed and their header parsed, so an image that
is not an image is reported with the data's other problems, before anything is written.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Iterable, Mapping

from PIL import Image, UnidentifiedImageError

from tasks.errors import DatasetError

__all__ = ["InputsChanged", "compare_digests", "file_digests", "summary"]

# 128 bits of SHA-256 name a file's content well past any collision concern and keep the
# digests of a COCO-sized study (about 120k images) near 6 MB.
DIGEST_CHARS = 32


class InputsChanged(ValueError):
    """A file this machine would read differs from the study's: the message names it."""


def file_digests(files: Iterable[Path], base: Path | None, images: Iterable[Path] = ()) -> dict[str, str]:
    """SHA-256 (first 128 bits, hex) of each file, keyed by its path relative to `base`.

    Args:
        files: data files (JSON, JSONL, features), hashed as bytes.
        base: the folder keys are relative to; files outside it keep their absolute path.
        images: image files: hashed, and checked to be readable images.

    Raises:
        DatasetError: a file that is missing, or an image Pillow cannot identify; every one listed.
    """
    digests: dict[str, str] = {}
    problems: list[str] = []
    for path, is_image in [*((Path(f), False) for f in files), *((Path(i), True) for i in images)]:
        key = _key(path, base)
        if key in digests:
            continue
        try:
            data = path.read_bytes()
        except OSError as error:
            problems.append(f"{path} cannot be read ({error.strerror or error}); restore the file or fix its path")
            continue
        if is_image:
            problem = _image_problem(path, data)
            if problem:
                problems.append(problem)
                continue
        digests[key] = hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]
    if problems:
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise DatasetError("\n".join(problems[:50]) + more)
    return dict(sorted(digests.items()))


def summary(digests: Mapping[str, str]) -> dict[str, object]:
    """One digest over every file's path and digest, with the count: what a results row records."""
    combined = hashlib.sha256()
    for key, digest in sorted(digests.items()):
        combined.update(f"{key}\0{digest}\n".encode())
    return {"files": len(digests), "sha256": combined.hexdigest()}


def compare_digests(pinned: Mapping[str, str], found: Mapping[str, str], how_to_fix: str) -> None:
    """Raise InputsChanged naming the first file (in path order) that differs, is missing or is new.

    Args:
        pinned: the study's digests, stored at launch.
        found: this machine's.
        how_to_fix: appended to the message (e.g. which data the study was launched with).
    """
    for key in sorted(set(pinned) | set(found)):
        if pinned.get(key) == found.get(key):
            continue
        if key not in found:
            problem = f"{key} is read by the study but not by this machine's data"
        elif key not in pinned:
            problem = f"{key} is read here but was not part of the study's data"
        else:
            problem = f"{key} differs from the study's copy (content {found[key][:12]} here, {pinned[key][:12]} in the study)"
        changed = sum(pinned.get(k) != found.get(k) for k in set(pinned) | set(found))
        raise InputsChanged(f"{problem}; {changed} file(s) differ in all. {how_to_fix}")


def _key(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            pass
    return path.resolve().as_posix()


def _image_problem(path: Path, data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.size  # the header parsed: a real image of a known format
    except (UnidentifiedImageError, OSError, ValueError) as error:
        return f"{path} is not a readable image ({type(error).__name__}: {error}); replace the file or remove its examples"
    return None
