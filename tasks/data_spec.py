"""The data description of a study: which tasks it trains and scores, and where their files are.

A user writes it as a YAML data file (paths relative to the file)::

    tasks:
      shapes:                       # the task's name: in scores, recipes and the dashboard
        format: jsonl               # the generic format of tasks/custom.py
        train: shapes/train.jsonl
        val: shapes/val.jsonl
        test: shapes/test.jsonl     # optional
      vqa:
        format: vqa                 # the authors' layout of a real dataset
        root: /datasets/vqa         # karpathy_{train,val,test}.json and the official files
        images: /datasets/coco/images
        search_examples: 2000       # optional: score at most this many during a search
        train_examples: 50000       # optional: train on the first N examples only
        weight: 2.0                 # optional: sampling weight in multi-task training
        search_split: val           # optional: the split search trials score on (default val)

or, for one JSONL task, passes ``--data path/train.jsonl`` (val.jsonl and test.jsonl beside
it; :func:`short_form`). The generated benchmark is the same description with its folders in
the data directory (:func:`generated_spec`), so every study reads its data through one path.

The description travels as a plain dict (:meth:`DataSpec.to_dict`) with the study and every
exported recipe. Relative paths are kept relative to ``base`` (the data file's folder), so a
worker on another machine whose copy lives elsewhere passes ``--data-root`` instead of
editing the study. Pure Python, no torch: the dashboard reads it too.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = [
    "DATA_FORMATS",
    "DataSpec",
    "DataSpecError",
    "TaskData",
    "generated_spec",
    "load_data_file",
    "short_form",
]

IMAGE_FORMATS = ("vqa", "gqa", "nlvr2", "caption")
VIDEO_FORMATS = ("tvqa", "how2qa", "tvc", "yc2c")
DATA_FORMATS = ("jsonl", *IMAGE_FORMATS, *VIDEO_FORMATS)
SPLITS = ("train", "val", "test")

# Path keys each format takes: (required, optional).
_PATH_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "jsonl": (("train", "val"), ("test",)),
    **{name: (("root",), ("images",)) for name in IMAGE_FORMATS},
    **{name: (("root",), ("videos", "features")) for name in VIDEO_FORMATS},
}
_OPTION_KEYS = ("search_split", "search_examples", "train_examples", "weight")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")

# Where the generated benchmark keeps each task (tasks.benchmark writes this layout).
_GENERATED_PATHS: dict[str, dict[str, str]] = {
    "vqa": {"root": "vqa", "images": "images"},
    "gqa": {"root": "gqa", "images": "images"},
    "nlvr2": {"root": "nlvr", "images": "images"},
    "caption": {"root": "coco", "images": "images"},
    "tvqa": {"root": "tvqa", "videos": "videos", "features": "video_features"},
    "tvc": {"root": "tvc", "videos": "videos", "features": "video_features"},
}  # How2QA and YouCook2 captions come only from the real VALUE files (a data file)
GENERATED_TASKS = tuple(_GENERATED_PATHS)


class DataSpecError(ValueError):
    """A data file or description breaks the rules; `problems` lists each, one line a problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class TaskData:
    """One task of a data description.

    Attributes:
        name: the user's name for the task (a Python-style identifier): the key of its scores.
        format: one of :data:`DATA_FORMATS`.
        paths: path key -> path as written (absolute, or relative to the description's base):
            ``train``/``val``/``test`` for jsonl, ``root`` and ``images`` (or ``videos`` and
            ``features``) for the authors' layouts.
        search_split: the split search trials are scored on (never ``test`` unless asked).
        search_examples: score at most this many examples of it during a search (the first ones).
        train_examples: train on at most this many examples (the first ones).
        weight: multiplies the task's share of the training steps (1: the paper's proportional
            sampling by training-set size).
    """

    name: str
    format: str
    paths: Mapping[str, str]
    search_split: str = "val"
    search_examples: int | None = None
    train_examples: int | None = None
    weight: float = 1.0

    @property
    def modality(self) -> str:
        return "video" if self.format in VIDEO_FORMATS else "image"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": self.format, **dict(self.paths)}
        for key in _OPTION_KEYS:
            value = getattr(self, key)
            if value != _DEFAULTS[key]:
                data[key] = value
        return data


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TaskData) if f.name in _OPTION_KEYS}


