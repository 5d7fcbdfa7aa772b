"""Reference baselines that need no model: the floor a trained model must beat."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from tasks.examples import CaptionExample, PairExample, QAExample, VideoCaptionExample, VideoQAExample
from tasks.metrics.captioning import caption_metrics
from tasks.metrics.exact_match import gqa_accuracy, nlvr2_accuracy, video_qa_accuracy
from tasks.metrics.vqa_accuracy import vqa_accuracy
from tasks.vqa import VQAExample

__all__ = [
    "caption_majority_baseline",
    "gqa_majority_baseline",
    "majority_answer",
    "majority_baseline_accuracy",
    "nlvr2_majority_baseline",
    "video_qa_majority_baseline",
]


def _top_answer(example: VQAExample | QAExample) -> str:
    # Highest soft score; ties go to the alphabetically first answer so the
    # result does not depend on the order of the label dict.
    return min(example.label.items(), key=lambda item: (-item[1], item[0]))[0]


def majority_answer(train: Sequence[VQAExample] | Sequence[QAExample]) -> str:
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
        raise ValueError(f"none of the {len(train)} training examples has a label; pass a labelled training split.")
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


def majority_baseline_accuracy(train: Sequence[VQAExample], evaluation: Sequence[VQAExample]) -> float:
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


def _most_common(values: Sequence, what: str):
    if not values:
        raise ValueError(f"the training split has no {what}; pass a non-empty training split.")
    return min(Counter(values).items(), key=lambda item: (-item[1], str(item[0])))[0]


def gqa_majority_baseline(train: Sequence[QAExample], evaluation: Sequence[QAExample]) -> float:
    """GQA accuracy (0-100) of always predicting the most frequent training answer."""
    answer = majority_answer(train)
    return gqa_accuracy({e.question_id: answer for e in evaluation}, {e.question_id: e.label for e in evaluation})


def nlvr2_majority_baseline(train: Sequence[PairExample], evaluation: Sequence[PairExample]) -> float:
    """NLVR2 accuracy (0-100) of always predicting the most frequent training label."""
    label = _most_common([e.label for e in train], "labels")
    return nlvr2_accuracy({e.identifier: label for e in evaluation}, {e.identifier: e.label for e in evaluation})


def video_qa_answer_prior(train: Iterable[tuple[Sequence[str], int]]) -> Callable[[Sequence[str]], int]:
    """The answer prior of a multiple-choice task: a function from the offered choices to the
    index of the one most often right in training (ties: the most frequent training answer
    index, then the first).

    Args:
        train: (choices, index of the right one) of every training question.

    Raises:
        ValueError: no training questions.
    """
    answers: Counter[str] = Counter()
    positions: Counter[int] = Counter()
    for choices, answer_idx in train:
        answers[choices[answer_idx]] += 1
        positions[answer_idx] += 1
    if not answers:
        raise ValueError("the training split has no answers; pass a non-empty training split.")

    def pick(choices: Sequence[str]) -> int:
        return max(range(len(choices)), key=lambda i: (answers[choices[i]], positions[i], -i))

    return pick


def video_qa_majority_baseline(train: Sequence[VideoQAExample], evaluation: Sequence[VideoQAExample]) -> float:
    """Video QA accuracy (0-100) of always picking the offered choice that was most often the
    correct answer in training (`video_qa_answer_prior`).

    This is the majority answer of a multiple-choice task: generated questions ask the same
    few things (a direction, "one" object moving), so the answer text carries a prior that a
    model answering by text can learn without looking; the answer index alone carries none.
    """
    pick = video_qa_answer_prior((e.choices, e.answer_idx) for e in train)
    return video_qa_accuracy({e.qid: pick(e.choices) for e in evaluation}, {e.qid: e.answer_idx for e in evaluation})


def caption_majority_baseline(
    train: Sequence[CaptionExample] | Sequence[VideoCaptionExample],
    evaluation: Sequence[CaptionExample] | Sequence[VideoCaptionExample],
) -> float:
    """CIDEr x 100 of predicting the most frequent training reference for every item (needs Java)."""
    caption = _most_common([r for e in train for r in e.references], "reference captions")

    def key(e: CaptionExample | VideoCaptionExample) -> int | str:
        return e.image_id if isinstance(e, CaptionExample) else e.clip_id

    scores = caption_metrics({key(e): e.references for e in evaluation}, {key(e): caption for e in evaluation}, ("CIDEr",))
    return 100.0 * float(scores["CIDEr"])  # type: ignore[arg-type]
