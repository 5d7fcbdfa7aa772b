"""Official VQA accuracy: hand-worked values for every rule of the official tool."""

from __future__ import annotations

import pytest

from tasks import normalize_answer, question_accuracy, vqa_accuracy
from tasks.metrics import CONTRACTIONS


def _answers(n_match: int, match: str = "red", other: str = "blue") -> list[str]:
    return [match] * n_match + [other] * (10 - n_match)


@pytest.mark.parametrize(
    ("n_match", "expected"),
    [
        # Each annotator is left out in turn; score = min(1, matches among the other 9 / 3).
        (0, 0.0),
        # 1 match: that annotator sees 0 others (0); the 9 others see 1 (1/3 each).
        # (0 + 9 * 1/3) / 10 = 3/10
        (1, 0.3),
        # 2: the 2 see 1 other (1/3); the 8 see 2 (2/3). (2/3 + 16/3) / 10 = 6/10
        (2, 0.6),
        # 3: the 3 see 2 (2/3); the 7 see 3 (1). (2 + 7) / 10 = 9/10
        (3, 0.9),
        # 4: the 4 see 3 (1); the 6 see 4 (capped at 1). 10 / 10
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_agreeing_annotators(n_match: int, expected: float) -> None:
    assert question_accuracy("red", _answers(n_match)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Red.", "red"),  # period not before a digit: removed; then lowercased
        ("Yes!", "yes"),  # "!" not touching a space becomes a space; split drops it
        ("\tred\n", "red"),  # newlines/tabs -> spaces, stripped
        ("red,blue", "red blue"),  # comma between letters -> space
        ("red , blue", "red blue"),  # comma touching a space -> deleted
        ("1,000", "1000"),  # digit,digit: every mark is deleted, not spaced
        ("1,000-ish", "1000ish"),  # ... including marks elsewhere in the text
        ("black-and-white", "black and white"),
        ("3.5", "3.5"),  # period before a digit is kept
        ("3.", "3"),
        ("two", "2"),
        ("None", "0"),
        ("ten", "10"),
        ("eleven", "eleven"),  # the number map stops at ten
        ("a square", "square"),
        ("The red one", "red 1"),  # articles dropped, "one" is a number word
        ("an apple", "apple"),
        ("dont", "don't"),
        ("I dont know", "i don't know"),
        ("Isnt it", "isn't it"),
        ("youre", "you're"),
        ("it's", "it's"),  # "'" is not punctuation to the tool
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_at_most_32_periods_are_removed() -> None:
    # The tool passes re.UNICODE (32) as re.sub's count.
    assert normalize_answer("." * 40 + "x") == "." * 8 + "x"


def test_contraction_map_is_the_official_one() -> None:
    assert len(CONTRACTIONS) == 120
    assert CONTRACTIONS["dont"] == "don't"
    assert CONTRACTIONS["wouldnt've"] == "wouldn't've"
    assert CONTRACTIONS["somebody'd"] == "somebodyd"  # reversed in the original, kept
    assert CONTRACTIONS["Im"] == "I'm"  # never matches lowercased text, kept


def test_prediction_is_normalised_against_ground_truth() -> None:
    truth = _answers(4, match="2", other="3")
    assert question_accuracy("Two.", truth) == 1.0
    assert question_accuracy("two", _answers(1, match="2", other="3")) == pytest.approx(0.3)
    assert question_accuracy("A Square!", _answers(3, match="square", other="box")) == pytest.approx(0.9)
    assert question_accuracy("dont know", _answers(2, match="don't know", other="no")) == pytest.approx(0.6)


def test_ground_truth_gets_only_the_punctuation_step() -> None:
    # Mixed answers: "red." -> "red" (period rule), so 4 annotators match.
    assert question_accuracy("red", ["red."] * 2 + ["red"] * 2 + ["blue"] * 6) == 1.0
    # Ground truth is not lowercased: "Red." -> "Red" never equals a prediction.
    assert question_accuracy("red", ["Red."] * 4 + ["blue"] * 6) == 0.0
    # Unanimous ground truth is left untouched by the tool, period included.
    assert question_accuracy("red", ["red."] * 10) == 0.0


def test_vqa_accuracy_is_the_mean_in_percent() -> None:
    answers = {1: _answers(10), 2: _answers(1)}
    # (1.0 + 0.3) / 2 * 100
    assert vqa_accuracy({1: "red", 2: "Red"}, answers) == pytest.approx(65.0)


def test_vqa_accuracy_names_missing_and_unknown_question_ids() -> None:
    answers = {1: _answers(10), 2: _answers(10)}
    with pytest.raises(ValueError, match=r"1 question ids have no prediction: 2"):
        vqa_accuracy({1: "red"}, answers)
    with pytest.raises(ValueError, match=r"predictions name unknown question ids: 99"):
        vqa_accuracy({1: "red", 2: "red", 99: "red"}, answers)
    with pytest.raises(ValueError, match="answers is empty"):
        vqa_accuracy({}, {})


def test_question_accuracy_rejects_missing_answers() -> None:
    with pytest.raises(ValueError, match="non-empty sequence"):
        question_accuracy("red", [])
    with pytest.raises(ValueError, match="non-empty sequence"):
        question_accuracy("red", "red")