@dataclass(frozen=True)
class DataSpec:
    """The tasks of a study and where their files are.

    Attributes:
        tasks: the tasks, in the order the user wrote them.
        base: absolute folder that relative paths start from (the data file's folder), or None
            for the generated benchmark, whose folder is in each machine's data directory.
        source: where the description came from, for messages (a file, or the generated benchmark).
        generated: for the generated benchmark, its seed (the image size follows the backbone).
    """

    tasks: tuple[TaskData, ...]
    base: str | None
    source: str
    generated: Mapping[str, int] | None = field(default=None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(task.name for task in self.tasks)

    def task(self, name: str) -> TaskData:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"no task {name!r} in {self.source}; its tasks: {', '.join(self.names)}")

    def resolve(self, task: TaskData, key: str, base: Path | None = None) -> Path | None:
        """`task`'s path `key` as an absolute path (None when the task has no such path).

        Args:
            base: the folder relative paths start from, when not :attr:`base` (the generated
                benchmark's folder in this machine's data directory, or a worker's --data-root).
        """
        written = task.paths.get(key)
        if written is None:
            return None
        path = Path(written).expanduser()
        if path.is_absolute():
            return path
        start = base if base is not None else Path(self.base) if self.base is not None else None
        if start is None:
            raise ValueError(f"{self.source}: relative path {written!r} needs a base folder")
        return start / path

    def subset(self, names: tuple[str, ...]) -> "DataSpec":
        """The same description with only `names`, in that order (KeyError for an unknown name)."""
        return dataclasses.replace(self, tasks=tuple(self.task(name) for name in names))

    def rebased(self, base: Path) -> "DataSpec":
        """Relative paths start at `base` instead (a worker whose copy of the data lives elsewhere)."""
        return dataclasses.replace(self, base=str(Path(base).resolve()))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tasks": {task.name: task.to_dict() for task in self.tasks}, "source": self.source}
        if self.base is not None:
            data["base"] = self.base
        if self.generated is not None:
            data["generated"] = dict(self.generated)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "the stored data description") -> "DataSpec":
        """Rebuild a description from :meth:`to_dict`; DataSpecError lists what is wrong."""
        if not isinstance(data, Mapping):
            raise DataSpecError([f"{where} must be a mapping with 'tasks', got {type(data).__name__}"])
        base = data.get("base")
        spec = _parse_tasks(data.get("tasks"), where, base=Path(base) if base else None)
        generated = data.get("generated")
        return cls(spec, str(base) if base else None, str(data.get("source", where)), dict(generated) if generated else None)


def generated_spec(task_names: tuple[str, ...], seed: int = 0) -> DataSpec:
    """The generated benchmark's tasks as a data description (the default data of a study).

    Its paths are relative to the benchmark's folder in the data directory, which depends on
    the machine and the backbone's image size, so they are resolved when a trial environment is
    prepared (`training.environment`).

    Raises:
        DataSpecError: a name that is not one of :data:`GENERATED_TASKS`.
    """
    unknown = [name for name in task_names if name not in _GENERATED_PATHS]
    if unknown or not task_names:
        raise DataSpecError(
            [
                f"tasks {unknown or '(none)'} are not tasks of the generated benchmark; choose from "
                f"{', '.join(GENERATED_TASKS)}, or describe your own data with --data FILE"
            ]
        )
    tasks = tuple(TaskData(name, name, dict(_GENERATED_PATHS[name])) for name in task_names)
    return DataSpec(tasks, None, f"generated benchmark (seed {seed})", {"seed": seed})


