"""VL pretraining of an embedded backbone: the paper's "with VL pretraining" variant in miniature.

VL-T5 / VL-BART are pretrained on image-text pairs before any downstream task, and VL-Adapter
reports its methods with and without that stage (PAPER.md §6). Here the whole VL model of an
embedded preset (LM + V->L projection, full fine-tuning; CLIP frozen, its features computed
once) is trained multi-task on the pretraining corpus (`tasks.pretraining_corpus`, disjoint
from the benchmark whose root is given):

- captioning: "caption: " -> one of the scene's reference captions;
- VQA-style QA: "vqa: " + question -> answer, soft-scored by 10 simulated annotators as in the
  benchmark's VQA (tasks.vqa_questions, tasks.vqa_annotators).

The result is the preset `<base>-vlp`, loaded by models.build like its base:

    <data>/backbones/<base>-vlp/clip/                       the base's CLIP, copied
    <data>/backbones/<base>-vlp/language_model/             the trained LM and its tokenizer
    <data>/backbones/<base>-vlp/vl_projection.safetensors   the trained `visual_embedding`
    <data>/backbones/<base>-vlp/manifest.json               what defines it + held-out caption loss

    python -m training.vl_pretrain --backbone tiny-clip+tiny-t5 [--steps N] [--seed S]
"""

from __future__ import annotations

import dataclasses
import logging
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from models.backbones.presets import PRESETS, BackbonePreset, get_preset
from models.build import build_vl_model
from models.config import ConfigError, TrainingConfig, TrialConfig
from models.embedded import FILES_KEY, RESULTS_KEY, embedded_dir, ensure_built, read_manifest
from models.features import FeatureTable
from models.location import VL_PROJECTION_FILE, BackboneLocation
from models.petl import get_method
from models.visual_encoder import build_visual_encoder
from models.vl_model import VLSeq2Seq
from tasks import PretrainingPair, pretraining_corpus
from tasks.captions import caption_scene
from tasks.vqa_annotators import simulate_answers, soft_label
from tasks.vqa_questions import ask
from training.batches import Collator
from training.loop import train
from training.pretrain.embedded import ensure_embedded_backbone
from training.pretrain.exclusion import excluded_benchmark, exclusion_identity
from training.pretrain.family import steps_from_env
from training.pretrain.pinned import kernel_identity, pinned_build
from training.task_readers import TASK_PREFIXES
from training.text_examples import TextExample

log = logging.getLogger(__name__)

__all__ = [
    "STEPS_ENV",
    "VLPretrainSettings",
    "caption_loss",
    "corpus_features",
    "ensure_vl_pretrained_backbone",
    "held_out_examples",
    "held_out_losses",
    "pretraining_examples",
    "vl_pretrained_variant",
    "vl_pretraining_pairs",
]

STEPS_ENV = "VLPETL_VLP_STEPS"
FORMAT_VERSION = 2  # 2: bit-reproducible (one torch thread, the corpus' exclusion recorded, no build time stored)
TASKS = ("caption", "vqa")
# Target lengths as the benchmark's caption and VQA tasks truncate them (training.task_readers).
TARGET_TOKENS = {"caption": 40, "vqa": 6}


