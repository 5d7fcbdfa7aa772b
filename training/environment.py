"""Everything trials share: the benchmark on disk, the backbone, cached visual features.

Preparing is idempotent: each artifact is built on first use and reused afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from models.backbone_pin import backbone_digests, check_readable, compare_backbone
from models.backbones.presets import get_preset
from models.features import FeatureTable, UnreadableImageError, cached_features, encoder_identity
from models.location import BackboneLocation
from models.visual_encoder import build_visual_encoder, visual_feature_dim
from tasks import generate_benchmark
from tasks.data_spec import GENERATED_TASKS, DataSpec, generated_spec
from tasks.digests import compare_digests, file_digests
from tasks.errors import DatasetError
from training.devices import configure_device
from training.pretrain.embedded import ensure_embedded_backbone
from training.task_readers import PreparedTask
from training.task_registry import data_files, prepare_tasks
from training.visual_inputs import PixelTable, VisualInputs, build_video_table, frames_to_extract

log = logging.getLogger(__name__)

SUPPORTED_TASKS = GENERATED_TASKS  # the generated benchmark's tasks (the default data)


@dataclass(frozen=True)
class TrialEnvironment:
    """What every trial of a study shares.

    Attributes:
        data: the study's data description (the generated benchmark's, by default).
        data_base: the folder the description's relative paths start from on this machine.
        inputs: content digests of every data file the tasks read, by path (tasks.digests).
        backbone_files: content digests of every backbone file the trials read (models.backbone_pin).
    """

    data_dir: Path
    location: BackboneLocation
    tasks: Mapping[str, PreparedTask]
    features: VisualInputs
    device: torch.device
    data: DataSpec | None = None
    data_base: Path | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    for_search: bool = True  # searches score at most each task's `search_examples`
    backbone_files: Mapping[str, str] = field(default_factory=dict)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


EMBEDDED_IMAGE_SIZE = 64


def benchmark_dir(data_dir: Path, seed: int, image_size: int = EMBEDDED_IMAGE_SIZE) -> Path:
    """One folder per image size, so a base-size backbone (224 px) and the embedded one (64 px)
    never regenerate each other's benchmark; the embedded size keeps the plain name."""
    suffix = "" if image_size == EMBEDDED_IMAGE_SIZE else f"-{image_size}px"
    return data_dir / "benchmark" / f"mini-vl-v3-seed{seed}{suffix}"


@dataclass(frozen=True)
class LoadedData:
    """A study's tasks read from disk and the digests of every file they read: everything that
    can be checked about the data before anything is written."""

    spec: DataSpec
    base: Path | None
    tasks: Mapping[str, PreparedTask]
    digests: Mapping[str, str]


def as_data_spec(data: DataSpec | tuple[str, ...] | list[str], benchmark_seed: int = 0) -> DataSpec:
    """A data description, or task names of the generated benchmark (the default data)."""
    return data if isinstance(data, DataSpec) else generated_spec(tuple(data), benchmark_seed)


def load_data(
    data_dir: Path, backbone: str, data: DataSpec | tuple[str, ...], benchmark_seed: int = 0, data_root: Path | None = None
) -> LoadedData:
    """Read the study's tasks and hash every file they read; generates the benchmark first when
    the data is the generated one (its only write: deterministic, atomic, reused).

    Args:
        data_root: where this machine keeps the data file's folder, when not where the study's
            launch had it (relative paths start there).

    Raises:
        DataSpecError: task names the generated benchmark does not have.
        tasks.DatasetError: every problem of the data files and images, one per line.
    """
    spec = as_data_spec(data, benchmark_seed)
    if spec.generated is not None:
        preset = get_preset(backbone)
        seed = int(spec.generated.get("seed", benchmark_seed))
        base: Path | None = generate_benchmark(benchmark_dir(data_dir, seed, preset.image_size), seed=seed, image_size=preset.image_size)
        log.info("benchmark: %s", base)
    else:
        base = Path(data_root).resolve() if data_root is not None else Path(spec.base) if spec.base else None
    tasks = prepare_tasks(spec, base)
    features = [video.features for task in tasks.values() for video in task.videos.values() if video.features is not None]
    digests = file_digests([*data_files(spec, base), *features], base, _image_files(tasks))
    return LoadedData(spec, base, tasks, digests)


