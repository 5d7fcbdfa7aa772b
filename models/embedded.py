"""The embedded tiny backbone family, pretrained by the project so that nothing is downloaded.

A tiny CLIP (contrastive), a tiny T5 (span corruption) and a tiny BART (text infilling) are
pretrained on a corpus from the generated world that is disjoint from every downstream split
(training.pretrain.embedded builds them, through `ensure_built` here). Artifacts are written in
the formats real checkpoints use (an open_clip config JSON plus a safetensors checkpoint; a
transformers `save_pretrained` directory with its tokenizer), so they load through exactly the
code path of real checkpoints. This module only knows where they are and whether they are built.

Layout: each component is built once under `<data>/backbones/components/<name>/`; a preset's
folder `<data>/backbones/<preset>/` holds `clip/` and `language_model/` copies of its two. A
VL-pretrained variant's folder `<data>/backbones/<preset>-vlp/` adds `vl_projection.safetensors`
(built by training.pretrain.vl_variant).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from models.backbones.presets import BackbonePreset
from models.embedded_digests import combined_digest, file_digests

log = logging.getLogger(__name__)

# 4: the T5 tokenizer keeps whole words (models.backbones.language_model)
# 5: bit-reproducible builds: one torch thread (training.pretrain.threads) and the seed-0 benchmark
#    excluded from the corpus whatever the entry point, recorded in the manifest (training.pretrain.exclusion)
FORMAT_VERSION = 5
RESULTS_KEY = "results"  # a manifest's measurements: stored with it, not part of its identity
# The SHA-256 of every file the build wrote (the manifest aside), checked on each reuse: a weight
# file changed or truncated since is named, never loaded as a silently different model. Not part
# of the identity either, so that folders built before it was recorded are reused as they are.
FILES_KEY = "files"
MANIFEST = "manifest.json"
LM_FAMILIES = {"tiny-t5": "t5", "tiny-bart": "bart"}


class BuildChanged(ValueError):
    """A built folder's file differs from what its build wrote: the message names it and the fix."""


def embedded_dir(data_dir: Path, preset: BackbonePreset) -> Path:
    return data_dir / "backbones" / preset.name


def component_names(preset: BackbonePreset) -> tuple[str, str]:
    """(CLIP component, LM component) of an embedded preset named `<clip>+<lm>`."""
    clip, lm = preset.name.split("+")
    if lm not in LM_FAMILIES:
        raise ValueError(f"embedded preset {preset.name!r} names no known tiny LM; known: {sorted(LM_FAMILIES)}")
    return clip, lm


def read_manifest(folder: Path) -> dict | None:
    """A built folder's `manifest.json`, or None when it is missing or unreadable."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_matches(folder: Path, manifest: dict) -> bool:
    """The folder was built for `manifest` (its stored measurements and file digests aside)."""
    stored = read_manifest(folder)
    return stored is not None and build_identity(stored) == manifest


def build_identity(manifest: dict) -> dict:
    """What defines a build: its manifest less the measurements and file digests stored with it."""
    return {key: value for key, value in manifest.items() if key not in (RESULTS_KEY, FILES_KEY)}


def is_built(folder: Path, manifest: dict) -> bool:
    """The folder was built for `manifest` and its files are still the ones the build wrote.

    Raises:
        BuildChanged: a file differs from its build, is missing or was added.
    """
    if not manifest_matches(folder, manifest):
        return False
    verify_built(folder)
    return True


def verify_built(folder: Path) -> None:
    """Compare a built folder's files with the digests its build recorded (folders built before
    they were recorded are not checked).

    Raises:
        BuildChanged: naming the first file (in path order) that differs, is missing or was added.
    """
    recorded = (read_manifest(folder) or {}).get(FILES_KEY)
    if not isinstance(recorded, dict):
        return
    found = {path: digest for path, digest in file_digests(folder).items() if path != MANIFEST}
    changed = sorted(path for path in set(recorded) | set(found) if recorded.get(path) != found.get(path))
    if not changed:
        return
    first = changed[0]
    if first not in found:
        problem = "is missing"
    elif first not in recorded:
        problem = "was added after the build"
    else:
        problem = "differs from what the build wrote (changed or truncated since)"
    raise BuildChanged(
        f"{folder / first} {problem}; {len(changed)} file(s) of {folder} differ from its build in all. "
        f"Delete {folder} and run again to rebuild it (the build is reproducible), or copy it intact from another machine"
    )


def ensure_built(folder: Path, manifest: dict, build: Callable[[Path], dict | None]) -> Path:
    """Build `folder` once per manifest, into a staging folder renamed into place when complete
    (never a half-built component).

    Args:
        manifest: what defines the build; a folder whose manifest equals it is reused as is.
        build: fills the staging folder it is given; what it returns (measurements, or None)
            is stored in the manifest under "results", which comparisons ignore.

    Returns:
        `folder`.

    Raises:
        BuildChanged: the folder was built for `manifest`, but a file changed since.
    """
    if is_built(folder, manifest):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        results = build(staging)
        written = manifest if results is None else {**manifest, RESULTS_KEY: results}
        written = {**written, FILES_KEY: file_digests(staging)}
        (staging / MANIFEST).write_text(json.dumps(written, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Two builds of the same code are the same bytes: this line lets two machines' logs be compared.
    log.info("built %s: combined sha256 %s (python -m models.pretrain --digests lists each file)", folder.name, combined_digest(folder))
    return folder
