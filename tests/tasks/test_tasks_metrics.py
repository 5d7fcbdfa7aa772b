"""GQA, NLVR2, video QA, caption metrics and the paper average, against hand-worked values."""

from __future__ import annotations

import math

import pytest

import tasks.metrics.captioning as captioning
from tasks.metrics import (
    SPICE_REASON,
    CaptionMetricError,
    caption_metrics,
    gqa_accuracy,
    nlvr2_accuracy,
    nlvr2_consistency,
    normalize_gqa_answer,
    paper_average,
    reported_score,
    video_qa_accuracy,
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Yes.", "yes"), ("The Red", "red"), ("  a  circle ", "circle"), ("left, right", "left right"), ("t-shirt", "t shirt")],
)
def test_gqa_normalisation(raw: str, normalised: str) -> None:
    assert normalize_gqa_answer(raw) == normalised


def test_gqa_accuracy_is_exact_match_after_normalisation() -> None:
    labels = {"1": {"yes": 1.0}, "2": {"circle": 1.0}, "3": {"red": 1.0}}
    assert gqa_accuracy({"1": "Yes", "2": "a circle", "3": "blue"}, labels) == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match=r"1 question ids have no prediction \(e\.g\. 3\)"):
        gqa_accuracy({"1": "yes", "2": "x"}, labels)
    with pytest.raises(ValueError, match="1 predictions name unknown question ids"):
        gqa_accuracy({"1": "yes", "2": "x", "3": "y", "4": "z"}, labels)


def test_nlvr2_accuracy_and_consistency() -> None:
    labels = {"dev-1-0-0": True, "dev-1-1-0": False, "dev-1-2-0": True, "dev-2-0-0": False, "dev-2-0-1": True}
    predictions = {"dev-1-0-0": "True", "dev-1-1-0": "false", "dev-1-2-0": 1, "dev-2-0-0": "maybe", "dev-2-0-1": "TRUE"}
    assert nlvr2_accuracy(predictions, labels) == pytest.approx(80.0)
    # Sentences: dev-1-0 (3 pairs, all right), dev-2-0 (wrong), dev-2-1 (right) -> 2 of 3.
    assert nlvr2_consistency(predictions, labels) == pytest.approx(200 / 3)


def test_video_qa_accuracy_reads_target_texts_and_indices() -> None:
    answers = {1: 3, 2: 0, 3: 4, 4: 1, 5: 2}
    assert video_qa_accuracy({1: "a3", 2: 0, 3: " A4 ", 4: "1", 5: "the cup"}, answers) == pytest.approx(80.0)


def test_reported_score_and_the_paper_average() -> None:
    row = {"vqa": 67.6, "gqa": 56.7, "nlvr2": 73.0, "caption": reported_score("caption", {"CIDEr": 1.129})}
    assert row["caption"] == pytest.approx(112.9)
    assert paper_average(row) == pytest.approx(77.55)  # printed 77.6 in the paper
    assert reported_score("tvqa", {"accuracy": 76.3}) == 76.3
    with pytest.raises(ValueError, match="unknown task 'klingon'"):
        reported_score("klingon", {"accuracy": 1})
    with pytest.raises(ValueError, match="is reported by 'CIDEr'"):
        reported_score("tvc", {"BLEU-4": 0.3})
    with pytest.raises(ValueError, match="no task scores"):
        paper_average({})


