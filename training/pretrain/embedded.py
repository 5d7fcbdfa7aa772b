"""Build the embedded tiny backbone family on first use (models.embedded lays out the folders).

A preset's two components (its CLIP and its LM) are each pretrained once (training.pretrain.family)
on the pretraining corpus, then copied into the preset's folder; a second call with the same
settings only checks the manifests. Builds are bit-reproducible: the same code and package
versions write the same bytes whatever the thread count (training.pretrain.threads), the x86-64
processor (training.pretrain.pinned: each step runs on AVX2 kernels, in its own process) or the
entry point (training.pretrain.exclusion).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from models.backbones.presets import BackbonePreset, get_preset
from models.embedded import FORMAT_VERSION, LM_FAMILIES, component_names, embedded_dir, ensure_built, is_built
from training.pretrain.exclusion import excluded_benchmark, exclusion_identity
from training.pretrain.pinned import kernel_identity, pinned_build

log = logging.getLogger(__name__)


def ensure_embedded_backbone(data_dir: Path, preset: BackbonePreset, settings=None, exclude_root: Path | None = None) -> Path:
    """Pretrain the preset's components if missing, then lay out the preset's folder.

    A VL-pretrained variant (`preset.vl_pretrained_from`) gets its base built here; the variant
    itself is trained by `training.pretrain.vl_variant.ensure_vl_pretrained_backbone`.

    Args:
        exclude_root: the generated benchmark whose scenes and images the pretraining corpus must
            not contain; default the seed-0 benchmark of `data_dir` (generated when missing), the
            one every entry point uses. The manifest records it by content.

    Returns:
        The preset folder, holding `clip/` and `language_model/` (the base's, for a variant).

    Raises:
        models.embedded.BuildChanged: a built file changed since its build (the message names it).
    """
    from training.pretrain.family import PretrainSettings

    if preset.vl_pretrained_from is not None:
        preset = get_preset(preset.vl_pretrained_from)
    settings = settings or PretrainSettings.from_env()
    exclude_root = exclude_root if exclude_root is not None else excluded_benchmark(data_dir, preset.image_size)
    manifest = {
        "format_version": FORMAT_VERSION,
        "preset": preset.name,
        "settings": settings.to_dict(),
        "corpus_excludes": exclusion_identity(exclude_root),
        "kernels": kernel_identity(),
    }
    target = embedded_dir(data_dir, preset)
    if is_built(target, manifest):  # its files checked against the build's digests
        return target
    clip_name, lm_name = component_names(preset)
    components = data_dir / "backbones" / "components"
    corpus = _LazyCorpus(settings, preset.image_size, exclude_root)
    clip_dir = ensure_built(
        components / clip_name,
        {**manifest, "component": clip_name, "preset": None},
        lambda folder: _build_clip(folder, preset, corpus(), settings),
    )
    lm_dir = ensure_built(
        components / lm_name,
        {**manifest, "component": lm_name, "preset": None},
        lambda folder: _build_lm(folder, LM_FAMILIES[lm_name], corpus(), settings),
    )

    def lay_out(folder: Path) -> None:
        shutil.copytree(clip_dir, folder / "clip")
        shutil.copytree(lm_dir, folder / "language_model")

    return ensure_built(target, manifest, lay_out)


@pinned_build
def _build_clip(folder: Path, preset: BackbonePreset, corpus, settings) -> None:
    from training.pretrain.family import build_clip, write_metrics

    log.info("pretraining the embedded CLIP (contrastive, %d steps) ...", settings.clip_steps)
    assert preset.clip_model is not None, f"embedded preset {preset.name!r} has no CLIP model"
    metrics = build_clip(folder, preset.clip_model, preset.image_size, corpus, settings)
    write_metrics(folder, metrics)
    log.info(
        "CLIP zero-shot image->caption recall@1 on %d held-out pairs: %.3f (before %.3f, chance %.3f)",
        metrics["held_out_pairs"],
        metrics["recall_at_1_after"],
        metrics["recall_at_1_before"],
        metrics["recall_at_1_chance"],
    )


@pinned_build
def _build_lm(folder: Path, family: str, corpus, settings) -> None:
    from training.pretrain.family import build_language_model, write_metrics

    log.info("pretraining the embedded %s (%d steps) ...", family.upper(), settings.lm_steps)
    metrics = build_language_model(folder, family, corpus, settings)
    write_metrics(folder, metrics)
    log.info(
        "%s held-out perplexity: %.1f before, %.1f after pretraining",
        family.upper(),
        metrics["perplexity_before"],
        metrics["perplexity_after"],
    )


class _LazyCorpus:
    # Rendering the corpus takes seconds: only do it when a component must be built.
    def __init__(self, settings, image_size: int, exclude_root: Path):
        self.settings, self.image_size, self.exclude_root, self.value = settings, image_size, exclude_root, None

    def __call__(self):
        if self.value is None:
            from training.pretrain.corpus import pretraining_corpus

            self.value = pretraining_corpus(self.settings.n_scenes, self.settings.seed, self.image_size, self.exclude_root)
        return self.value
