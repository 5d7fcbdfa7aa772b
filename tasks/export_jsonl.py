"""Write one task of a benchmark as a user's own data: generic JSONL plus its images.

The result is what :mod:`tasks.custom` reads, so the worked example of "your own
data" runs on files a command of the project wrote rather than on hand-made
ones::

    out/train.jsonl  out/val.jsonl  out/test.jsonl  out/images/<file>

Each split is read with the task's own loader (the real files' split names:
GQA's ``valid`` and ``testdev``, NLVR2's ``valid``) and each example becomes
one line:

* ``vqa``: ``{"id", "image", "text", "answers"}``, the 10 raw annotator
  answers when the annotation file has them, else the label's answers;
* ``gqa``: ``{"id", "image", "text", "answer"}``;
* ``nlvr2``: ``{"id", "images": [left, right], "text", "choices": ["true",
  "false"], "answer"}``;
* ``caption``: ``{"id", "image", "captions"}``.

Same input, same bytes: keys in that fixed order, examples in file order, one
object per line with a trailing newline, images copied byte for byte under
their own file names. The folder is built beside ``out`` and renamed into
place, so ``out`` is either absent (or empty) or complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tasks.benchmark import TASK_SPLITS
from tasks.coco_captions import load_caption_split
from tasks.errors import DatasetError
from tasks.examples import CaptionExample, PairExample, QAExample
from tasks.gqa import load_gqa_split
from tasks.nlvr2 import load_nlvr2_split
from tasks.vqa import VQAExample, load_vqa_split

__all__ = ["EXPORT_SPLITS", "EXPORT_TASKS", "check_export_args", "export_jsonl"]

EXPORT_TASKS: tuple[str, ...] = ("vqa", "gqa", "nlvr2", "caption")
# The written files; test_ood stays out: a user's own data has no held-out split.
EXPORT_SPLITS: tuple[str, ...] = ("train", "val", "test")
# The file each task's loader reads for a split (its real split name), to name what is missing.
_TASK_FILES = {
    "vqa": "vqa/karpathy_{split}.json",
    "gqa": "gqa/{split}.json",
    "nlvr2": "nlvr/{split}.json",
    "caption": "coco/dataset_coco.json",
}
NLVR2_CHOICES = ["true", "false"]  # as training.task_readers.NLVR2_CHOICES (not imported: it needs torch)


def check_export_args(task: str, out: Path, max_examples: int | None) -> None:
    """Check the request before anything is read or written.

    The command line calls this before it generates a benchmark, so bad input
    writes nothing anywhere.

    Raises:
        ValueError: For a task outside :data:`EXPORT_TASKS`, a ``max_examples``
            that is not a positive int, or an ``out`` that is a file or a
            folder that is not empty.
    """
    if task not in EXPORT_TASKS:
        raise ValueError(f"task {task!r} cannot be exported; choose one of {', '.join(EXPORT_TASKS)}.")
    if max_examples is not None and (type(max_examples) is not int or max_examples < 1):
        raise ValueError(
            f"max examples {max_examples!r} is not a positive count; give at least 1, or leave it out to export every example."
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out folder {out} is a file; an export needs a new or empty folder, so pass another path.")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"out folder {out} is not empty; an export needs a new or empty folder, so pass another path or empty this one.")


def export_jsonl(benchmark_root: Path, task: str, out: Path, max_examples: int | None = None) -> dict[str, Path]:
    """Write ``task``'s train/val/test splits as generic JSONL files plus the images they use.

    Args:
        benchmark_root: A dataset root in the real layouts (``python -m tasks
            generate ROOT`` writes one).
        task: One of :data:`EXPORT_TASKS`.
        out: A new or empty folder; its parent is created when missing.
        max_examples: Keep the first N examples of each split (file order);
            ``None`` keeps them all.

    Returns:
        ``{"train": out/train.jsonl, "val": out/val.jsonl, "test":
        out/test.jsonl, "images": out/images}``.

    Raises:
        ValueError: For a bad ``task``, ``max_examples`` or ``out`` (see
            :func:`check_export_args`).
        DatasetError: For a root without the task's files, any defect the
            loader finds, an id used twice across the splits, or two images of
            one file name in different folders.
    """
    check_export_args(task, out, max_examples)
    root, out = Path(benchmark_root), Path(out)
    _require_task_files(root, task)
    splits = {split: _records(root, task, split)[:max_examples] for split in EXPORT_SPLITS}
    _check_unique_ids(splits, task)
    images = _used_images(splits)
    _publish(out, lambda staging: _write(staging, splits, images))
    written = {split: out / f"{split}.jsonl" for split in EXPORT_SPLITS}
    return {**written, "images": out / "images"}


def _require_task_files(root: Path, task: str) -> None:
    files = list(dict.fromkeys(_TASK_FILES[task].format(split=TASK_SPLITS[task][s]) for s in EXPORT_SPLITS))
    missing = [name for name in files if not (root / name).is_file()]
    if missing:
        raise DatasetError(
            f"benchmark root {root} has no {task} data (missing {', '.join(missing)}); pass the folder "
            "that `python -m tasks generate ROOT` wrote, or drop --benchmark to export the default benchmark."
        )


# An example's record plus the image files it names: (record, [(file name, source path), ...]).
Record = tuple[dict[str, Any], list[tuple[str, Path]]]


def _records(root: Path, task: str, split: str) -> list[Record]:
    """One split as records, in file order; examples without any answer are left out."""
    split_name = TASK_SPLITS[task][split]
    if task == "vqa":
        return [r for r in map(_vqa_record, load_vqa_split(root, split_name)) if r is not None]
    if task == "gqa":
        return [r for r in map(_gqa_record, load_gqa_split(root, split_name)) if r is not None]
    if task == "nlvr2":
        return [_nlvr2_record(e) for e in load_nlvr2_split(root, split_name)]
    return [_caption_record(e) for e in load_caption_split(root, split_name)]


def _label_answers(label: dict[str, float]) -> list[str]:
    """The accepted answers, best first; a zero score is not an answer (VQA's unscored labels)."""
    return [a for a, s in sorted(label.items(), key=lambda kv: (-kv[1], kv[0])) if s > 0 and a]


def _image_field(paths: Sequence[Path]) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    names = [f"images/{p.name}" for p in paths]
    field = {"image": names[0]} if len(names) == 1 else {"images": names}
    return field, [(p.name, p) for p in paths]


def _vqa_record(e: VQAExample) -> Record | None:
    # The raw answers keep the annotators' agreement, which the generic format turns into the
    # answer weights; the label is only a fallback where the annotation file is absent.
    answers = [a for a in e.answers if a] or _label_answers(e.label)
    if not answers:
        return None  # the generic format needs a target; VQA training skips these as well
    image, files = _image_field([e.image_path])
    return {"id": e.question_id, **image, "text": e.question, "answers": answers}, files


def _gqa_record(e: QAExample) -> Record | None:
    answers = _label_answers(e.label)
    if not answers:
        return None
    target = {"answer": answers[0]} if len(answers) == 1 else {"answers": answers}
    image, files = _image_field(e.image_paths)
    return {"id": e.question_id, **image, "text": e.question, **target}, files


def _nlvr2_record(e: PairExample) -> Record:
    image, files = _image_field(e.image_paths)
    return {"id": e.identifier, **image, "text": e.statement, "choices": NLVR2_CHOICES, "answer": e.target}, files


def _caption_record(e: CaptionExample) -> Record:
    image, files = _image_field([e.image_path])
    return {"id": e.image_id, **image, "captions": list(e.references)}, files


def _check_unique_ids(splits: dict[str, list[Record]], task: str) -> None:
    # Unique across the splits, not only within a file: a prediction keyed by id must not be
    # able to match an example of another split.
    seen: dict[Any, str] = {}
    for split, records in splits.items():
        for record, _ in records:
            key = (type(record["id"]).__name__, record["id"])
            if key in seen:
                raise DatasetError(
                    f"{task} id {record['id']!r} is in both {seen[key]} and {split}; every exported id "
                    "must be unique, so fix the source files' ids."
                )
            seen[key] = split


def _used_images(splits: dict[str, list[Record]]) -> dict[str, Path]:
    """File name -> source of every image the records name; names must not collide."""
    images: dict[str, Path] = {}
    for records in splits.values():
        for _, files in records:
            for name, path in files:
                if images.setdefault(name, path) != path:
                    raise DatasetError(
                        f"images {images[name]} and {path} share the file name {name!r}; the export keeps "
                        "file names in one images/ folder, so rename one of them."
                    )
    return images


def _write(staging: Path, splits: dict[str, list[Record]], images: dict[str, Path]) -> None:
    for split, records in splits.items():
        # Default separators, as the README's examples print them; bytes, so no newline translation.
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record, _ in records)
        (staging / f"{split}.jsonl").write_bytes(lines.encode("utf-8"))
    (staging / "images").mkdir()
    for name in sorted(images):
        shutil.copyfile(images[name], staging / "images" / name)


def _publish(out: Path, write: Callable[[Path], None]) -> None:
    """Fill a sibling staging folder with ``write``, then rename it to ``out`` (new or empty)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # A sibling of out, so the final rename stays on one file system.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the export is not
        write(staging)
        if out.is_dir():
            out.rmdir()  # empty (checked); fails rather than overwrite if something arrived since
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only left over on failure
