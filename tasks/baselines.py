"""Reference baselines that need no model: the floor a trained model must beat."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tasks.metrics.vqa_accuracy import vqa_accuracy
from tasks.vqa import VQAExample

__all__ = ["majority_answer", "majority_baseline_accuracy"]


def _top_answer(example: VQAExample) -> str:
    # Highest soft score; ties go to the alphabetically first answer so the
    # result does not depend on the order of the label dict.
    return min(example.label.items(), key=lambda item: (-item[1], item[0]))[0]


def majority_answer(train: Sequence[VQAExample]) -> str:
    """The most frequent top-label answer of the training questions.

    Args:
        train: Training examples; questions with an empty label are skipped.

    Returns:
        The answer, ties broken alphabetically.

    Raises:
        ValueError: If no example has a label.
    """
    counts = Counter(_top_answer(ex) for ex in train if ex.label)
    if not counts:
        raise ValueError(
            f"none of the {len(train)} training examples has a label; "
            "pass a labelled training split."
        )
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


def majority_baseline_accuracy(
    train: Sequence[VQAExample], evaluation: Sequence[VQAExample]
) -> float:
    """Official VQA accuracy (0-100) of always predicting :func:`majority_answer`.

    Args:
        train: Examples the majority answer is taken from.
        evaluation: Examples to score; each needs its raw annotator answers.

    Returns:
        The accuracy in percent.

    Raises:
        ValueError: If an evaluation example has no raw answers (the
            official annotation file was missing), or either split is empty.
    """
    unanswered = [ex.question_id for ex in evaluation if not ex.answers]
    if unanswered:
        raise ValueError(
            f"{len(unanswered)} evaluation questions have no raw answers (e.g. question_id="
            f"{unanswered[0]}); the official metric needs the v2_mscoco_*_annotations.json file."
        )
    answer = majority_answer(train)
    return vqa_accuracy(
        {ex.question_id: answer for ex in evaluation},
        {ex.question_id: ex.answers for ex in evaluation},
    )