def _image_files(tasks: Mapping[str, PreparedTask]) -> list[Path]:
    images = [path for task in tasks.values() for path in task.image_paths.values()]
    frames = [frame for task in tasks.values() for video in task.videos.values() if video.features is None for frame in video.frames]
    return images + frames


def prepare_environment(
    data_dir: Path,
    backbone: str,
    data: DataSpec | tuple[str, ...] | LoadedData,
    benchmark_seed: int = 0,
    random_init: bool = False,
    data_root: Path | None = None,
    pinned: Mapping[str, str] | None = None,
    pinned_backbone: Mapping[str, Any] | None = None,
    device: torch.device | None = None,
) -> TrialEnvironment:
    """Read the data, build the embedded backbone and cache features, as needed.

    Args:
        data: the study's data description, task names of the generated benchmark, or data
            already loaded (`load_data`: a command that checked it before writing anything).
        random_init: build a base-size preset from its config with random weights (smoke tests);
            its text is read by the project-trained tokenizer of the same family, built here.
        pinned: the study's data digests; a file that differs raises before anything is written.
        pinned_backbone: the study's backbone (models.backbone_pin.backbone_pin); once a missing
            embedded backbone is built, a file that differs raises before any feature is extracted.
        device: where trials train and CLIP features are encoded (`--device`; None: CUDA when present).

    Raises:
        ConfigError: unknown backbone; a base-size preset's weights missing without
            `random_init` (WeightsUnavailable says how to provide them).
        DataSpecError, tasks.DatasetError: bad data (every problem listed).
        InputsChanged: a data file differs from the study's `pinned` one.
        models.embedded.BuildChanged: a built embedded backbone's file changed since its build.
        models.backbone_pin.BackboneChanged: a backbone file differs from the study's `pinned_backbone`,
            or a weight file is truncated.
    """
    loaded = data if isinstance(data, LoadedData) else load_data(data_dir, backbone, data, benchmark_seed, data_root)
    if pinned:
        compare_digests(
            pinned,
            loaded.digests,
            f"The study was launched on other data ({loaded.spec.source}); "
            "give this machine the same files (pass --data-root DIR where its copy of the data folder lives)",
        )
    preset = get_preset(backbone)
    # The embedded backbones' pretraining corpus stays disjoint from the generated benchmark
    # (seed 0), whatever data this study reads, so that every study on a machine (and every
    # machine, and `python -m models.pretrain`) builds the same backbone: the builders default
    # to that benchmark (training.pretrain.exclusion).
    if preset.embedded:
        ensure_embedded_backbone(data_dir, preset)
    if preset.vl_pretrained_from is not None:  # builds its base first, then the variant
        from training.pretrain.vl_variant import ensure_vl_pretrained_backbone

        ensure_vl_pretrained_backbone(data_dir, preset)
    location = BackboneLocation.resolve(backbone, data_dir, random_init=random_init)
    location.require_weights()
    if location.tokenizer_preset is not None:
        ensure_embedded_backbone(data_dir, get_preset(location.tokenizer_preset))
    weights = backbone_digests(location)
    if pinned_backbone:
        compare_backbone(pinned_backbone, location, weights, data_dir)
    check_readable(location, data_dir)
    device = default_device() if device is None else device
    configure_device(device)
    features = visual_inputs(data_dir, location, loaded.tasks, device)
    return TrialEnvironment(
        data_dir, location, loaded.tasks, features, device, loaded.spec, loaded.base, loaded.digests, backbone_files=weights
    )


def visual_inputs(
    data_dir: Path, location: BackboneLocation, tasks: Mapping[str, PreparedTask], device: torch.device | None = None
) -> VisualInputs:
    """The tasks' image grid features and video frame features, from the cache or extracted once.

    Images and video frames go into separate stores, so that adding a video task never
    re-extracts the images and the other way round.

    Raises:
        tasks.DatasetError: an image or frame file does not decode (the message names it).
    """
    preset = location.preset
    device = torch.device("cpu") if device is None else device
    identity = encoder_identity(location, device)

    def encoder_on_device() -> tuple[torch.nn.Module, Callable]:
        encoder, preprocess = build_visual_encoder(location)
        return encoder.to(device), preprocess

    def store(paths: Mapping[str, Path]) -> FeatureTable | None:
        if not paths:
            return None
        try:
            return cached_features(data_dir / "features", paths, identity, encoder_on_device)
        except UnreadableImageError as error:  # a file of the data: the commands report DatasetErrors in one line
            raise DatasetError(str(error)) from error

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
