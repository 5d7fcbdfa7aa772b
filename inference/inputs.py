"""New inputs to predict, read from a JSON-lines file (`search.predict --input FILE.jsonl`).

Each line is one example, as in a JSONL task's data file (tasks.custom) without the target::

    {"id": "q1", "image": "photos/cat.jpg", "text": "what animal is this?"}
    {"id": "q2", "images": ["l.jpg", "r.jpg"], "text": "both images show a dog."}
    {"id": "q3", "image": "a.jpg", "text": "which is bigger?", "choices": ["the cat", "the dog"]}
    {"id": "c1", "image": "a.jpg"}

`id` (an int or a non-empty string, unique) defaults to the line number; image paths are
relative to the file's folder; `text` may be left out for captioning; any target the line
carries (`answer`, `answers`, `captions`) is ignored, so a task's own test file can be given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks._records import read_jsonl
from tasks.errors import DatasetError


@dataclass(frozen=True)
class PredictionInputs:
    """The examples of an input file, in file order."""

    ids: list[int | str]
    images: list[tuple[Path, ...]]
    texts: list[str]
    choices: list[tuple[str, ...]]


def read_inputs(path: Path) -> PredictionInputs:
    """Read and check every line of an input file.

    Raises:
        DatasetError: every bad line, one per line of the message (file and line number named).
    """
    path = Path(path)
    records = read_jsonl(path)
    base = path.resolve().parent
    problems: list[str] = []
    ids: list[int | str] = []
    images: list[tuple[Path, ...]] = []
    texts: list[str] = []
    choices: list[tuple[str, ...]] = []
    seen: set[int | str] = set()
    for number, record in enumerate(records, start=1):
        where = f"{path} line {number}"
        if not isinstance(record, dict):
            problems.append(f"{where} is not a JSON object; write one object per line")
            continue
        key = record.get("id", number)
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and key)):
            problems.append(f"{where} has id {key!r}; give an int or a non-empty string")
            continue
        if key in seen:
            problems.append(f"{where} repeats id {key!r}; ids must be unique (they key the predictions file)")
            continue
        seen.add(key)
        found = _images(record, base, where, problems)
        text = record.get("text", "")
        if not isinstance(text, str):
            problems.append(f"{where} has text {text!r}; give a string (the question or statement)")
        offered = record.get("choices", [])
        if not (isinstance(offered, list) and all(isinstance(c, str) and c for c in offered)):
            problems.append(f"{where} has choices {offered!r}; give a list of non-empty strings")
            offered = []
        if found is not None and isinstance(text, str):
            ids.append(key)
            images.append(found)
            texts.append(text)
            choices.append(tuple(offered))
    if not records:
        problems.append(f"{path} holds no examples; write one JSON object per line")
    if problems:
        raise DatasetError("\n".join(problems))
    return PredictionInputs(ids, images, texts, choices)


def _images(record: dict, base: Path, where: str, problems: list[str]) -> tuple[Path, ...] | None:
    if ("image" in record) == ("images" in record):
        problems.append(f"{where} must have exactly one of 'image' (a path) or 'images' (a list of paths)")
        return None
    names = [record["image"]] if "image" in record else record["images"]
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
        problems.append(f"{where} has image(s) {names!r}; give non-empty path strings")
        return None
    paths = tuple(Path(n) if Path(n).is_absolute() else base / n for n in names)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        problems.append(f"{where} names image {missing[0]!r}, which does not exist; fix the path (relative to {base})")
        return None
    return paths
