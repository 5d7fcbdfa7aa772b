"""Everything trials share: the benchmark on disk, the backbone, cached visual features.

Preparing is idempotent: each artifact is built on first use and reused afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from models.backbones.presets import get_preset
from models.build import BackboneLocation, build_visual_encoder, visual_feature_dim
from models.embedded import ensure_embedded_backbone
from models.features import FeatureTable, cached_features, encoder_identity
from tasks import generate_benchmark
from training.task_registry import PREPARERS
from training.tasks import PreparedTask
from training.visual_inputs import PixelTable, VisualInputs, build_video_table, frames_to_extract

log = logging.getLogger(__name__)

SUPPORTED_TASKS = tuple(PREPARERS)


@dataclass(frozen=True)
class TrialEnvironment:
    data_dir: Path
    location: BackboneLocation
    tasks: Mapping[str, PreparedTask]
    features: VisualInputs
    device: torch.device


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


EMBEDDED_IMAGE_SIZE = 64


def benchmark_dir(data_dir: Path, seed: int, image_size: int = EMBEDDED_IMAGE_SIZE) -> Path:
    """One folder per image size, so a base-size backbone (224 px) and the embedded one (64 px)
    never regenerate each other's benchmark; the embedded size keeps the plain name."""
    suffix = "" if image_size == EMBEDDED_IMAGE_SIZE else f"-{image_size}px"
    return data_dir / "benchmark" / f"mini-vl-v3-seed{seed}{suffix}"


def prepare_environment(
    data_dir: Path, backbone: str, task_names: tuple[str, ...], benchmark_seed: int = 0, random_init: bool = False
) -> TrialEnvironment:
    """Generate the benchmark, build the embedded backbone and cache features, as needed.

    Args:
        random_init: build a base-size preset from its config with random weights (smoke tests);
            its text is read by the project-trained tokenizer of the same family, built here.

    Raises:
        ConfigError: unknown backbone; a base-size preset's weights missing without
            `random_init` (WeightsUnavailable says how to provide them).
        ValueError: unknown task names.
    """
    unknown = sorted(set(task_names) - set(SUPPORTED_TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; supported tasks: {list(SUPPORTED_TASKS)}")
    preset = get_preset(backbone)
    root = generate_benchmark(
        benchmark_dir(data_dir, benchmark_seed, preset.image_size), seed=benchmark_seed, image_size=preset.image_size
    )
    log.info("benchmark: %s", root)
    tasks = {name: PREPARERS[name](root) for name in task_names}
    if preset.embedded:
        ensure_embedded_backbone(data_dir, preset, exclude_root=root)
    if preset.vl_pretrained_from is not None:  # builds its base first, then the variant
        from training.vl_pretraining import ensure_vl_pretrained_backbone

        ensure_vl_pretrained_backbone(data_dir, preset, exclude_root=root)
    location = BackboneLocation.resolve(backbone, data_dir, random_init=random_init)
    location.require_weights()
    if location.tokenizer_preset is not None:
        ensure_embedded_backbone(data_dir, get_preset(location.tokenizer_preset), exclude_root=root)
    features = visual_inputs(data_dir, location, tasks)
    return TrialEnvironment(data_dir, location, tasks, features, default_device())


def visual_inputs(data_dir: Path, location: BackboneLocation, tasks: Mapping[str, PreparedTask]) -> VisualInputs:
    """The tasks' image grid features and video frame features, from the cache or extracted once.

    Images and video frames go into separate stores, so that adding a video task never
    re-extracts the images and the other way round.
    """
    preset = location.preset
    identity = encoder_identity(location)

    def store(paths: Mapping[str, Path]) -> FeatureTable | None:
        if not paths:
            return None
        return cached_features(data_dir / "features", paths, identity, lambda: build_visual_encoder(location))

    image_paths = {img_id: path for task in tasks.values() for img_id, path in task.image_paths.items()}
    images = store(image_paths)
    pixels = None
    if image_paths and location.clip_model is not None:  # for trials whose CLIP trains
        pixels = PixelTable(image_paths, lambda: build_visual_encoder(location)[1], preset.grid**2)
    sources = {vid: source for task in tasks.values() for vid, source in task.videos.items()}
    videos = None
    if sources:
        frames = store(frames_to_extract(sources))
        videos = build_video_table(sources, frames, visual_feature_dim(location))
    return VisualInputs(images, videos, pixels)
