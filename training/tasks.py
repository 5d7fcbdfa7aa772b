"""Tasks prepared for training: text examples, images, the official metric, a baseline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from tasks import load_vqa_split, majority_baseline_accuracy, vqa_accuracy
from training.examples import TextExample

TASK_PREFIXES = {"vqa": "vqa: "}


@dataclass(frozen=True)
class PreparedTask:
    """One task ready to train and score.

    Attributes:
        name: task name, also the PETL task key.
        train: training examples.
        evaluation: examples scored after training.
        image_paths: every image the examples see, by img_id.
        score: predictions by example key -> the official metric, 0-100.
        majority_baseline: the score of always answering the most frequent training answer.
    """

    name: str
    train: list[TextExample]
    evaluation: list[TextExample]
    image_paths: Mapping[str, Path]
    score: Callable[[Mapping[int | str, str]], float]
    majority_baseline: float


def prepare_vqa(root: Path, eval_split: str = "val") -> PreparedTask:
    """The VQA task in the Karpathy layout; scored by the official VQA accuracy.

    Raises:
        tasks.DatasetError: a missing or malformed file, named in the message.
    """
    train = load_vqa_split(root, "train")
    evaluation = load_vqa_split(root, eval_split)
    raw_answers = {e.question_id: e.answers for e in evaluation}

    def score(predictions: Mapping[int | str, str]) -> float:
        return vqa_accuracy(predictions, raw_answers)

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
