"""The synthetic VQA generator: layout, determinism, reuse, atomicity."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import tasks.vqa_generate as vqa_generate
from tasks import DatasetError, generate_vqa, normalize_answer
from tasks.vqa_generate import GENERATOR, GENERATOR_VERSION, SPLITS


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _json(root: Path, name: str) -> Any:
    return json.loads((root / "vqa" / name).read_text())


def test_same_arguments_give_byte_identical_files(tiny_vqa: Path, tmp_path: Path, tiny_sizes: dict[str, int]) -> None:
    again = generate_vqa(tmp_path / "again", seed=0, **tiny_sizes)
    assert _files(again) == _files(tiny_vqa)
    other = generate_vqa(tmp_path / "other", seed=1, **tiny_sizes)
    assert _files(other)["vqa/karpathy_train.json"] != _files(tiny_vqa)["vqa/karpathy_train.json"]


def test_layout_and_record_keys_match_vqa_v2(tiny_vqa: Path) -> None:
    assert sorted(p.name for p in (tiny_vqa / "vqa").iterdir()) == sorted(
        name
        for s in SPLITS
        for name in (
            f"karpathy_{s}.json",
            f"v2_mscoco_{s}_annotations.json",
            f"v2_OpenEnded_mscoco_{s}_questions.json",
        )
    )
    for split in SPLITS:
        for record in _json(tiny_vqa, f"karpathy_{split}.json"):
            assert list(record) == [
                "img_id",
                "sent",
                "question_id",
                "label",
                "answer_type",
                "question_type",
            ]
            assert record["img_id"].startswith(f"mini_{split}_")
            assert record["answer_type"] in {"yes/no", "number", "other"}
            assert (tiny_vqa / "images" / f"{record['img_id']}.png").is_file()
        annotations = _json(tiny_vqa, f"v2_mscoco_{split}_annotations.json")
        assert list(annotations) == ["annotations"]
        for ann in annotations["annotations"]:
            assert set(ann) == {
                "question_id",
                "image_id",
                "question_type",
                "answer_type",
                "multiple_choice_answer",
                "answers",
            }
            assert [a["answer_id"] for a in ann["answers"]] == list(range(1, 11))
            assert all(set(a) == {"answer", "answer_confidence", "answer_id"} for a in ann["answers"])
            assert {a["answer_confidence"] for a in ann["answers"]} <= {"yes", "maybe"}
        questions = _json(tiny_vqa, f"v2_OpenEnded_mscoco_{split}_questions.json")
        assert list(questions) == ["questions"]
        assert all(set(q) == {"question_id", "image_id", "question"} for q in questions["questions"])


def test_label_is_the_soft_score_of_the_raw_answers(tiny_vqa: Path) -> None:
    for split in SPLITS:
        karpathy = {r["question_id"]: r for r in _json(tiny_vqa, f"karpathy_{split}.json")}
        for ann in _json(tiny_vqa, f"v2_mscoco_{split}_annotations.json")["annotations"]:
            counts = Counter(normalize_answer(a["answer"]) for a in ann["answers"])
            record = karpathy[ann["question_id"]]
            assert record["label"] == {a: min(1.0, c / 3) for a, c in counts.items()}
            assert counts.most_common(1)[0][0] == ann["multiple_choice_answer"]
            assert record["question_type"] == ann["question_type"]


def test_splits_are_disjoint_by_image_and_ids_are_unique(tiny_vqa: Path, tiny_sizes: dict[str, int]) -> None:
    images, question_ids = {}, []
    for split in SPLITS:
        anns = _json(tiny_vqa, f"v2_mscoco_{split}_annotations.json")["annotations"]
        images[split] = {a["image_id"] for a in anns}
        question_ids += [a["question_id"] for a in anns]
        img_ids = {r["img_id"] for r in _json(tiny_vqa, f"karpathy_{split}.json")}
        assert len(img_ids) == len(images[split]) == tiny_sizes[f"n_{split}_images"]
    assert not images["train"] & images["val"]
    assert not images["train"] & images["test"]
    assert not images["val"] & images["test"]
    assert len(question_ids) == len(set(question_ids))
    n_images = sum(tiny_sizes[f"n_{s}_images"] for s in SPLITS)
    assert len(list((tiny_vqa / "images").glob("*.png"))) == n_images


def test_manifest_records_the_request(tiny_vqa: Path) -> None:
    manifest = json.loads((tiny_vqa / "manifest.json").read_text())
    assert manifest["generator"] == GENERATOR and manifest["version"] == GENERATOR_VERSION
    assert manifest["seed"] == 0 and manifest["image_size"] == 64
    assert manifest["sizes"] == {"train": 6, "val": 3, "test": 3}
    assert manifest["counts"]["train"] == {"images": 6, "questions": 12}


def test_identical_manifest_is_reused_and_a_new_request_replaces(tmp_path: Path, tiny_sizes: dict[str, int]) -> None:
    root = generate_vqa(tmp_path / "d", seed=0, **tiny_sizes)
    marker = root / "marker"
    marker.write_text("still here")
    assert generate_vqa(root, seed=0, **tiny_sizes) == root
    assert marker.exists()  # reused, not rewritten
    next(iter((root / "images").iterdir())).unlink()
    generate_vqa(root, seed=0, **tiny_sizes)
    assert not marker.exists()  # a damaged dataset is regenerated
    assert (root / "images").is_dir()
    marker.write_text("still here")
    generate_vqa(root, seed=5, **tiny_sizes)
    assert not marker.exists()
    assert json.loads((root / "manifest.json").read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no staging or retired dirs left


def test_a_crash_leaves_no_partial_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_sizes: dict[str, int]) -> None:
    root = generate_vqa(tmp_path / "d", seed=0, **tiny_sizes)
    before = _files(root)

    def crash(out: Path, manifest: dict) -> None:
        (out / "images").mkdir()
        raise OSError("disk full")

    monkeypatch.setattr(vqa_generate, "_write_dataset", crash)
    with pytest.raises(OSError, match="disk full"):
        generate_vqa(root, seed=1, **tiny_sizes)
    assert _files(root) == before  # the old dataset is untouched
    with pytest.raises(OSError, match="disk full"):
        generate_vqa(tmp_path / "fresh", seed=0, **tiny_sizes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_refuses_to_overwrite_a_foreign_directory(tmp_path: Path, tiny_sizes: dict[str, int]) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("precious")
    with pytest.raises(DatasetError, match=r"is not a dataset written by tasks\.vqa_generate"):
        generate_vqa(root, **tiny_sizes)
    assert (root / "notes.txt").read_text() == "precious"


def test_bad_arguments_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        generate_vqa(tmp_path / "d", n_val_images=0, questions_per_image=9, image_size=8)
    message = str(info.value)
    assert "n_val_images must be an int >= 1" in message and "got 0" in message
    assert "questions_per_image must be an int in [1, 5], but got 9" in message
    assert "image_size must be an int >= 16 pixels, but got 8" in message
    assert not (tmp_path / "d").exists()


def test_questions_per_image_are_distinct(tmp_path: Path) -> None:
    root = generate_vqa(tmp_path / "d", n_train_images=20, n_val_images=1, n_test_images=1, questions_per_image=5)
    by_image: dict[str, list[str]] = {}
    for record in _json(root, "karpathy_train.json"):
        by_image.setdefault(record["img_id"], []).append(record["sent"])
    assert all(len(qs) == len(set(qs)) == 5 for qs in by_image.values())
