"""One frozen example type per task family, as the loaders return them.

VQA keeps its own :class:`~tasks.vqa.VQAExample` (it also carries the 10 raw
answers the official metric needs). Keys are the ids the official evaluation
files use, so predictions can be written back in the official results formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CaptionExample",
    "PairExample",
    "QAExample",
    "Subtitle",
    "VideoCaptionExample",
    "VideoQAExample",
    "VideoSource",
]


@dataclass(frozen=True)
class QAExample:
    """A question about one or more images (GQA, or the generic JSONL format).

    Attributes:
        question_id: The question's id (a string in GQA).
        img_ids: Image ids, one per image the question sees.
        image_paths: The image files, in the order of ``img_ids``.
        question: The question text (``sent`` in the GQA files).
        label: Accepted answer -> score (GQA: one answer scoring 1.0).
        choices: Answer options for multiple-choice data, else ``()``.
    """

    question_id: int | str
    img_ids: tuple[str, ...]
    image_paths: tuple[Path, ...]
    question: str
    label: dict[str, float]
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class PairExample:
    """An NLVR2 statement about a pair of images.

    Attributes:
        identifier: NLVR2 identifier ``<split>-<set>-<pair>-<sentence>``.
        uid: The VL-T5 unique id (``nlvr2_<split>_<n>``).
        img_ids: The left and right image ids (``img0``, ``img1``).
        image_paths: The two image files.
        statement: The sentence (``sent``).
        label: Whether the statement is true of the pair.
    """

    identifier: str
    uid: str
    img_ids: tuple[str, str]
    image_paths: tuple[Path, Path]
    statement: str
    label: bool

    @property
    def target(self) -> str:
        """The training target text, ``"true"`` or ``"false"`` (PAPER.md section 1)."""
        return "true" if self.label else "false"


@dataclass(frozen=True)
class CaptionExample:
    """An image with its reference captions (COCO Karpathy).

    Attributes:
        image_id: The image id used in COCO-format results (``cocoid``, else
            ``imgid``, else the file name without suffix).
        img_id: The file name without suffix, the feature-cache key.
        image_path: The image file.
        references: The reference captions (``sentences[].raw``).
        split: The split named in ``dataset_coco.json``.
    """

    image_id: int | str
    img_id: str
    image_path: Path
    references: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class Subtitle:
    """One subtitle line with its time span in seconds."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class VideoSource:
    """Where a video's frames come from.

    Attributes:
        vid_name: The video id.
        features: The per-video ``.npz`` frame features (real layout), if present.
        frames: The frame images ``videos/<vid_name>/frame_<NNN>.png`` in
            order, if present (the generated benchmark; features are computed
            from them by the CLIP encoder).
    """

    vid_name: str
    features: Path | None
    frames: tuple[Path, ...]


@dataclass(frozen=True)
class VideoQAExample:
    """A multiple-choice question about a video (TVQA, How2QA).

    Attributes:
        qid: The question id.
        question: The question text (``q``).
        choices: The five answers ``a0`` .. ``a4``.
        answer_idx: Index of the correct answer (the paper's target text is ``"a{idx}"``;
            training uses the answer's own text, see ``training.video_task_readers``).
        ts: The relevant time span (start, end) in seconds, if given.
        video: The video's frames or features.
        subtitles: The video's subtitle lines, in time order.
    """

    qid: int | str
    question: str
    choices: tuple[str, ...]
    answer_idx: int
    ts: tuple[float, float] | None
    video: VideoSource
    subtitles: tuple[Subtitle, ...]

    @property
    def target(self) -> str:
        """The paper's target label, ``"a{answer_idx}"`` (PAPER.md section 5)."""
        return f"a{self.answer_idx}"


@dataclass(frozen=True)
class VideoCaptionExample:
    """A video clip with its reference descriptions (TVC, YouCook2).

    Attributes:
        clip_id: The clip id, the key of the results file.
        ts: The clip's time span (start, end) in seconds, if given.
        references: The descriptions (``descs[].desc``).
        video: The video's frames or features.
        subtitles: The video's subtitle lines, in time order (``()`` if none).
    """

    clip_id: int | str
    ts: tuple[float, float] | None
    references: tuple[str, ...]
    video: VideoSource
    subtitles: tuple[Subtitle, ...]
