"""The embedded tiny backbone family, pretrained by the project so that nothing is downloaded.

A tiny CLIP (contrastive), a tiny T5 (span corruption) and a tiny BART (text infilling) are
pretrained on a corpus from the generated world that is disjoint from every downstream split
(models.pretrain). Artifacts are written in the formats real checkpoints use (an open_clip
config JSON plus a safetensors checkpoint; a transformers `save_pretrained` directory with its
tokenizer), so they load through exactly the code path of real checkpoints.

Layout: each component is built once under `<data>/backbones/components/<name>/`; a preset's
folder `<data>/backbones/<preset>/` holds `clip/` and `language_model/` copies of its two. A
VL-pretrained variant's folder `<data>/backbones/<preset>-vlp/` adds `vl_projection.safetensors`
(built by training.vl_pretraining).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from models.backbones.presets import BackbonePreset, get_preset

log = logging.getLogger(__name__)

FORMAT_VERSION = 4  # 4: the T5 tokenizer keeps whole words (models.backbones.language_model)
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


def ensure_embedded_backbone(data_dir: Path, preset: BackbonePreset, settings=None, exclude_root: Path | None = None) -> Path:
    """Pretrain the preset's components if missing, then lay out the preset's folder.

    A VL-pretrained variant (`preset.vl_pretrained_from`) gets its base built here; the variant
    itself is trained by `training.vl_pretraining.ensure_vl_pretrained_backbone`.

    Args:
        exclude_root: a generated benchmark whose images the pretraining corpus must not contain.

    Returns:
        The preset folder, holding `clip/` and `language_model/` (the base's, for a variant).
    """
    from models.pretrain.family import PretrainSettings

    if preset.vl_pretrained_from is not None:
        preset = get_preset(preset.vl_pretrained_from)
    settings = settings or PretrainSettings.from_env()
    manifest = {"format_version": FORMAT_VERSION, "preset": preset.name, "settings": settings.to_dict()}
    target = embedded_dir(data_dir, preset)
    if _manifest_matches(target, manifest):
        return target
    clip_name, lm_name = component_names(preset)
    components = data_dir / "backbones" / "components"
    corpus = _LazyCorpus(settings, preset.image_size, exclude_root)
    clip_dir = ensure_built(
        components / clip_name, {**manifest, "component": clip_name, "preset": None},
        lambda folder: _build_clip(folder, preset, corpus(), settings),
    )
    lm_dir = ensure_built(
        components / lm_name, {**manifest, "component": lm_name, "preset": None},
        lambda folder: _build_lm(folder, LM_FAMILIES[lm_name], corpus(), settings),
    )

    def lay_out(folder: Path) -> None:
        shutil.copytree(clip_dir, folder / "clip")
        shutil.copytree(lm_dir, folder / "language_model")

    return ensure_built(target, manifest, lay_out)


def _build_clip(folder: Path, preset: BackbonePreset, corpus, settings) -> None:
    from models.pretrain.family import build_clip, write_metrics

    log.info("pretraining the embedded CLIP (contrastive, %d steps) ...", settings.clip_steps)
    metrics = build_clip(folder, preset.clip_model, preset.image_size, corpus, settings)
    write_metrics(folder, metrics)
    log.info(
        "CLIP zero-shot image->caption recall@1 on %d held-out pairs: %.3f (before %.3f, chance %.3f)",
        metrics["held_out_pairs"], metrics["recall_at_1_after"], metrics["recall_at_1_before"], metrics["recall_at_1_chance"],
    )


def _build_lm(folder: Path, family: str, corpus, settings) -> None:
    from models.pretrain.family import build_language_model, write_metrics

    log.info("pretraining the embedded %s (%d steps) ...", family.upper(), settings.lm_steps)
    metrics = build_language_model(folder, family, corpus, settings)
    write_metrics(folder, metrics)
    log.info("%s held-out perplexity: %.1f before, %.1f after pretraining", family.upper(), metrics["perplexity_before"], metrics["perplexity_after"])


class _LazyCorpus:
    # Rendering the corpus takes seconds: only do it when a component must be built.
    def __init__(self, settings, image_size: int, exclude_root: Path | None):
        self.settings, self.image_size, self.exclude_root, self.value = settings, image_size, exclude_root, None

    def __call__(self):
        if self.value is None:
            from models.pretrain.corpus import pretraining_corpus

            self.value = pretraining_corpus(self.settings.n_scenes, self.settings.seed, self.image_size, self.exclude_root)
        return self.value


def read_manifest(folder: Path) -> dict | None:
    """A built folder's `manifest.json`, or None when it is missing or unreadable."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _manifest_matches(folder: Path, manifest: dict) -> bool:
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
    if _manifest_matches(folder, manifest):
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
    return folder
