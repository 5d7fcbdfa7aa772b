"""Video tasks prepared for training: multiple-choice video QA and video captioning.

Both read the VALUE layout (tasks.video). The encoder text is the task prefix, the question
and its choices (QA), then the subtitle lines inside the clip's time span; the visual
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
# An answer is a phrase ("nowhere" alone is 9 pieces of the tiny T5; real TVQA answers are
# short sentences): cut shorter, two choices could become the same candidate.
QA_ANSWER_TOKENS = 32


def subtitle_text(subtitles: tuple[Subtitle, ...], ts: tuple[float, float] | None) -> str:
    """The subtitle lines overlapping the clip's time span (all of them without a span)."""
    lines = [s.text for s in subtitles if ts is None or (s.end > ts[0] and s.start < ts[1]) or s.start == ts[0]]
    return " ".join(lines)


def prepare_video_qa(root: Path, task: str, eval_split: str = "val") -> PreparedTask:
    """TVQA / How2QA: the target is the correct choice's text; evaluation picks the most likely
    of the offered choices (rank classification) and scores its index.

    The paper's target is the label "a{idx}" with the choices numbered in the encoder text; a
    small model then has to learn to point from a label to a text before it can use the video,
    and on the generated benchmark it did not (TVQA 17.9-20.8 against a 22.9 baseline, see
    BENCHMARKS.md). Scoring the answer texts needs no pointing.

    Raises:
        tasks.DatasetError: a missing or malformed file, named in the message.
    """
    train = load_video_qa_split(root, task, "train")
    evaluation = load_video_qa_split(root, task, eval_split)
    answers = {e.qid: e.answer_idx for e in evaluation}
    choices = {e.qid: e.choices for e in evaluation}

    def chosen_index(predictions: Mapping[int | str, str]) -> dict[int | str, int | None]:
        return {q: choices[q].index(p) if p in choices[q] else None for q, p in predictions.items()}

    def to_text(e) -> TextExample:
        offered = " | ".join(e.choices)
        source = f"{TASK_PREFIXES[task]}{e.question} choices: {offered} subtitles: {subtitle_text(e.subtitles, e.ts)}"
        return TextExample(e.qid, (e.video.vid_name,), source, (e.choices[e.answer_idx],), (1.0,), choices=tuple(e.choices))

    return PreparedTask(
        name=task,
        train=[to_text(e) for e in train],
        evaluation=[to_text(e) for e in evaluation],
        image_paths={},
        score=lambda predictions: video_qa_accuracy(chosen_index(predictions), on_keys(answers, predictions)),
        majority_baseline=video_qa_majority_baseline(train, evaluation),
        max_target_tokens=QA_ANSWER_TOKENS,
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
