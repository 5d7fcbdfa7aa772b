"""Load the video benchmarks in the VALUE layout (real or generated).

One layout serves multiple-choice video QA (TVQA, How2QA) and video
captioning (TVC, YouCook2), ``<task>`` being the task name::

    root/<task>/{split}.jsonl        QA: {vid_name, qid, q, a0..a4, answer_idx, ts}
                                     captioning: {vid_name, clip_id, ts, descs: [{desc}]}
    root/<task>/subtitles.jsonl      {vid_name, sub: [{text, start, end}]}
    root/video_features/<vid_name>.npz   per-video frame features, array "features"
                                     of shape (frames, dim); used when present
    root/videos/<vid_name>/frame_<NNN>.png the frames, used when there are no features

``ts`` is ``[start, end]`` in seconds or the original TVQA string
``"start-end"``; it may be absent. How2QA has four answers (``a0..a3``): any
two or more consecutive ``a<i>`` fields are accepted. The subtitles file is
required for QA and optional for captioning. Splits are ``train``, ``val``,
``test`` and, in the generated benchmark, ``test_ood``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks._records import ID, NONEMPTY_STR, STR, check_record, check_split, check_unique
from tasks._records import read_jsonl, require_list
from tasks.errors import DatasetError
from tasks.examples import Subtitle, VideoCaptionExample, VideoQAExample, VideoSource

__all__ = [
    "VIDEO_SPLITS",
    "load_video_caption_split",
    "load_video_features",
    "load_video_qa_split",
]

VIDEO_SPLITS: tuple[str, ...] = ("train", "val", "test", "test_ood")
_MAX_CHOICES = 10
_QA_FIELDS = {"vid_name": NONEMPTY_STR, "qid": ID, "q": STR, "a0": STR, "a1": STR, "answer_idx": ID}
_NUMBER = ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
_SUB_FIELDS = {"text": STR, "start": _NUMBER, "end": _NUMBER}
_CAPTION_FIELDS = {
    "vid_name": NONEMPTY_STR,
    "clip_id": ID,
    "descs": (
        "a non-empty list of {'desc': <string>} objects",
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(d, dict) and isinstance(d.get("desc"), str) for d in v),
    ),
}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_ts(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    start: float | None
    end: float | None
    if isinstance(value, str):
        parts = value.split("-")
        try:
            start, end = (float(p) for p in parts)
        except ValueError:
            start = end = None
    elif isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value):
        start, end = float(value[0]), float(value[1])
    else:
        start = end = None
    if start is None or end is None or not start <= end:
        raise DatasetError(f'{where} has ts={value!r}; ts must be [start, end] or "start-end" in seconds with start <= end.')
    return start, end


def _subtitles(path: Path, required: bool) -> dict[str, tuple[Subtitle, ...]]:
    if not path.exists() and not required:
        return {}
    out: dict[str, tuple[Subtitle, ...]] = {}
    for i, record in enumerate(read_jsonl(path)):
        where = f"{path} record #{i}"
        check_record(record, where, {"vid_name": NONEMPTY_STR, "sub": ("a list", lambda v: isinstance(v, list))})
        lines = []
        for j, line in enumerate(record["sub"]):
            check_record(line, f"{where} sub #{j}", _SUB_FIELDS)
            lines.append(Subtitle(line["text"], float(line["start"]), float(line["end"])))
        out[record["vid_name"]] = tuple(sorted(lines, key=lambda s: (s.start, s.end)))
    return out


def _video_source(videos_dir: Path, features_dir: Path, vid_name: str, where: str) -> VideoSource:
    features = features_dir / f"{vid_name}.npz"
    frames = tuple(sorted((videos_dir / vid_name).glob("frame_*.png")))
    if not features.is_file() and not frames:
        raise DatasetError(
            f"{where} names vid_name={vid_name!r}, but neither {features} nor frames "
            f"{videos_dir / vid_name}/frame_*.png exist; extract the features or restore the frames."
        )
    return VideoSource(vid_name, features if features.is_file() else None, frames)


def _records(folder: Path, split: str) -> tuple[Path, list[Any]]:
    check_split(split, VIDEO_SPLITS)
    path = folder / f"{split}.jsonl"
    return path, require_list(read_jsonl(path), path, "records")


def _layout(root: Path, task: str, folder, videos_dir, features_dir) -> tuple[Path, Path, Path]:
    """(split files' folder, frames folder, features folder): the VALUE defaults under `root`,
    each replaceable, since a data file may keep them apart."""
    root = Path(root)
    return (
        Path(folder) if folder is not None else root / task,
        Path(videos_dir) if videos_dir is not None else root / "videos",
        Path(features_dir) if features_dir is not None else root / "video_features",
    )


def load_video_qa_split(
    root: Path, task: str, split: str, folder: Path | None = None, videos_dir: Path | None = None, features_dir: Path | None = None
) -> list[VideoQAExample]:
    """Load one split of a multiple-choice video QA task (``tvqa``, ``how2qa``).

    Args:
        root: Dataset root.
        task: The task directory name under ``root``.
        split: One of :data:`VIDEO_SPLITS`.
        folder, videos_dir, features_dir: The task's split files, frames and features
            folders, when not ``root/<task>``, ``root/videos`` and ``root/video_features``.

    Returns:
        The examples, in file order.

    Raises:
        DatasetError: For an unknown split, a missing or malformed file, a
            malformed record (answer_idx outside the choices, a bad ts), a
            duplicate qid, a video with neither features nor frames, a video
            without subtitles, or an empty split.
    """
    folder, videos_dir, features_dir = _layout(root, task, folder, videos_dir, features_dir)
    path, records = _records(folder, split)
    subtitles_path = folder / "subtitles.jsonl"
    subtitles = _subtitles(subtitles_path, required=True)
    examples: list = []
    seen: set = set()
    for i, record in enumerate(records):
        where = f"{path} record #{i}"
        check_record(record, where, _QA_FIELDS)
        choices: list = []
        while f"a{len(choices)}" in record and len(choices) < _MAX_CHOICES:
            choices.append(record[f"a{len(choices)}"])
        idx = record["answer_idx"]
        if not all(isinstance(c, str) for c in choices) or type(idx) is not int or not 0 <= idx < len(choices):
            raise DatasetError(
                f"{where} (qid={record['qid']!r}) has answer_idx={idx!r} and choices {choices!r}; "
                f"answer_idx must be an int indexing the string answers a0..a{len(choices) - 1}."
            )
        check_unique(record["qid"], seen, where, "qid")
        if record["vid_name"] not in subtitles:
            raise DatasetError(
                f"{where} names vid_name={record['vid_name']!r}, which has no entry in {subtitles_path}; "
                "add its subtitles (an empty 'sub' list if it has none)."
            )
        examples.append(
            VideoQAExample(
                qid=record["qid"],
                question=record["q"],
                choices=tuple(choices),
                answer_idx=idx,
                ts=_parse_ts(record.get("ts"), where),
                video=_video_source(videos_dir, features_dir, record["vid_name"], where),
                subtitles=subtitles[record["vid_name"]],
            )
        )
    return examples


def load_video_caption_split(
    root: Path, task: str, split: str, folder: Path | None = None, videos_dir: Path | None = None, features_dir: Path | None = None
) -> list[VideoCaptionExample]:
    """Load one split of a video captioning task (``tvc``, ``yc2c``).

    Args:
        root: Dataset root.
        task: The task directory name under ``root``.
        split: One of :data:`VIDEO_SPLITS`.
        folder, videos_dir, features_dir: The task's split files, frames and features
            folders, when not ``root/<task>``, ``root/videos`` and ``root/video_features``.

    Returns:
        The examples, in file order.

    Raises:
        DatasetError: For an unknown split, a missing or malformed file, a
            malformed record, a duplicate clip_id, a video with neither features
            nor frames, or an empty split.
    """
    folder, videos_dir, features_dir = _layout(root, task, folder, videos_dir, features_dir)
    path, records = _records(folder, split)
    subtitles = _subtitles(folder / "subtitles.jsonl", required=False)
    examples: list = []
    seen: set = set()
    for i, record in enumerate(records):
        where = f"{path} record #{i}"
        check_record(record, where, _CAPTION_FIELDS)
        check_unique(record["clip_id"], seen, where, "clip_id")
        examples.append(
            VideoCaptionExample(
                clip_id=record["clip_id"],
                ts=_parse_ts(record.get("ts"), where),
                references=tuple(d["desc"] for d in record["descs"]),
                video=_video_source(videos_dir, features_dir, record["vid_name"], where),
                subtitles=subtitles.get(record["vid_name"], ()),
            )
        )
    return examples


def load_video_features(path: Path) -> np.ndarray:
    """Read a per-video ``.npz``: the ``features`` array, or its only array.

    Args:
        path: The ``.npz`` file.

    Returns:
        A float32 array of shape (frames, dim).

    Raises:
        DatasetError: If the file is missing or unreadable, holds no usable
            array, or the array is not 2-D numeric with at least one frame.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            name = "features" if "features" in names else (names[0] if len(names) == 1 else None)
            if name is None:
                raise DatasetError(f"{path} holds arrays {names} but none named 'features'; store the frame features as 'features'.")
            array = data[name]
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path} is not a readable .npz file ({err}); re-extract the features.") from err
    if array.ndim != 2 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.number):
        raise DatasetError(
            f"{path} array {name!r} has shape {array.shape} and dtype {array.dtype}; "
            "video features must be a numeric (frames, dim) array with at least one frame."
        )
    return array.astype(np.float32)