def load_data_file(path: Path) -> DataSpec:
    """Read and check a YAML data file (layout in the module docstring).

    Only the file's own rules are checked here (keys, formats, names, values, that each path
    exists); the datasets' records and images are checked when the tasks are loaded.

    Raises:
        DataSpecError: every problem, one line each, naming the file, the task and the fix.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        return short_form(path)
    if not path.exists():
        raise DataSpecError([f"data file {str(path)!r} does not exist; give the path of a YAML data file or of a train.jsonl"])
    if not path.is_file():
        raise DataSpecError([f"data file {str(path)!r} is a directory; give the YAML data file inside it (or its train.jsonl)"])
    try:
        data = _load_unique_keys(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise DataSpecError([f"data file {str(path)!r} is not UTF-8 text ({error}); save it as UTF-8 YAML"]) from None
    except yaml.YAMLError as error:
        raise DataSpecError([f"data file {str(path)!r} is not valid YAML: {_one_line(error)}; fix the syntax"]) from None
    where = f"data file {str(path)!r}"
    if not isinstance(data, dict) or set(data) != {"tasks"}:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataSpecError([f"{where} must be a mapping with one key, 'tasks' (got {found}); see 'Search on your own data' in the README"])
    base = path.resolve().parent
    tasks = _parse_tasks(data["tasks"], where, base=base, check_files=True)
    return DataSpec(tasks, str(base), str(path.resolve()))


def short_form(train: Path) -> DataSpec:
    """`--data path/train.jsonl`: one JSONL task named after its folder, val/test.jsonl beside it.

    Raises:
        DataSpecError: no such file, or no val.jsonl beside it.
    """
    train = Path(train)
    problems = []
    if not train.is_file():
        problems.append(f"--data {str(train)!r} does not exist or is not a file; give a train.jsonl or a YAML data file")
    val = train.with_name("val.jsonl")
    if train.is_file() and not val.is_file():
        problems.append(
            f"--data {str(train)!r}: no val.jsonl beside it ({val}); search trials are scored on it, so add it, or write a data file naming the splits"
        )
    if problems:
        raise DataSpecError(problems)
    folder = train.resolve().parent
    name = re.sub(r"[^A-Za-z0-9_]", "_", folder.name)
    name = name if _NAME.fullmatch(name) else "custom"
    paths = {"train": train.name, "val": val.name}
    if train.with_name("test.jsonl").is_file():
        paths["test"] = "test.jsonl"
    return DataSpec((TaskData(name, "jsonl", paths),), str(folder), str(train.resolve()))


def _parse_tasks(tasks: Any, where: str, base: Path | None, check_files: bool = False) -> tuple[TaskData, ...]:
    if not isinstance(tasks, dict) or not tasks:
        raise DataSpecError([f"{where}: 'tasks' must be a non-empty mapping of task name -> its format and paths"])
    problems: list[str] = []
    parsed = []
    for name, entry in tasks.items():
        task = _parse_task(name, entry, f"{where}, task {name!r}", base, check_files, problems)
        if task is not None:
            parsed.append(task)
    if problems:
        raise DataSpecError(problems)
    return tuple(parsed)


def _parse_task(name: Any, entry: Any, where: str, base: Path | None, check_files: bool, problems: list[str]) -> TaskData | None:
    before = len(problems)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"{where}: the name must start with a letter and hold only letters, digits and _ (at most 40), e.g. my_vqa")
    if not isinstance(entry, dict):
        problems.append(f"{where} must be a mapping with 'format' and its paths, got {type(entry).__name__}")
        return None
    fmt = entry.get("format")
    if fmt not in DATA_FORMATS:
        problems.append(f"{where}: format {fmt!r} is unknown; use one of {', '.join(DATA_FORMATS)}")
        return None
    required, optional = _PATH_KEYS[fmt]
    unknown = sorted(set(entry) - {"format", *required, *optional, *_OPTION_KEYS})
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}; a {fmt} task takes {', '.join((*required, *optional, *_OPTION_KEYS))}")
    paths = {}
    for key in (*required, *optional):
        if key not in entry:
            if key in required:
                problems.append(f"{where}: '{key}' is missing; a {fmt} task needs {' and '.join(required)}")
            continue
        value = entry[key]
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: '{key}' must be a path string, got {value!r}")
            continue
        paths[key] = value
        if check_files and base is not None:
            _check_path(value, key, fmt, base, where, problems)
    options = _options(entry, fmt, where, problems)
    if len(problems) > before:
        return None
    return TaskData(name, fmt, paths, **options)


def _check_path(value: str, key: str, fmt: str, base: Path, where: str, problems: list[str]) -> None:
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    wants_file = fmt == "jsonl"
    if not path.exists():
        problems.append(f"{where}: {key} {value!r} does not exist ({path}); fix the path (relative paths start at the data file's folder)")
    elif wants_file and not path.is_file():
        problems.append(f"{where}: {key} {value!r} is a directory; give the .jsonl file of the {key} split")
    elif not wants_file and not path.is_dir():
        problems.append(f"{where}: {key} {value!r} is a file; give the folder ({_FOLDER_HINTS[key]})")


_FOLDER_HINTS = {
    "root": "the dataset's folder in the authors' layout",
    "images": "the folder of the images, <img_id>.jpg/.png",
    "videos": "the frames folder, <vid_name>/frame_<NNN>.png",
    "features": "the folder of per-video <vid_name>.npz features",
}


def _options(entry: dict, fmt: str, where: str, problems: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    split = entry.get("search_split", "val")
    if split not in ("val", "test"):
        problems.append(f"{where}: search_split {split!r} must be val (the default) or test")
    elif split == "test" and fmt == "jsonl" and "test" not in entry:
        problems.append(f"{where}: search_split is test but the task has no 'test' file; add one or score on val")
    else:
        options["search_split"] = split
    for key in ("search_examples", "train_examples"):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{where}: {key} must be a whole number >= 1 (or absent for all examples), got {value!r}")
        else:
            options[key] = value
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
        problems.append(f"{where}: weight must be a number > 0 (1 samples the task by its size, as the paper does), got {weight!r}")
    else:
        options["weight"] = float(weight)
    return options


def _one_line(error: yaml.YAMLError) -> str:
    return " ".join(str(error).split())


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (a task name used twice
    would otherwise silently replace the first)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key!r} is written twice (line {key_node.start_mark.line + 1}); each task name and key once",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_unique_keys(text: str) -> object:
    """`yaml.safe_load` with the duplicate-key check (what yaml.load does with this safe loader)."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
