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
from models.embedded_digests import combined_digest

log = logging.getLogger(__name__)

# 4: the T5 tokenizer keeps whole words (models.backbones.language_model)
# 5: bit-reproducible builds: one torch thread (training.pretrain.threads) and the seed-0 benchmark
#    excluded from the corpus whatever the entry point, recorded in the manifest (training.pretrain.exclusion)
FORMAT_VERSION = 5
RESULTS_KEY = "results"  # a manifest's measurements: stored with it, not part of its identity
LM_FAMILIES = {"tiny-t5": "t5", "tiny-bart": "bart"}


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
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_matches(folder: Path, manifest: dict) -> bool:
    """The folder was built for `manifest` (its stored measurements aside)."""
    stored = read_manifest(folder)
    if stored is not None:
        stored.pop(RESULTS_KEY, None)
    return stored == manifest


def ensure_built(folder: Path, manifest: dict, build: Callable[[Path], dict | None]) -> Path:
    """Build `folder` once per manifest, into a staging folder renamed into place when complete
    (never a half-built component).

    Args:
        manifest: what defines the build; a folder whose manifest equals it is reused as is.
        build: fills the staging folder it is given; what it returns (measurements, or None)
            is stored in the manifest under "results", which comparisons ignore.

    Returns:
        `folder`.
    """
    if manifest_matches(folder, manifest):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        results = build(staging)
        written = manifest if results is None else {**manifest, RESULTS_KEY: results}
        (staging / "manifest.json").write_text(json.dumps(written, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Two builds of the same code are the same bytes: this line lets two machines' logs be compared.
    log.info("built %s: combined sha256 %s (python -m models.pretrain --digests lists each file)", folder.name, combined_digest(folder))
    return folder