@dataclass(frozen=True)
class VLPretrainSettings:
    """Size of the VL-pretraining run (the defaults take about 10 minutes on 2 CPU cores).

    Attributes:
        n_scenes: corpus pairs drawn, held-out ones included.
        held_out: the first pairs, kept out of training to measure the caption loss.
        captions_per_scene: reference captions per training image (one is sampled per step).
        questions_per_scene: distinct QA examples per training image.
        steps: optimisation steps, each on one task's batch.
        batch_size: examples per step.
        learning_rate: AdamW peak rate; full fine-tuning of the tiny backbone (as in the
            search space's tiny-backbone rates: the paper's 1e-4 is for base-size models).
        seed: seed of the corpus, the examples, the initial projection and the training order.
    """

    n_scenes: int = 2000
    held_out: int = 200
    captions_per_scene: int = 5
    questions_per_scene: int = 2
    steps: int = 600
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0

    def problems(self) -> list[str]:
        found = []
        if not 1 <= self.held_out < self.n_scenes:
            found.append(f"held_out must be in [1, n_scenes), got held_out={self.held_out}, n_scenes={self.n_scenes}")
        if not 1 <= self.captions_per_scene <= 6:
            found.append(f"captions_per_scene must be in [1, 6] (one per caption template), got {self.captions_per_scene}")
        if self.questions_per_scene < 1:
            found.append(f"questions_per_scene must be >= 1, got {self.questions_per_scene}")
        if self.steps < 1 or self.batch_size < 1:
            found.append(f"steps and batch_size must be >= 1, got steps={self.steps}, batch_size={self.batch_size}")
        if not self.learning_rate > 0:
            found.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.seed < 0:
            found.append(f"seed must be >= 0, got {self.seed}")
        return found

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_env(cls) -> "VLPretrainSettings":
        """Defaults, or a quicker run on a smaller corpus when VLPETL_VLP_STEPS is set (tests, CI).

        Raises:
            ValueError: the variable is not a positive integer.
        """
        steps = steps_from_env(STEPS_ENV, "VL-pretraining steps")
        if steps is None:
            return cls()
        n_scenes = min(cls.n_scenes, max(200, 8 * steps))
        return cls(n_scenes=n_scenes, held_out=min(cls.held_out, n_scenes // 4), steps=steps)


def vl_pretrained_variant(name: str) -> BackbonePreset:
    """The VL-pretrained preset of an embedded base preset, or the variant itself by name.

    Raises:
        ConfigError: no VL-pretrained variant exists for `name`; the message lists those that do.
    """
    preset = get_preset(name)
    if preset.vl_pretrained_from is not None:
        return preset
    for variant in PRESETS.values():
        if variant.vl_pretrained_from == name:
            return variant
    bases = sorted(p.vl_pretrained_from for p in PRESETS.values() if p.vl_pretrained_from)
    raise ConfigError([f"backbone {name!r} has no VL-pretrained variant; VL pretraining starts from one of {bases}"])


def ensure_vl_pretrained_backbone(
    data_dir: Path, preset: BackbonePreset, exclude_root: Path | None = None, settings: VLPretrainSettings | None = None
) -> Path:
    """Build the VL-pretrained variant of an embedded preset once; reuse it afterwards.

    Builds the base embedded backbone first when missing. The variant is rebuilt when its
    settings or its base change (both are in its manifest).

    Args:
        data_dir: the data directory (`<data_dir>/backbones/<preset>`).
        preset: a VL-pretrained preset (`preset.vl_pretrained_from` names its base).
        exclude_root: the generated benchmark the corpus must stay disjoint from; default the
            seed-0 benchmark of `data_dir`, the one every entry point uses
            (training.pretrain.exclusion). The manifest records it by content.
        settings: the run's size; default `VLPretrainSettings.from_env()`.

    Returns:
        The variant's folder, holding `clip/`, `language_model/` and `vl_projection.safetensors`.

    Raises:
        ValueError: `preset` is not a VL-pretrained preset, or the settings are invalid.
    """
    if preset.vl_pretrained_from is None:
        raise ValueError(f"backbone {preset.name!r} is not a VL-pretrained preset; use {vl_pretrained_variant(preset.name).name!r}")
    settings = settings or VLPretrainSettings.from_env()
    problems = settings.problems()
    if problems:
        raise ValueError("invalid VL-pretraining settings: " + "; ".join(problems))
    base = get_preset(preset.vl_pretrained_from)
    exclude_root = exclude_root if exclude_root is not None else excluded_benchmark(data_dir, base.image_size)
    base_dir = ensure_embedded_backbone(data_dir, base, exclude_root=exclude_root)
    manifest = {
        "format_version": FORMAT_VERSION,
        "preset": preset.name,
        # The base's file digests are checked on its own reuse; left out here so that a variant
        # built before they were recorded is still its base's.
        "base": {key: value for key, value in (read_manifest(base_dir) or {}).items() if key != FILES_KEY},
        "settings": settings.to_dict(),
        "corpus_excludes": exclusion_identity(exclude_root),
        "kernels": kernel_identity(),
    }
    target = embedded_dir(data_dir, preset)
    return ensure_built(target, manifest, lambda staging: _build(staging, target, data_dir, base, base_dir, exclude_root, settings))


def vl_pretraining_pairs(
    settings: VLPretrainSettings, image_size: int, exclude_root: Path | None
) -> tuple[list[PretrainingPair], list[PretrainingPair]]:
    """The corpus of a run, split into (training pairs, held-out pairs); the same for the same settings."""
    pairs = pretraining_corpus(seed=settings.seed, n=settings.n_scenes, image_size=image_size, exclude_root=exclude_root)
    return pairs[settings.held_out :], pairs[: settings.held_out]


def pretraining_examples(pairs: Sequence[PretrainingPair], settings: VLPretrainSettings) -> dict[str, list[TextExample]]:
    """Captioning and QA examples of the training pairs, keyed by task; `img_ids` are pair ids."""
    # The seed string keeps this module's old name (training.vl_pretraining), so that the same
    # settings draw the same examples as before.
    rng = random.Random(f"training.vl_pretraining:{settings.seed}")
    captions, questions = [], []
    for pair in pairs:
        references = tuple(dict.fromkeys([pair.caption, *caption_scene(pair.scene, rng, settings.captions_per_scene)]))
        references = references[: settings.captions_per_scene]
        captions.append(TextExample(pair.pair_id, (pair.pair_id,), TASK_PREFIXES["caption"], references, (1.0,) * len(references)))
        asked: set[str] = set()
        for n in range(settings.questions_per_scene):
            spec = ask(pair.scene, rng, exclude=frozenset(asked))
            asked.add(spec.question)
            label = soft_label(simulate_answers(spec, rng))  # every answer given scores > 0
            questions.append(
                TextExample(
                    f"{pair.pair_id}_q{n}",
                    (pair.pair_id,),
                    TASK_PREFIXES["vqa"] + spec.question,
                    tuple(label),
                    tuple(label.values()),
                )
            )
    return {"caption": captions, "vqa": questions}


def held_out_examples(pairs: Sequence[PretrainingPair]) -> list[TextExample]:
    """One caption example per held-out pair, its corpus caption as the only target."""
    return [TextExample(p.pair_id, (p.pair_id,), TASK_PREFIXES["caption"], (p.caption,), (1.0,)) for p in pairs]


@torch.no_grad()
def caption_loss(
    model: VLSeq2Seq, collator: Collator, examples: Sequence[TextExample], device: torch.device, batch_size: int = 128
) -> float:
    """Mean per-example token cross-entropy of single-target caption examples (dropout off)."""
    model.eval()
    model.task_context.active = "caption"
    rng = random.Random(0)  # each example has one target: nothing is actually sampled
    total = 0.0
    for start in range(0, len(examples), batch_size):
        batch = collator.training(examples[start : start + batch_size], rng, TARGET_TOKENS["caption"]).to(device)
        total += float(model(batch.input_ids, batch.attention_mask, batch.feats, batch.labels, batch.image_index).sum())
    return total / len(examples)


@pinned_build
def _build(
    staging: Path,
    target: Path,
    data_dir: Path,
    base: BackbonePreset,
    base_dir: Path,
    exclude_root: Path | None,
    settings: VLPretrainSettings,
) -> dict:
    start = time.perf_counter()
    log.info("VL pretraining %s (%d steps on %d scenes) ...", base.name, settings.steps, settings.n_scenes)
    train_pairs, held_pairs = vl_pretraining_pairs(settings, base.image_size, exclude_root)
    location = BackboneLocation.resolve(base.name, data_dir)
    features = corpus_features(location, [*held_pairs, *train_pairs])
    config = TrialConfig(
        backbone=base.name,
        tasks=TASKS,
        method="full_ft",
        freeze=get_method("full_ft").freeze,  # LM + V->L; CLIP is outside the model (cached features)
        training=TrainingConfig(
            learning_rate=settings.learning_rate, steps=settings.steps, batch_size=settings.batch_size, seed=settings.seed
        ),
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = build_vl_model(config, location)
    assert tokenizer is not None, "build_vl_model gives a tokenizer off the meta device"
    model.to(device)
    collator = Collator(tokenizer, features, config.training.max_source_tokens)
    examples = pretraining_examples(train_pairs, settings)
    held = held_out_examples(held_pairs)
    before = caption_loss(model, collator, held, device)
    result = train(model, collator, examples, config.training, device, TARGET_TOKENS, show_progress=True)
    after = caption_loss(model, collator, held, device)
    model.to("cpu")
    shutil.copytree(base_dir / "clip", staging / "clip")
    model.lm.save_pretrained(staging / "language_model")
    tokenizer.save_pretrained(staging / "language_model")
    state = {name: tensor.contiguous() for name, tensor in model.visual_embedding.state_dict().items()}
    save_file(state, str(staging / VL_PROJECTION_FILE))
    log.info("held-out caption loss on %d pairs: %.3f before, %.3f after VL pretraining", len(held), before, after)
    # The build time is logged, not stored: the manifest is part of the bytes two builds must share.
    log.info("VL-pretrained backbone written to %s in %.1f s", target, time.perf_counter() - start)
    return {
        "held_out_caption_loss_before": before,
        "held_out_caption_loss_after": after,
        "held_out_pairs": len(held),
        "train_pairs": len(train_pairs),
        "examples": {task: len(items) for task, items in examples.items()},
        "loss_curve": result.losses,
        "device": device.type,
    }


@torch.no_grad()
def corpus_features(location: BackboneLocation, pairs: Sequence[PretrainingPair], batch_size: int = 64) -> FeatureTable:
    """Frozen-CLIP grid features of corpus images, keyed by pair id.

    The corpus lives in memory, not on disk, so the on-disk feature cache does not apply.
    """
    encoder, preprocess = build_visual_encoder(location)
    chunks = []
    for start in tqdm(range(0, len(pairs), batch_size), desc="CLIP features (VL pretraining)", unit="batch", leave=False):
        images = torch.stack([preprocess(p.image.convert("RGB")) for p in pairs[start : start + batch_size]])
        chunks.append(encoder(images).float())
    return FeatureTable(index={p.pair_id: n for n, p in enumerate(pairs)}, features=torch.cat(chunks))


def held_out_losses(folder: Path) -> Mapping[str, float] | None:
    """The held-out caption loss before and after VL pretraining, from a built variant's manifest."""
    results = (read_manifest(folder) or {}).get(RESULTS_KEY) or {}
    if "held_out_caption_loss_before" not in results:
        return None
    return {"before": results["held_out_caption_loss_before"], "after": results["held_out_caption_loss_after"]}
