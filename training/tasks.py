"""Tasks prepared for training: text examples, images, the official metric, a baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from tasks import (
    caption_majority_baseline,
    caption_metrics,
    gqa_accuracy,
    gqa_majority_baseline,
    load_caption_split,
    load_gqa_split,
    load_nlvr2_split,
    load_vqa_split,
    majority_baseline_accuracy,
    nlvr2_accuracy,
    nlvr2_majority_baseline,
    reported_score,
    vqa_accuracy,
)
from tasks.examples import VideoSource
from training.examples import TextExample

K = TypeVar("K")
V = TypeVar("V")

# The paper's task prefixes (PAPER.md §1).
TASK_PREFIXES = {
    "vqa": "vqa: ",
    "gqa": "gqa: ",
    "nlvr2": "nlvr: ",
    "caption": "caption: ",
    "tvqa": "tvqa: ",
    "how2qa": "how2qa: ",
    "tvc": "tvc: ",
    "yc2c": "yc2c: ",
}


def on_keys(truth: Mapping[K, V], predictions: Mapping[K, object]) -> dict[K, V]:
    """The ground truth of the predicted examples only."""
    return {key: truth[key] for key in predictions}


@dataclass(frozen=True)
class PreparedTask:
    """One task ready to train and score.

    Attributes:
        name: task name, also the PETL task key.
        train: training examples.
        evaluation: examples scored after training.
        image_paths: every image the examples see, by img_id.
        score: predictions by example key -> the official metric, 0-100, over the examples
            predicted: every evaluation example after training, a sample in scheduled
            evaluations (a key the split does not have raises KeyError).
        majority_baseline: the score of always answering the most frequent training answer.
        max_target_tokens: targets are truncated to this many tokens; generation stops there.
        videos: every video the examples see, by vid_name (video tasks; their img_ids are
            vid_names).
        max_source_tokens: encoder-text truncation when the task needs more than the
            training config's default (video QA reads its choices and subtitles).
    """

    name: str
    train: list[TextExample]
    evaluation: list[TextExample]
    image_paths: Mapping[str, Path]
    score: Callable[[Mapping[int | str, str]], float]
    majority_baseline: float
    max_target_tokens: int = 6
    videos: Mapping[str, VideoSource] = field(default_factory=dict)
    max_source_tokens: int | None = None


def prepare_vqa(root: Path, eval_split: str = "val") -> PreparedTask:
    """The VQA task in the Karpathy layout; scored by the official VQA accuracy.

    Raises:
        tasks.DatasetError: a missing or malformed file, named in the message.
    """
    train = load_vqa_split(root, "train")
    evaluation = load_vqa_split(root, eval_split)
    raw_answers = {e.question_id: e.answers for e in evaluation}

    def score(predictions: Mapping[int | str, str]) -> float:
        return vqa_accuracy(predictions, on_keys(raw_answers, predictions))

    def to_text(example) -> TextExample:
        targets = tuple(a for a, s in example.label.items() if s > 0)
        return TextExample(
            key=example.question_id,
            img_ids=(example.img_id,),
            source=TASK_PREFIXES["vqa"] + example.question,
            targets=targets,
            weights=tuple(example.label[a] for a in targets),
        )

    return PreparedTask(
        name="vqa",
        train=[to_text(e) for e in train if any(s > 0 for s in e.label.values())],
        evaluation=[to_text(e) for e in evaluation],
        image_paths={e.img_id: e.image_path for e in [*train, *evaluation]},
        score=score,
        majority_baseline=majority_baseline_accuracy(train, evaluation),
    )


def prepare_gqa(root: Path, eval_split: str = "valid") -> PreparedTask:
    """GQA in the VL-T5 layout; scored by exact match after the GQA normalisation.

    Raises:
        tasks.DatasetError: a missing or malformed file, named in the message.
    """
    train, evaluation = load_gqa_split(root, "train"), load_gqa_split(root, eval_split)
    labels = {e.question_id: e.label for e in evaluation}

    def to_text(e) -> TextExample:
        targets = tuple(e.label)
        return TextExample(e.question_id, e.img_ids, TASK_PREFIXES["gqa"] + e.question, targets, tuple(e.label[a] for a in targets))

    return PreparedTask(
        name="gqa",
        train=[to_text(e) for e in train],
        evaluation=[to_text(e) for e in evaluation],
        image_paths={i: p for e in [*train, *evaluation] for i, p in zip(e.img_ids, e.image_paths)},
        score=lambda predictions: gqa_accuracy(predictions, on_keys(labels, predictions)),
        majority_baseline=gqa_majority_baseline(train, evaluation),
    )


NLVR2_CHOICES = ("true", "false")
# A statement names both images and its attributes at the end ("... contains exactly two
# triangles."); the default 24 tokens cut the attribute off where a small vocabulary spells
# words out letter by letter, which left most generated statements unanswerable.
NLVR2_SOURCE_TOKENS = 48


def prepare_nlvr2(root: Path, eval_split: str = "valid") -> PreparedTask:
    """NLVR2: two images per example, target "true"/"false"; scored by accuracy.

    Evaluation compares the log-likelihoods of "true" and "false" (PAPER.md §1).
    """
    train, evaluation = load_nlvr2_split(root, "train"), load_nlvr2_split(root, eval_split)
    labels = {e.identifier: e.label for e in evaluation}

    def to_text(e) -> TextExample:
        return TextExample(
            e.identifier, e.img_ids, TASK_PREFIXES["nlvr2"] + e.statement, (e.target,), (1.0,), choices=NLVR2_CHOICES
        )

    return PreparedTask(
        name="nlvr2",
        train=[to_text(e) for e in train],
        evaluation=[to_text(e) for e in evaluation],
        image_paths={i: p for e in [*train, *evaluation] for i, p in zip(e.img_ids, e.image_paths)},
        score=lambda predictions: nlvr2_accuracy(predictions, on_keys(labels, predictions)),
        majority_baseline=nlvr2_majority_baseline(train, evaluation),
        max_target_tokens=8,  # "false" is 7 tokens where a small vocabulary spells it out
        max_source_tokens=NLVR2_SOURCE_TOKENS,
    )


def prepare_caption(root: Path, eval_split: str = "val") -> PreparedTask:
    """COCO Karpathy captions; scored by CIDEr x 100 (pycocoevalcap, needs Java).

    Training samples one of an image's references uniformly (VL-T5 trains on
    every reference; with uniform weights the expected loss is the same).
    """
    train, evaluation = load_caption_split(root, "train"), load_caption_split(root, eval_split)
    references = {e.image_id: e.references for e in evaluation}

    def to_text(e) -> TextExample:
        return TextExample(e.image_id, (e.img_id,), TASK_PREFIXES["caption"], e.references, (1.0,) * len(e.references))

    def score(predictions: Mapping[int | str, str]) -> float:
        return reported_score("caption", caption_metrics(on_keys(references, predictions), predictions, ("CIDEr",)))

    return PreparedTask(
        name="caption",
        train=[to_text(e) for e in train],
        evaluation=[to_text(e) for e in evaluation],
        image_paths={e.img_id: e.image_path for e in [*train, *evaluation]},
        score=score,
        majority_baseline=caption_majority_baseline(train, evaluation),
        max_target_tokens=40,  # the generated world's captions list up to four objects
    )

