"""Video tasks prepared for training: multiple-choice video QA and video captioning.

Both read the VALUE layout (tasks.video). The encoder text is the task prefix, the question
and its choices (QA), then the subtitle lines inside the clip's time span; the visual
tokens are the clip's frames (training.visual_inputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

from tasks import (
    caption_majority_baseline,
    caption_metrics,
    load_video_caption_split,
    load_video_qa_split,
    reported_score,
    video_qa_accuracy,
    video_qa_majority_baseline,
)
from tasks.examples import Subtitle, VideoSource
from training.text_examples import TextExample
from training.task_readers import TASK_PREFIXES, PreparedTask, assemble, on_keys

# Room for the whole text: the subtitles come last, and a line cut off can hold the answer
# ("anna: look at the yellow circle."). The embedded tiny T5 spells words outside its
# pretraining vocabulary letter by letter, so a generated TVQA source is up to 172 tokens.
QA_SOURCE_TOKENS = 192  # question + five choices + the clip's subtitle lines
CAPTION_SOURCE_TOKENS = 128  # prefix + subtitle lines
# An answer is a phrase ("nowhere" alone is 9 pieces of the tiny T5; real TVQA answers are
# short sentences): cut shorter, two choices could become the same candidate.
QA_ANSWER_TOKENS = 32


def subtitle_text(subtitles: tuple[Subtitle, ...], ts: tuple[float, float] | None) -> str:
    """The subtitle lines overlapping the clip's time span (all of them without a span)."""
    lines = [s.text for s in subtitles if ts is None or (s.end > ts[0] and s.start < ts[1]) or s.start == ts[0]]
    return " ".join(lines)


class _VideoLayout:
    """Where a VALUE-layout task keeps its files (tasks.video): defaults under `root`."""

    split_names: Mapping[str, str] = {"train": "train", "val": "val", "test": "test", "test_ood": "test_ood"}

    def __init__(self, root: Path, task: str, folder: Path | None = None, videos: Path | None = None, features: Path | None = None):
        self.root, self.task, self.folder, self.videos, self.features = Path(root), task, folder, videos, features
        self.prefix = TASK_PREFIXES[task]

    def layout(self) -> dict:
        return {"folder": self.folder, "videos_dir": self.videos, "features_dir": self.features}

    @staticmethod
    def media(examples: list) -> tuple[dict[str, Path], dict[str, VideoSource]]:
        return {}, {e.video.vid_name: e.video for e in examples}


class VideoQAReader(_VideoLayout):
    """TVQA / How2QA: the target is the correct choice's text; evaluation picks the most likely
    of the offered choices (rank classification) and scores its index.

    The paper's target is the label "a{idx}" with the choices numbered in the encoder text; a
    small model then has to learn to point from a label to a text before it can use the video,
    and on the generated benchmark it did not (TVQA 17.9-20.8 against a 22.9 baseline, see
    BENCHMARKS.md). Scoring the answer texts needs no pointing.
    """

    max_target_tokens = QA_ANSWER_TOKENS
    max_source_tokens = QA_SOURCE_TOKENS

    def read(self, split: str) -> list:
        return load_video_qa_split(self.root, self.task, split, **self.layout())

    def to_text(self, e) -> TextExample:
        offered = " | ".join(e.choices)
        source = f"{self.prefix}{e.question} choices: {offered} subtitles: {subtitle_text(e.subtitles, e.ts)}"
        return TextExample(e.qid, (e.video.vid_name,), source, (e.choices[e.answer_idx],), (1.0,), choices=tuple(e.choices))

    def scorer(self, examples: list) -> Callable[[Mapping], float]:
        answers = {e.qid: e.answer_idx for e in examples}
        choices = {e.qid: e.choices for e in examples}

        def chosen_index(predictions: Mapping[int | str, str]) -> dict[int | str, int | None]:
            return {q: choices[q].index(p) if p in choices[q] else None for q, p in predictions.items()}

        return lambda predictions: video_qa_accuracy(chosen_index(predictions), on_keys(answers, predictions))

    def results(self, examples: list) -> Callable[[Mapping], list[dict]]:
        choices = {e.qid: e.choices for e in examples}
        # VALUE's QA submission: the chosen answer's index (-1: none of the offered texts).
        return lambda predictions: [
            {"qid": key, "answer_idx": choices[key].index(text) if text in choices[key] else -1} for key, text in predictions.items()
        ]

    def baseline(self, train: list, evaluation: list) -> float:
        return video_qa_majority_baseline(train, evaluation)


class VideoCaptionReader(_VideoLayout):
    """TVC / YouCook2 captions; scored by CIDEr x 100 (pycocoevalcap, needs Java)."""

    max_target_tokens = 40
    max_source_tokens = CAPTION_SOURCE_TOKENS

    def read(self, split: str) -> list:
        return load_video_caption_split(self.root, self.task, split, **self.layout())

    def to_text(self, e) -> TextExample:
        source = f"{self.prefix}subtitles: {subtitle_text(e.subtitles, e.ts)}"
        return TextExample(e.clip_id, (e.video.vid_name,), source, e.references, (1.0,) * len(e.references))

    def scorer(self, examples: list) -> Callable[[Mapping], float]:
        references = {e.clip_id: e.references for e in examples}

        def score(predictions: Mapping[int | str, str]) -> float:
            return reported_score("caption", caption_metrics(on_keys(references, predictions), predictions, ("CIDEr",)))

        return score

    def results(self, examples: list) -> Callable[[Mapping], list[dict]]:
        return lambda predictions: [{"clip_id": key, "descs": [{"desc": text}]} for key, text in predictions.items()]

    def baseline(self, train: list, evaluation: list) -> float:
        return caption_majority_baseline(train, evaluation)


def prepare_video_qa(root: Path, task: str, eval_split: str = "val") -> PreparedTask:
    """A generated video QA task read from a benchmark root (scripts that read one directly)."""
    return assemble(task, task, VideoQAReader(root, task), (eval_split,), eval_split)


def prepare_video_caption(root: Path, task: str, eval_split: str = "val") -> PreparedTask:
    return assemble(task, task, VideoCaptionReader(root, task), (eval_split,), eval_split)
