"""Reading and checking dataset files, shared by every loader.

Each helper raises :class:`~tasks.errors.DatasetError` with the file (and the
record, as ``where``) in the message, so loaders stay short and every defect
reads the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tasks.errors import DatasetError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")

# A field check: (description of the rule, predicate).
Check = tuple[str, Callable[[Any], bool]]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


INT: Check = ("an int", _is_int)
STR: Check = ("a string", lambda v: isinstance(v, str))
NONEMPTY_STR: Check = ("a non-empty string", lambda v: isinstance(v, str) and bool(v))
ID: Check = ("an int or a non-empty string", lambda v: _is_int(v) or (isinstance(v, str) and bool(v)))
NUMBER: Check = ("a number", _is_number)
LABEL: Check = (
    "an object mapping answer strings to numbers",
    lambda v: isinstance(v, dict) and all(isinstance(a, str) and _is_number(s) for a, s in v.items()),
)


def require_file(path: Path) -> None:
    """Raise DatasetError naming `path` when it is not a file: a folder is named as one."""
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, not a file; give the file itself, or fix the root directory.")
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; generate the dataset or fix the root directory.")


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or broken file raises DatasetError."""
    require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path} is not valid UTF-8 JSON ({err}); regenerate or repair the file.") from err


def read_jsonl(path: Path) -> list[Any]:
    """Parse a JSON-lines file (blank lines skipped); errors name the line."""
    require_file(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path} is not valid UTF-8 ({err}); regenerate or repair the file.") from err
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path} line {number} is not valid JSON ({err}); every line must be one JSON object.") from err
    return records


def require_list(data: Any, path: Path, what: str) -> list[Any]:
    """``data`` as a non-empty list of records, or a DatasetError naming ``path``."""
    if not isinstance(data, list):
        raise DatasetError(f"{path} must hold a JSON list of {what}, got {type(data).__name__}.")
    if not data:
        raise DatasetError(f"{path} holds no {what}; an empty split cannot be trained or evaluated.")
    return data


def check_record(record: Any, where: str, fields: dict[str, Check]) -> dict[str, Any]:
    """Check that ``record`` is an object whose ``fields`` pass their checks.

    Args:
        record: One parsed record.
        where: ``"<file> record #<i>"``, the start of every message.
        fields: Required key -> (rule, predicate).

    Returns:
        ``record``, typed as a dict.

    Raises:
        DatasetError: Listing every missing key, or every field that breaks its rule.
    """
    if not isinstance(record, dict):
        raise DatasetError(f"{where} must be a JSON object, but got {type(record).__name__}.")
    missing = [k for k in fields if k not in record]
    if missing:
        raise DatasetError(f"{where} lacks required key(s) {missing}; every record needs {list(fields)}.")
    problems = [f"{key} must be {rule}, got {record[key]!r}" for key, (rule, ok) in fields.items() if not ok(record[key])]
    if problems:
        raise DatasetError(f"{where} is malformed: " + "; ".join(problems) + ".")
    return record


def check_unique(key: Any, seen: set[Any], where: str, name: str) -> None:
    """Add ``key`` to ``seen``; a repeat raises DatasetError."""
    if key in seen:
        raise DatasetError(f"{where} repeats {name}={key!r}; {name} values must be unique.")
    seen.add(key)


def find_image(images_dir: Path, img_id: str, where: str) -> Path:
    """The file ``images_dir/<img_id>{.png,.jpg,.jpeg}``, or a DatasetError."""
    for suffix in IMAGE_SUFFIXES:
        path = images_dir / f"{img_id}{suffix}"
        if path.is_file():
            return path
    raise DatasetError(
        f"{where} names image {img_id!r}, but no {images_dir / img_id}{{{','.join(IMAGE_SUFFIXES)}}} "
        "exists; regenerate the dataset, restore the image or pass the right images directory."
    )


def check_split(split: str, accepted: Sequence[str]) -> None:
    """Raise DatasetError for a split name outside ``accepted``."""
    if split not in accepted:
        raise DatasetError(f"unknown split {split!r}; accepted splits are {list(accepted)}.")
