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
from models.build import BackboneLocation, build_visual_encoder
from models.embedded import ensure_embedded_backbone
from models.features import FeatureTable, cached_features, file_digest
from tasks import generate_benchmark
from training.tasks import PREPARERS, PreparedTask

log = logging.getLogger(__name__)

SUPPORTED_TASKS = tuple(PREPARERS)


@dataclass(frozen=True)
class TrialEnvironment:
    data_dir: Path
    location: BackboneLocation
    tasks: Mapping[str, PreparedTask]
    features: FeatureTable
    device: torch.device


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def benchmark_dir(data_dir: Path, seed: int) -> Path:
    return data_dir / "benchmark" / f"mini-vl-v2-seed{seed}"


def prepare_environment(data_dir: Path, backbone: str, task_names: tuple[str, ...], benchmark_seed: int = 0) -> TrialEnvironment:
    """Generate the benchmark, build the embedded backbone and cache features, as needed.

    Raises:
        ConfigError: unknown backbone.
        ValueError: unknown task names.
    """
    unknown = sorted(set(task_names) - set(SUPPORTED_TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; supported tasks: {list(SUPPORTED_TASKS)}")
    preset = get_preset(backbone)
    root = generate_benchmark(benchmark_dir(data_dir, benchmark_seed), seed=benchmark_seed, image_size=preset.image_size)
    log.info("benchmark: %s", root)
    tasks = {name: PREPARERS[name](root) for name in task_names}
    if preset.embedded:
        ensure_embedded_backbone(data_dir, preset, exclude_root=root)
    location = BackboneLocation.resolve(backbone, data_dir)
    image_paths = {img_id: path for task in tasks.values() for img_id, path in task.image_paths.items()}
    identity = {
        "clip_model": location.clip_model,
        "clip_weights": file_digest(location.clip_checkpoint) or location.clip_checkpoint,
        "grid": preset.grid,
        "image_size": preset.image_size,
    }
    features = cached_features(data_dir / "features", image_paths, identity, lambda: build_visual_encoder(location))
    return TrialEnvironment(data_dir, location, tasks, features, default_device())
