"""The majority-answer baseline: clearly beatable, and the labels are reachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import (
    VideoQAExample,
    VQAExample,
    load_vqa_split,
    majority_answer,
    majority_baseline_accuracy,
    video_qa_majority_baseline,
    vqa_accuracy,
)
from tasks.examples import VideoSource


def _example(qid: int, label: dict[str, float], answers: tuple[str, ...] = ()) -> VQAExample:
    return VQAExample(qid, "img", Path("img.png"), "q?", label, answers)


def test_majority_answer_counts_top_labels_with_alphabetical_ties() -> None:
    train = [
        _example(1, {"no": 1.0, "yes": 0.3}),
        _example(2, {"yes": 1.0}),
        _example(3, {"no": 1.0}),
        _example(4, {"2": 1.0, "3": 1.0}),  # tie inside a label -> "2"
        _example(5, {"2": 1.0}),
    ]
    assert majority_answer(train) == "2"  # "2" and "no" both 2 votes; "2" < "no"
    with pytest.raises(ValueError, match="none of the 1 training examples has a label"):
        majority_answer([_example(1, {})])


def _video_question(qid: int, choices: tuple[str, ...], answer_idx: int) -> VideoQAExample:
    return VideoQAExample(qid, "which way?", choices, answer_idx, None, VideoSource("v", None, ()), ())


def test_video_qa_baseline_picks_the_most_frequent_training_answer_among_the_choices() -> None:
    # "nowhere" was right twice in training, "up" once: the baseline picks "nowhere" wherever
    # it is offered, at any position; without it, "up"; with neither, the most frequent
    # training answer position (1, twice).
    train = [
        _video_question(1, ("up", "nowhere", "down"), 1),
        _video_question(2, ("nowhere", "left", "up"), 0),
        _video_question(3, ("down", "up", "left"), 1),
    ]
    evaluation = [
        _video_question(10, ("left", "down", "nowhere"), 2),  # right: "nowhere"
        _video_question(11, ("nowhere", "up", "down"), 1),  # wrong: picks "nowhere", answer "up"
        _video_question(12, ("down", "up", "left"), 1),  # right: "up"
        _video_question(13, ("a", "b", "c"), 1),  # right: position 1
    ]
    assert video_qa_majority_baseline(train, evaluation) == 75.0
    with pytest.raises(ValueError, match="no answers"):
        video_qa_majority_baseline([], evaluation)


def test_baseline_needs_raw_answers() -> None:
    with pytest.raises(ValueError, match="question_id=9"):
        majority_baseline_accuracy([_example(1, {"yes": 1.0})], [_example(9, {"yes": 1.0})])


def test_default_val_split_is_balanced_and_reachable(default_vqa: Path) -> None:
    train = load_vqa_split(default_vqa, "train")
    val = load_vqa_split(default_vqa, "val")
    accuracy = majority_baseline_accuracy(train, val)
    print(f"majority answer {majority_answer(train)!r}: {accuracy:.2f} VQA accuracy on val")
    assert accuracy < 35
    # Predicting each question's top label is perfect, so 100 is reachable.
    top = {ex.question_id: max(ex.label, key=lambda a: ex.label[a]) for ex in val}
    assert vqa_accuracy(top, {ex.question_id: ex.answers for ex in val}) == pytest.approx(100.0)
