"""python -m search.evaluate: official metrics from files, and one clear line for bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.evaluate", *args], capture_output=True, text=True, timeout=300)


def write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def score(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_vqa_uses_the_official_annotation_and_results_files(tmp_path: Path) -> None:
    annotations = write(
        tmp_path / "v2_mscoco_val_annotations.json",
        {
            "annotations": [
                {"question_id": 1, "answers": [{"answer": a} for a in ["yes"] * 10]},
                # "2" given by 2 of 10 annotators: each leave-one-out scores min(1, matches/3).
                {"question_id": 2, "answers": [{"answer": a} for a in ["2"] * 2 + ["3"] * 8]},
            ]
        },
    )
    results = write(tmp_path / "results.json", [{"question_id": 1, "answer": "Yes."}, {"question_id": 2, "answer": "two"}])
    out = score("vqa", "--annotations", str(annotations), "--predictions", str(results))
    # Question 2: 8 annotators see 2 matches (2/3), 2 see 1 match (1/3) -> (16/3 + 2/3) / 10 = 0.6.
    assert out["accuracy"] == pytest.approx(100 * (1 + 0.6) / 2)
    assert out["score"] == out["accuracy"] and out["n"] == 2


def test_gqa_nlvr2_and_video_qa(tmp_path: Path) -> None:
    gqa = write(
        tmp_path / "testdev.json",
        [
            {"img_id": "1", "sent": "q", "question_id": "201", "label": {"yes": 1.0}},
            {"img_id": "1", "sent": "q", "question_id": "202", "label": {"left": 1.0}},
        ],
    )
    preds = write(tmp_path / "gqa.json", [{"questionId": "201", "prediction": "Yes"}, {"questionId": "202", "prediction": "right"}])
    assert score("gqa", "--annotations", str(gqa), "--predictions", str(preds))["accuracy"] == pytest.approx(50.0)

    nlvr = write(
        tmp_path / "test.json",
        [{"identifier": f"test1-{k}-0-0", "img0": "a", "img1": "b", "sent": "s", "label": k % 2, "uid": f"u{k}"} for k in range(4)],
    )
    preds = write(tmp_path / "nlvr.json", [{"identifier": f"test1-{k}-0-0", "prediction": "False"} for k in range(4)])
    out = score("nlvr2", "--annotations", str(nlvr), "--predictions", str(preds))
    assert out["accuracy"] == pytest.approx(50.0) and out["consistency"] == pytest.approx(50.0)

    tvqa = tmp_path / "tvqa_test.jsonl"
    tvqa.write_text("".join(json.dumps({"qid": q, "vid_name": "v", "answer_idx": q % 5}) + "\n" for q in range(5)))
    preds = write(tmp_path / "tvqa.json", [{"qid": q, "answer": f"a{q % 5 if q < 4 else 0}"} for q in range(5)])
    out = score("how2qa", "--annotations", str(tvqa), "--predictions", str(preds))
    assert out["accuracy"] == pytest.approx(80.0) and out["score"] == pytest.approx(80.0)


def test_caption_and_video_caption(tmp_path: Path) -> None:
    refs = write(
        tmp_path / "captions_test.json",
        {
            "images": [{"id": 1}, {"id": 2}],
            "annotations": [
                {"image_id": 1, "id": 10, "caption": "The cat sat on the mat."},
                {"image_id": 2, "id": 20, "caption": "A red circle and a green square."},
            ],
        },
    )
    preds = write(
        tmp_path / "res.json",
        [{"image_id": 1, "caption": "the cat sat on the mat"}, {"image_id": 2, "caption": "a red circle and a green square"}],
    )
    out = score("caption", "--references", str(refs), "--predictions", str(preds), "--metrics", "BLEU,ROUGE-L,CIDEr")
    assert out["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and out["CIDEr"] == pytest.approx(10.0)
    assert out["score"] == pytest.approx(1000.0) and out["SPICE"] is None and "offline" in out["SPICE_unavailable"]

    tvc = tmp_path / "tvc_test.jsonl"
    tvc.write_text(
        json.dumps({"vid_name": "v1", "clip_id": 5, "descs": [{"desc": "He opens the door."}]})
        + "\n"
        + json.dumps({"vid_name": "v2", "clip_id": 6, "descs": [{"desc": "She sits down."}]})
        + "\n"
    )
    preds = write(tmp_path / "tvc.json", [{"clip_id": 5, "descs": [{"desc": "he opens the door"}]}, {"clip_id": 6, "caption": "a dog"}])
    out = score("tvc", "--references", str(tvc), "--predictions", str(preds), "--metrics", "CIDEr")
    assert out["CIDEr"] == pytest.approx(5.0) and out["score"] == pytest.approx(500.0) and out["n"] == 2
    plain = run("tvc", "--references", str(tvc), "--predictions", str(preds), "--metrics", "CIDEr")
    assert plain.returncode == 0 and "CIDEr: 5.0" in plain.stdout


@pytest.mark.parametrize(
    ("predictions", "needle"),
    [
        (None, "results.json does not exist"),
        ("[{", "results.json is not valid UTF-8 JSON"),
        ({"question_id": 1}, "must hold a non-empty JSON list of predictions"),
        ([{"qid": 1, "answer": "yes"}], r"record #0 lacks 'question_id'"),
        ([{"question_id": 1, "answer": 3}], "non-string answer"),
        ([{"question_id": 9, "answer": "yes"}], r"results.json: .*1 question ids have no prediction"),
    ],
)
def test_bad_files_give_one_line_and_exit_2(tmp_path: Path, predictions: object, needle: str) -> None:
    annotations = write(tmp_path / "ann.json", {"annotations": [{"question_id": 1, "answers": [{"answer": "yes"}] * 10}]})
    results = tmp_path / "results.json"
    if predictions is not None:
        write(results, predictions)
    result = run("vqa", "--annotations", str(annotations), "--predictions", str(results), "--json")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m search.evaluate: error:"), result.stderr
    assert __import__("re").search(needle, lines[0]), lines[0]


def test_bad_caption_references_name_the_file(tmp_path: Path) -> None:
    refs = write(tmp_path / "refs.json", {"images": [{"id": 1}], "annotations": [{"image_id": 1}]})
    preds = write(tmp_path / "res.json", [{"image_id": 1, "caption": "x"}])
    result = run("caption", "--references", str(refs), "--predictions", str(preds))
    assert result.returncode == 2 and "refs.json annotation #0 must be an object with 'image_id' and 'caption'" in result.stderr


def test_does_not_import_torch() -> None:
    code = "import sys, search.evaluate; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_jsonl_qa_needs_no_images_and_numbers_lines_without_ids(tmp_path: Path) -> None:
    truth = tmp_path / "test.jsonl"
    truth.write_text(
        json.dumps({"image": "absent.jpg", "text": "q?", "answer": "Cat"})
        + "\n"
        + json.dumps({"id": "b", "image": "absent.jpg", "text": "q?", "answers": ["dog", "puppy"]})
        + "\n"
    )
    preds = write(tmp_path / "res.json", [{"id": "1", "answer": "the cat"}, {"id": "b", "answer": "kitten"}])
    out = score("jsonl", "--references", str(truth), "--predictions", str(preds))
    assert out == {"accuracy": 50.0, "kind": "qa", "n": 2, "score": 50.0}
    captions = write(tmp_path / "captions.json", [{"id": 1, "caption": "x"}, {"id": "b", "caption": "y"}])
    result = run("jsonl", "--references", str(truth), "--predictions", str(captions))
    assert result.returncode == 2 and 'holds question-answering examples: give rows {"id", "answer"}' in result.stderr


def test_caption_split_is_for_a_karpathy_file(tmp_path: Path) -> None:
    refs = write(tmp_path / "captions_val2014.json", {"images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": "a cat."}]})
    preds = write(tmp_path / "res.json", [{"image_id": 1, "caption": "a cat"}])
    result = run("caption", "--references", str(refs), "--predictions", str(preds), "--split", "test")
    assert result.returncode == 2 and "is in the COCO format, one split already" in result.stderr
