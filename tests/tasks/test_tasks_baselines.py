"""The majority-answer baseline: clearly beatable, and the labels are reachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import (
    VQAExample,
    load_vqa_split,
    majority_answer,
    majority_baseline_accuracy,
    vqa_accuracy,
)


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
