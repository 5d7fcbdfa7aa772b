"""Video tasks prepared for training: multiple-choice video QA and video captioning.

Both read the VALUE layout (tasks.video). The encoder text is the task prefix, the question
and its numbered choices (QA), then the subtitle lines inside the clip's time span; the visual
tokens are the clip's frames (training.visual_inputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from tasks import (
    caption_majority_baseline,
    caption_metrics,
    load_video_caption_split,
    load_video_qa_split,
    reported_score,
    video_qa_accuracy,
    video_qa_majority_baseline,
)
from tasks.examples import Subtitle
from training.examples import TextExample
from training.tasks import TASK_PREFIXES, PreparedTask, on_keys

# Room for the whole text: the subtitles come last, and a line cut off can hold the answer
# ("anna: look at the yellow circle."). The embedded tiny T5 spells words outside its
# pretraining vocabulary letter by letter, so a generated TVQA source is up to 172 tokens.
QA_SOURCE_TOKENS = 192  # question + five choices + the clip's subtitle lines
CAPTION_SOURCE_TOKENS = 128  # prefix + subtitle lines


def subtitle_text(subtitles: tuple[Subtitle, ...], ts: tuple[float, float] | None) -> str:
    """The subtitle lines overlapping the clip's time span (all of them without a span)."""
    lines = [s.text for s in subtitles if ts is None or (s.end > ts[0] and s.start < ts[1]) or s.start == ts[0]]
    return " ".join(lines)


def prepare_video_qa(root: Path, task: str, eval_split: str = "val") -> PreparedTask:
    """TVQA / How2QA: answer "a{idx}"; evaluation picks the most likely of "a0".."a{n-1}".

    Raises:
        tasks.DatasetError: a missing or malformed file, named in the message.
    """
    train = load_video_qa_split(root, task, "train")
    evaluation = load_video_qa_split(root, task, eval_split)
    answers = {e.qid: e.answer_idx for e in evaluation}

    def to_text(e) -> TextExample:
        labels = tuple(f"a{i}" for i in range(len(e.choices)))
        choices = " ".join(f"{label}: {text}" for label, text in zip(labels, e.choices))
        source = f"{TASK_PREFIXES[task]}{e.question} {choices} subtitles: {subtitle_text(e.subtitles, e.ts)}"
        return TextExample(e.qid, (e.video.vid_name,), source, (labels[e.answer_idx],), (1.0,), choices=labels)

    return PreparedTask(
        name=task,
        train=[to_text(e) for e in train],
        evaluation=[to_text(e) for e in evaluation],
        image_paths={},
        score=lambda predictions: video_qa_accuracy(predictions, on_keys(answers, predictions)),
        majority_baseline=video_qa_majority_baseline(train, evaluation),
        videos={e.video.vid_name: e.video for e in [*train, *evaluation]},
        max_source_tokens=QA_SOURCE_TOKENS,
    )


def prepare_video_caption(root: Path, task: str, eval_split: str = "val") -> PreparedTask:
    """TVC / YouCook2 captions; scored by CIDEr x 100 (pycocoevalcap, needs Java).

    Raises:
        tasks.DatasetError: a missing or malformed file, named in the message.
    """
    train = load_video_caption_split(root, task, "train")
    evaluation = load_video_caption_split(root, task, eval_split)
    references = {e.clip_id: e.references for e in evaluation}

    def to_text(e) -> TextExample:
        source = f"{TASK_PREFIXES[task]}subtitles: {subtitle_text(e.subtitles, e.ts)}"
        return TextExample(e.clip_id, (e.video.vid_name,), source, e.references, (1.0,) * len(e.references))

    def score(predictions: Mapping[int | str, str]) -> float:
        return reported_score("caption", caption_metrics(on_keys(references, predictions), predictions, ("CIDEr",)))

    return PreparedTask(
        name=task,
        train=[to_text(e) for e in train],
        evaluation=[to_text(e) for e in evaluation],
        image_paths={},
        score=score,
        majority_baseline=caption_majority_baseline(train, evaluation),
        max_target_tokens=40,
        videos={e.video.vid_name: e.video for e in [*train, *evaluation]},
        max_source_tokens=CAPTION_SOURCE_TOKENS,
    )
