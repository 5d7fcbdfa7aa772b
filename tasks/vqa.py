"""Load a VQA v2 Karpathy split (real or from :mod:`tasks.vqa_generate`).

Reads ``root/vqa/karpathy_{split}.json`` and, when present, the 10 raw answers
per question from ``root/vqa/v2_mscoco_{split}_annotations.json``; images are
``root/images/<img_id>.{png,jpg,jpeg}``. Every problem raises
:class:`~tasks.errors.DatasetError` naming the file and the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks._records import read_json as _read_json
from tasks.errors import DatasetError

__all__ = ["SPLITS", "VQAExample", "load_vqa_split"]

# test_ood only exists in the generated benchmark (held-out attribute combinations).
SPLITS: tuple[str, ...] = ("train", "val", "test", "test_ood")
_REQUIRED_KEYS = ("img_id", "sent", "question_id", "label")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class VQAExample:
    """One question about one image.

    Attributes:
        question_id: Unique question id.
        img_id: Image id, the image's file name without suffix.
        image_path: Path of the image file.
        question: The question text (``sent`` in the Karpathy files).
        label: Normalised answer -> soft score in [0, 1].
        answers: The 10 raw human answers from the official annotation file,
            or ``()`` when that file is absent or lacks the question.
    """

    question_id: int
    img_id: str
    image_path: Path
    question: str
    label: dict[str, float]
    answers: tuple[str, ...]


def _image_path(images_dir: Path, img_id: str) -> Path | None:
    for suffix in _IMAGE_SUFFIXES:
        path = images_dir / f"{img_id}{suffix}"
        if path.is_file():
            return path
    return None


def _check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise DatasetError(f"{where} must be a JSON object, but got {type(record).__name__}.")
    missing = [k for k in _REQUIRED_KEYS if k not in record]
    if missing:
        raise DatasetError(f"{where} lacks required key(s) {missing}; every record needs {list(_REQUIRED_KEYS)}.")
    img_id, sent, qid, label = (record[k] for k in _REQUIRED_KEYS)
    problems = []
    if not isinstance(qid, int) or isinstance(qid, bool):
        problems.append(f"question_id must be an int, got {qid!r}")
    if not isinstance(img_id, str) or not img_id:
        problems.append(f"img_id must be a non-empty string, got {img_id!r}")
    if not isinstance(sent, str):
        problems.append(f"sent must be a string, got {sent!r}")
    if not isinstance(label, dict) or not all(
        isinstance(a, str) and isinstance(s, (int, float)) and not isinstance(s, bool) for a, s in label.items()
    ):
        problems.append(f"label must map answer strings to numbers, got {label!r}")
    if problems:
        raise DatasetError(f"{where} is malformed: " + "; ".join(problems) + ".")


def _raw_answers(path: Path) -> Mapping[int, tuple[str, ...]]:
    """question_id -> raw answers, or empty when the annotation file is absent."""
    if not path.exists():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DatasetError(f"{path} must be an object with an 'annotations' list, as in VQA v2.")
    out: dict[int, tuple[str, ...]] = {}
    for i, ann in enumerate(data["annotations"]):
        try:
            out[ann["question_id"]] = tuple(a["answer"] for a in ann["answers"])
        except (KeyError, TypeError) as err:
            raise DatasetError(
                f"{path} annotation #{i} is malformed ({err!r}); it needs 'question_id' and 'answers': [{{'answer': ...}}, ...]."
            ) from err
    return out


def load_vqa_split(root: Path, split: str, images_dir: Path | None = None, folder: Path | None = None) -> list[VQAExample]:
    """Load one split, checking every record and image.

    Args:
        root: Dataset root (holds ``vqa/`` and ``images/``).
        split: One of :data:`SPLITS`.
        images_dir: Where the images are; default ``root/images``.
        folder: The folder of the ``karpathy_*.json`` and official files; default
            ``root/vqa`` (a data file names it directly).

    Returns:
        The examples, in file order.

    Raises:
        DatasetError: For an unknown split, a missing or malformed file, a
            record with a missing or mistyped key, a duplicate question id, a
            missing image, or an empty split.
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; accepted splits are {list(SPLITS)}.")
    root = Path(root)
    folder = Path(folder) if folder is not None else root / "vqa"
    images = Path(images_dir) if images_dir is not None else root / "images"
    path = folder / f"karpathy_{split}.json"
    records = _read_json(path)
    if not isinstance(records, list):
        raise DatasetError(f"{path} must hold a JSON list of question records, got {type(records).__name__}.")
    if not records:
        raise DatasetError(f"{path} holds no questions; an empty split cannot be trained or evaluated.")
    answers = _raw_answers(folder / f"v2_mscoco_{split}_annotations.json")
    examples, seen = [], set()
    for i, record in enumerate(records):
        where = f"{path} record #{i}"
        _check_record(record, where)
        qid = record["question_id"]
        if qid in seen:
            raise DatasetError(f"{where} repeats question_id={qid}; question ids must be unique.")
        seen.add(qid)
        image = _image_path(images, record["img_id"])
        if image is None:
            raise DatasetError(
                f"{where} (question_id={qid}) names img_id={record['img_id']!r}, but no "
                f"{images / record['img_id']}{{{','.join(_IMAGE_SUFFIXES)}}} exists; "
                "regenerate the dataset or restore the image."
            )
        examples.append(
            VQAExample(
                question_id=qid,
                img_id=record["img_id"],
                image_path=image,
                question=record["sent"],
                label={a: float(s) for a, s in record["label"].items()},
                answers=answers.get(qid, ()),
            )
        )
    return examples
