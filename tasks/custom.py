"""Load a user's own data from one generic JSON-lines file.

Each line is one example::

    {"id": "q1", "image": "photos/cat.jpg", "text": "what animal is this?", "answers": ["cat", "cat", "kitten"]}
    {"id": "q2", "images": ["l.jpg", "r.jpg"], "text": "both images show a dog.", "answer": "false"}
    {"id": "q3", "image": "a.jpg", "text": "which is bigger?", "choices": ["the cat", "the dog"], "answer": "the dog"}
    {"id": "c1", "image": "a.jpg", "captions": ["a cat on a mat.", "a grey cat lying down."]}

Fields:

* ``id`` (optional): an int or non-empty string, unique in the file; the line
  number (from 1) when absent. It is the key of the predictions file.
* ``image`` (one path) or ``images`` (a non-empty list of paths): relative to
  the JSONL file's directory, or absolute. Two images work like NLVR2.
* ``text``: the question or statement; optional (empty) for captioning.
* The target, exactly one of:
  ``answer`` (a string) or ``answers`` (a list of strings, e.g. one per
  annotator) for question answering, scored by exact match after GQA
  normalisation against any listed answer; training samples an answer in
  proportion to how many annotators gave it;
  ``captions`` (a non-empty list of reference captions) for captioning,
  scored with the COCO caption metrics.
* ``choices`` (optional, QA only): the answer options; every answer must be
  one of them.

All lines of one file must be of the same kind (all QA or all captioning).
The image id of an example (its feature-cache key) is the image path relative
to the JSONL directory, without suffix.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks._records import check_unique, read_jsonl, require_list
from tasks.errors import DatasetError
from tasks.examples import CaptionExample, QAExample
from tasks.metrics.exact_match import normalize_gqa_answer

__all__ = ["CustomDataset", "accepted_answers", "load_custom_jsonl"]


@dataclass(frozen=True)
class CustomDataset:
    """The examples of one generic JSONL file.

    Attributes:
        kind: ``"qa"`` (examples are :class:`QAExample`) or ``"caption"``
            (:class:`CaptionExample`).
        examples: The examples, in file order.
    """

    kind: str
    examples: list[QAExample] | list[CaptionExample]


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def accepted_answers(example: QAExample) -> dict[str, float]:
    """The answers that score 1 for a QA example, normalised as GQA's evaluator normalises a
    prediction: any listed answer is right (the label's weights only steer training).

    Training's metric (training.task_readers.JSONLReader) and scoring a results file
    (``python -m search.evaluate jsonl``) both ask here, so the two cannot disagree.
    """
    return {normalize_gqa_answer(a): 1.0 for a in example.label}


def _images(record: dict, base: Path, where: str, images_required: bool) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    if ("image" in record) == ("images" in record):
        raise DatasetError(f"{where} must have exactly one of 'image' (a path) or 'images' (a list of paths).")
    names = [record["image"]] if "image" in record else record["images"]
    if not _strings(names):
        raise DatasetError(f"{where} has image(s) {names!r}; give non-empty path strings.")
    paths = tuple(Path(n) if Path(n).is_absolute() else base / n for n in names)
    for name, path in zip(names, paths):
        if images_required and not path.is_file():
            raise DatasetError(f"{where} names image {name!r}, but {path} does not exist; fix the path.")
    img_ids = tuple(str(Path(n).with_suffix("")) for n in names)
    return img_ids, paths


def _kind(record: dict, where: str) -> str:
    targets = [k for k in ("answer", "answers", "captions") if k in record]
    if len(targets) != 1:
        raise DatasetError(f"{where} has target field(s) {targets}; give exactly one of 'answer', 'answers' or 'captions'.")
    return "caption" if targets == ["captions"] else "qa"


def _qa(record: dict, key: int | str, img_ids: tuple, paths: tuple, where: str) -> QAExample:
    answers = [record["answer"]] if "answer" in record else record["answers"]
    if not _strings(answers):
        raise DatasetError(f"{where} has answer(s) {answers!r}; give a non-empty string or list of strings.")
    choices = record.get("choices", [])
    if "choices" in record and (not _strings(choices) or any(a not in choices for a in answers)):
        raise DatasetError(
            f"{where} has choices {choices!r} and answer(s) {answers!r}; choices must be a list of strings that contains every answer."
        )
    counts = Counter(answers)
    return QAExample(
        question_id=key,
        img_ids=img_ids,
        image_paths=paths,
        question=record.get("text", ""),
        label={a: c / len(answers) for a, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))},
        choices=tuple(choices),
    )


def load_custom_jsonl(path: Path, images_required: bool = True) -> CustomDataset:
    """Load a generic JSONL file (format in the module docstring).

    Args:
        path: The ``.jsonl`` file; relative image paths start at its directory.
        images_required: Refuse a record whose image file is missing. Scoring a results
            file against the file's answers or captions needs no image, so it passes False.

    Returns:
        The dataset, with its kind.

    Raises:
        DatasetError: For a missing or malformed file, an empty file, a record
            without exactly one image field or target field, a missing image,
            mixed kinds, a duplicate id, a captioning record with several
            images, or answers outside the choices. Every bad record is listed
            (one per line, up to :data:`MAX_LISTED`), not only the first, so a
            file can be repaired in one pass.
    """
    path = Path(path)
    records = require_list(read_jsonl(path), path, "records")
    first_kind: tuple[str, str] | None = None  # (kind, where) of the first well-formed record
    examples: list[Any] = []
    seen: set[int | str] = set()
    problems: list[str] = []
    for i, record in enumerate(records):
        where = f"{path} record #{i}"
        try:
            kind, example = _example(record, i, where, path.parent, seen, images_required)
        except DatasetError as error:
            problems.append(str(error))
            continue
        if first_kind is None:
            first_kind = (kind, where)
        elif kind != first_kind[0]:
            problems.append(
                f"{where} is a {kind} record, but {first_kind[1]} is a {first_kind[0]} record; one file holds "
                "one kind: put QA and captioning examples in separate files (separate tasks)."
            )
            continue
        examples.append(example)
    if problems:
        more = f"\n... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise DatasetError("\n".join(problems[:MAX_LISTED]) + more)
    assert first_kind is not None  # require_list refused an empty file
    return CustomDataset(first_kind[0], examples)


MAX_LISTED = 50  # bad records listed in one error; a wholly wrong file would print thousands


def _example(
    record: Any, i: int, where: str, base: Path, seen: set[int | str], images_required: bool = True
) -> tuple[str, QAExample | CaptionExample]:
    """One record as (kind, example); DatasetError names the record, the rule and the fix."""
    if not isinstance(record, dict):
        raise DatasetError(f"{where} must be a JSON object, but got {type(record).__name__}.")
    key = record.get("id", i + 1)
    if isinstance(key, bool) or not isinstance(key, (int, str)) or key == "":
        raise DatasetError(f"{where} has id={key!r}; ids must be ints or non-empty strings.")
    check_unique(key, seen, where, "id")
    if not isinstance(record.get("text", ""), str):
        raise DatasetError(f"{where} has text={record['text']!r}; text must be a string.")
    kind = _kind(record, where)
    img_ids, paths = _images(record, base, where, images_required)
    if kind == "qa":
        return kind, _qa(record, key, img_ids, paths, where)
    if not _strings(record["captions"]) or len(paths) != 1:
        raise DatasetError(
            f"{where} has captions {record['captions']!r} and {len(paths)} image(s); captioning "
            "needs one image and a non-empty list of caption strings."
        )
    return kind, CaptionExample(key, img_ids[0], paths[0], tuple(record["captions"]), "custom")
