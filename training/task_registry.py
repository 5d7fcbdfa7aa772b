"""Every data format a task can be read from, and the one path that prepares a study's tasks.

A study's data description (tasks.data_spec) names each task's format and paths; the
generated benchmark is one such description. :func:`prepare_tasks` reads every task through
its format's reader, and lists every problem of every file at once.
"""

from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Callable, Mapping

from models.config import VIDEO_TASK_NAMES
from tasks.data_spec import DataSpec, TaskData
from tasks.errors import DatasetError
from training.task_readers import (
    CaptionReader,
    FormatReader,
    GQAReader,
    JSONLReader,
    NLVR2Reader,
    PreparedTask,
    VQAReader,
    assemble,
    prepare_caption,
    prepare_gqa,
    prepare_nlvr2,
    prepare_vqa,
)
from training.video_task_readers import VideoCaptionReader, VideoQAReader, prepare_video_caption, prepare_video_qa

IMAGE_TASKS = ("vqa", "gqa", "nlvr2", "caption")
# The generated benchmark writes tvqa and tvc; how2qa and yc2c read the real VALUE files.
VIDEO_TASKS = VIDEO_TASK_NAMES

# A generated benchmark's task read from its root (scripts that read a benchmark directly).
PREPARERS: dict[str, Callable[..., PreparedTask]] = {
    "vqa": prepare_vqa,
    "gqa": prepare_gqa,
    "nlvr2": prepare_nlvr2,
    "caption": prepare_caption,
    "tvqa": lambda root, eval_split="val": prepare_video_qa(root, "tvqa", eval_split),
    "tvc": lambda root, eval_split="val": prepare_video_caption(root, "tvc", eval_split),
}


def reader_for(spec: DataSpec, task: TaskData, base: Path | None = None) -> FormatReader:
    """The reader of `task`'s format over its resolved paths (`base`: see DataSpec.resolve)."""

    def path(key: str) -> Path | None:
        return spec.resolve(task, key, base)

    fmt = task.format
    if fmt == "jsonl":
        files = {split: p for split in ("train", "val", "test") if (p := path(split)) is not None}
        return JSONLReader(task.name, files)
    root = path("root")
    assert root is not None  # the data file's rules require it
    # The task's own folder is `root`; the loaders' defaults (root/<task>/...) serve layouts
    # that keep every task under one folder, which a data file names directly instead.
    images = path("images") or root / "images"
    if fmt == "vqa":
        return VQAReader(root, folder=root, images=images)
    if fmt == "gqa":
        return GQAReader(root, folder=root, images=images)
    if fmt == "nlvr2":
        return NLVR2Reader(root, folder=root, images=images)
    if fmt == "caption":
        return CaptionReader(root, folder=root, images=images)
    videos, features = path("videos") or root / "videos", path("features") or root / "video_features"
    if fmt in ("tvqa", "how2qa"):
        return VideoQAReader(root, fmt, folder=root, videos=videos, features=features)
    if fmt in ("tvc", "yc2c"):
        return VideoCaptionReader(root, fmt, folder=root, videos=videos, features=features)
    raise ValueError(f"unknown data format {fmt!r}")


def has_split(spec: DataSpec, task: TaskData, split: str, base: Path | None = None) -> bool:
    """Whether `task` has `split` on disk (a JSONL test file is optional; layouts keep theirs)."""
    if task.format == "jsonl":
        return split in task.paths
    reader = reader_for(spec, task, base)
    folder = spec.resolve(task, "root", base)
    name = reader.split_names.get(split)
    if name is None or folder is None:
        return False
    candidates = {
        "vqa": [f"karpathy_{name}.json"],
        "gqa": [f"{name}.json"],
        "nlvr2": [f"{name}.json"],
        "caption": ["dataset_coco.json"],
    }.get(task.format, [f"{name}.jsonl"])
    return any((folder / candidate).is_file() for candidate in candidates)


def prepare_tasks(spec: DataSpec, base: Path | None = None, splits: tuple[str, ...] = ("val", "test")) -> dict[str, PreparedTask]:
    """Read every task of `spec`: training examples and each of `splits` it has on disk.

    The test split is read (never scored by a search) so that the feature cache covers every
    image a production run will score, and a search and `search.train` share one store.

    Raises:
        tasks.DatasetError: every problem of every task's files, one per line.
    """
    prepared: dict = {}
    problems: list[str] = []
    for task in spec.tasks:
        wanted = tuple(s for s in splits if s == task.search_split or has_split(spec, task, s, base))
        try:
            reader = reader_for(spec, task, base)
            prepared[task.name] = assemble(
                task.name,
                task.format,
                reader,
                wanted,
                task.search_split,
                train_examples=task.train_examples,
                weight=task.weight,
                search_examples=task.search_examples,
            )
        except DatasetError as error:
            problems.extend(f"task {task.name!r}: {line}" for line in str(error).splitlines())
        except ValueError as error:  # a metric's own check (e.g. a baseline with nothing to count)
            problems.append(f"task {task.name!r}: {error}")
    problems.extend(_image_id_clashes(prepared))
    if problems:
        raise DatasetError("\n".join(problems))
    return prepared


def _image_id_clashes(tasks: Mapping[str, PreparedTask]) -> list[str]:
    """Two tasks naming different images by one id would share one cached feature row."""
    seen: dict[str, tuple[str, Path]] = {}
    problems = []
    for name, task in tasks.items():
        for img_id, path in task.image_paths.items():
            other = seen.setdefault(img_id, (name, path))
            # Copies of one image in two folders are one image: same bytes, same features.
            if Path(other[1]).resolve() != Path(path).resolve() and not filecmp.cmp(other[1], path, shallow=False):
                problems.append(
                    f"tasks {other[0]!r} and {name!r} both name image id {img_id!r}, for {other[1]} and {path}; "
                    "an image id must mean one file: rename one of the files, or give both tasks the same images folder"
                )
                if len(problems) >= 5:
                    return problems
    return problems


def data_files(spec: DataSpec, base: Path | None = None) -> list[Path]:
    """The data files (not images) the tasks of `spec` read, for the study's digests: each
    JSONL task's files; the JSON and JSONL files of each layout's folder (videos' feature files
    and images are hashed from the prepared tasks, which know which of them are used)."""
    files: list[Path] = []
    for task in spec.tasks:
        if task.format == "jsonl":
            files.extend(p for split in ("train", "val", "test") if (p := spec.resolve(task, split, base)) is not None)
            continue
        root = spec.resolve(task, "root", base)
        if root is not None and root.is_dir():
            files.extend(sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".json", ".jsonl")))
    return files