def test_caption_metrics_on_hand_worked_cases() -> None:
    refs = {1: ["The cat sat on the mat."], 2: ["A red circle and a green square."]}
    same = caption_metrics(refs, {1: "the cat sat on the mat", 2: "a red circle and a green square"}, ("BLEU", "ROUGE-L", "CIDEr"))
    # Identical after PTB tokenisation: BLEU-4 and ROUGE-L are 1; every n-gram of an
    # image occurs in 1 of the 2 images' references, so the tf-idf vectors match exactly
    # and CIDEr-D = 10 x cosine 1 per image.
    assert same["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and same["ROUGE-L"] == pytest.approx(1.0)
    assert same["CIDEr"] == pytest.approx(10.0)
    assert same["SPICE"] is None and same["SPICE_unavailable"] == SPICE_REASON and "METEOR" not in same
    partial = caption_metrics(refs, {1: "the cat sat on the mat", 2: "a red circle and a blue square"}, ("ROUGE-L",))
    # Image 2: LCS 6 of 7 tokens both ways, so P = R = 6/7 and F_beta = 6/7; mean with image 1's 1.0.
    assert partial["ROUGE-L"] == pytest.approx((1 + 6 / 7) / 2)
    one_wrong = caption_metrics({1: ["a b c d"], 2: ["e f g h"]}, {1: "a b c d", 2: "x y z w"}, ("BLEU",))
    # Corpus BLEU: clipped 1-gram matches 4/8, 2-grams 3/6, 3-grams 2/4, 4-grams 1/2; no brevity penalty.
    assert one_wrong["BLEU-1"] == pytest.approx(0.5, abs=1e-6)
    assert one_wrong["BLEU-4"] == pytest.approx(0.5, abs=1e-6)


def test_caption_metrics_match_cocoevalcap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same numbers as pycocoevalcap's own COCOEvalCap on COCO objects.

    SPICE cannot run offline and METEOR starts a slow JVM (see the slow test
    below), so both are stubbed on the COCOEvalCap side and skipped on ours.
    """
    from pycocoevalcap import eval as coco_eval
    from pycocotools.coco import COCO

    refs = {
        10: ["A man rides a brown horse.", "Someone riding a horse on a beach.", "a person on horseback"],
        11: ["Two dogs play in the snow.", "A pair of dogs running through snow."],
        12: ["A plate of food with broccoli.", "Broccoli and rice on a white plate."],
    }
    preds = {10: "a man riding a horse", 11: "two dogs running in the snow", 12: "a plate with rice"}
    ours = caption_metrics(refs, preds, ("BLEU", "ROUGE-L", "CIDEr"))

    def stub(name: str) -> type:
        class Stub:
            def compute_score(self, gts: dict, res: dict) -> tuple[float, list[float]]:
                return 0.0, [0.0] * len(gts)

            def method(self) -> str:
                return name

        return Stub

    monkeypatch.setattr(coco_eval, "Spice", stub("SPICE"))
    monkeypatch.setattr(coco_eval, "Meteor", stub("METEOR"))
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i} for i in refs],
        "annotations": [{"image_id": i, "id": 100 * i + k, "caption": c} for i, cs in refs.items() for k, c in enumerate(cs)],
    }
    coco.createIndex()
    results = coco.loadRes([{"image_id": i, "caption": c} for i, c in preds.items()])
    evaluator = coco_eval.COCOEvalCap(coco, results)
    evaluator.evaluate()
    pairs = [("Bleu_1", "BLEU-1"), ("Bleu_2", "BLEU-2"), ("Bleu_4", "BLEU-4"), ("ROUGE_L", "ROUGE-L"), ("CIDEr", "CIDEr")]
    for theirs, mine in pairs:
        assert math.isclose(evaluator.eval[theirs], ours[mine], rel_tol=1e-9), theirs
    assert 0 < ours["CIDEr"] < 10 and 0 < ours["BLEU-4"] < 1


@pytest.mark.slow
def test_meteor_runs_through_the_java_scorer() -> None:
    """METEOR 1.5 through its Java scorer (slow to start): one exact match and one miss land in between."""
    refs = {1: ["a man rides a brown horse"], 2: ["two dogs play in the snow"]}
    scores = caption_metrics(refs, {1: "a man rides a brown horse", 2: "a plate of food"}, ("METEOR",))
    assert 0.3 < scores["METEOR"] < 0.9  # one exact match, one miss, scored as a corpus


def test_caption_metrics_report_bad_input_and_missing_java(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="1 image ids have no prediction"):
        caption_metrics({1: ["a"], 2: ["b"]}, {1: "a"})
    with pytest.raises(ValueError, match="no reference captions or a non-string caption"):
        caption_metrics({1: []}, {1: "a"})
    with pytest.raises(ValueError, match=r"unknown caption metrics \['SPICE'\]"):
        caption_metrics({1: ["a"]}, {1: "a"}, ("SPICE",))
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    with pytest.raises(CaptionMetricError, match="need Java"):
        caption_metrics({1: ["a"]}, {1: "a"})
