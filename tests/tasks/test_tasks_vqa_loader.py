"""load_vqa_split: round trip, and a clear DatasetError for every defect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tasks import DatasetError, VQAExample, load_vqa_split


@pytest.fixture
def dataset(tiny_vqa: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    return Path(shutil.copytree(tiny_vqa, tmp_path / "copy"))


def _karpathy(root: Path, split: str = "val") -> Path:
    return root / "vqa" / f"karpathy_{split}.json"


def test_round_trip_matches_the_files(tiny_vqa: Path, tiny_sizes: dict[str, int]) -> None:
    for split in ("train", "val", "test"):
        examples = load_vqa_split(tiny_vqa, split)
        records = json.loads(_karpathy(tiny_vqa, split).read_text())
        anns = json.loads((tiny_vqa / "vqa" / f"v2_mscoco_{split}_annotations.json").read_text())
        raw = {a["question_id"]: tuple(x["answer"] for x in a["answers"]) for a in anns["annotations"]}
        assert len(examples) == len(records) == tiny_sizes[f"n_{split}_images"] * tiny_sizes["questions_per_image"]
        for ex, record in zip(examples, records, strict=True):
            assert ex == VQAExample(
                question_id=record["question_id"],
                img_id=record["img_id"],
                image_path=tiny_vqa / "images" / f"{record['img_id']}.png",
                question=record["sent"],
                label=record["label"],
                answers=raw[record["question_id"]],
            )
            assert len(ex.answers) == 10


def test_answers_are_empty_without_the_annotation_file(dataset: Path) -> None:
    (dataset / "vqa" / "v2_mscoco_val_annotations.json").unlink()
    assert all(ex.answers == () for ex in load_vqa_split(dataset, "val"))


def test_unknown_split_lists_the_accepted_ones(tiny_vqa: Path) -> None:
    with pytest.raises(DatasetError, match=r"unknown split 'dev'; accepted splits are \['train', 'val', 'test', 'test_ood'\]"):
        load_vqa_split(tiny_vqa, "dev")


def test_missing_file(dataset: Path) -> None:
    _karpathy(dataset).unlink()
    with pytest.raises(DatasetError, match=r"karpathy_val\.json does not exist"):
        load_vqa_split(dataset, "val")


def test_malformed_json(dataset: Path) -> None:
    _karpathy(dataset).write_text('[{"img_id": ')
    with pytest.raises(DatasetError, match=r"karpathy_val\.json is not valid UTF-8 JSON"):
        load_vqa_split(dataset, "val")


def test_not_a_list(dataset: Path) -> None:
    _karpathy(dataset).write_text('{"questions": []}')
    with pytest.raises(DatasetError, match="must hold a JSON list of question records, got dict"):
        load_vqa_split(dataset, "val")


def test_empty_split(dataset: Path) -> None:
    _karpathy(dataset).write_text("[]")
    with pytest.raises(DatasetError, match=r"karpathy_val\.json holds no questions"):
        load_vqa_split(dataset, "val")


def _edit_record(root: Path, index: int, **changes: object) -> None:
    records = json.loads(_karpathy(root).read_text())
    for key, value in changes.items():
        if value is None:
            del records[index][key]
        else:
            records[index][key] = value
    _karpathy(root).write_text(json.dumps(records))


def test_record_missing_a_key(dataset: Path) -> None:
    _edit_record(dataset, 1, sent=None)
    with pytest.raises(DatasetError, match=r"karpathy_val\.json record #1 lacks required key\(s\) \['sent'\]"):
        load_vqa_split(dataset, "val")


def test_record_with_a_mistyped_value(dataset: Path) -> None:
    _edit_record(dataset, 2, question_id="7", label={"red": "high"})
    with pytest.raises(DatasetError, match=r"record #2 is malformed: question_id must be an int, got '7'; label"):
        load_vqa_split(dataset, "val")


def test_duplicate_question_id(dataset: Path) -> None:
    first = json.loads(_karpathy(dataset).read_text())[0]["question_id"]
    _edit_record(dataset, 3, question_id=first)
    with pytest.raises(DatasetError, match=rf"record #3 repeats question_id={first}"):
        load_vqa_split(dataset, "val")


def test_missing_image(dataset: Path) -> None:
    record = json.loads(_karpathy(dataset).read_text())[0]
    (dataset / "images" / f"{record['img_id']}.png").unlink()
    with pytest.raises(
        DatasetError,
        match=rf"record #0 \(question_id={record['question_id']}\) "
        rf"names img_id='{record['img_id']}'",
    ):
        load_vqa_split(dataset, "val")


def test_malformed_annotation_file(dataset: Path) -> None:
    path = dataset / "vqa" / "v2_mscoco_val_annotations.json"
    data = json.loads(path.read_text())
    del data["annotations"][1]["answers"]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"v2_mscoco_val_annotations\.json annotation #1 is malformed"):
        load_vqa_split(dataset, "val")
