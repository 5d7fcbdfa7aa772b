"""The real-format loaders on small hand-written fixtures: round trip and a clear error per defect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks import (
    CaptionExample,
    DatasetError,
    PairExample,
    QAExample,
    Subtitle,
    load_caption_split,
    load_custom_jsonl,
    load_gqa_split,
    load_nlvr2_split,
    load_video_caption_split,
    load_video_features,
    load_video_qa_split,
)


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (255, 0, 0)).save(path)
    return path


def _write(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def _jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- GQA -------------------------------------------------------------------------------------


@pytest.fixture
def gqa_root(tmp_path: Path) -> Path:
    _image(tmp_path / "images" / "2354786.jpg")
    _write(
        tmp_path / "gqa" / "testdev.json",
        [
            {"img_id": "2354786", "sent": "Is the sky dark?", "question_id": "20968379", "label": {"yes": 1.0}},
            {"img_id": "2354786", "sent": "What is on the white wall?", "question_id": "20968380", "label": {"pipe": 1.0}},
        ],
    )
    return tmp_path


def test_gqa_round_trip(gqa_root: Path) -> None:
    examples = load_gqa_split(gqa_root, "testdev")
    assert examples[1] == QAExample(
        question_id="20968380",
        img_ids=("2354786",),
        image_paths=(gqa_root / "images" / "2354786.jpg",),
        question="What is on the white wall?",
        label={"pipe": 1.0},
    )


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"img_id": "2354786", "sent": "q?", "question_id": "1", "label": "yes"}, "label must be an object mapping"),
        ({"img_id": "2354786", "sent": "q?", "question_id": "1", "label": {}}, "has an empty label"),
        ({"img_id": "2354786", "sent": "q?", "label": {"yes": 1}}, r"lacks required key\(s\) \['question_id'\]"),
        ({"img_id": "nope", "sent": "q?", "question_id": "1", "label": {"yes": 1}}, "names image 'nope'"),
        ({"img_id": "2354786", "sent": "q?", "question_id": "20968379", "label": {"yes": 1}}, "repeats question_id"),
    ],
)
def test_gqa_defects_name_file_and_record(gqa_root: Path, record: dict, needle: str) -> None:
    path = gqa_root / "gqa" / "testdev.json"
    records = json.loads(path.read_text()) + [record]
    _write(path, records)
    with pytest.raises(DatasetError, match=needle) as info:
        load_gqa_split(gqa_root, "testdev")
    assert f"{path} record #2" in str(info.value)


def test_gqa_empty_split_missing_file_and_unknown_split(gqa_root: Path) -> None:
    _write(gqa_root / "gqa" / "valid.json", [])
    with pytest.raises(DatasetError, match=r"valid\.json holds no question records"):
        load_gqa_split(gqa_root, "valid")
    with pytest.raises(DatasetError, match=r"train\.json does not exist"):
        load_gqa_split(gqa_root, "train")
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        load_gqa_split(gqa_root, "dev")
    (gqa_root / "gqa" / "train.json").write_text("[{")
    with pytest.raises(DatasetError, match=r"train\.json is not valid UTF-8 JSON"):
        load_gqa_split(gqa_root, "train")


# --- NLVR2 -----------------------------------------------------------------------------------


def _nlvr_record(**overrides: object) -> dict:
    record = {
        "identifier": "dev-850-0-0",
        "img0": "dev-850-0-img0",
        "img1": "dev-850-0-img1",
        "sent": "The left image contains twice the number of dogs as the right image.",
        "label": 1,
        "uid": "nlvr2_dev_0",
    }
    return {**record, **overrides}


@pytest.fixture
def nlvr_root(tmp_path: Path) -> Path:
    for name in ("dev-850-0-img0", "dev-850-0-img1"):
        _image(tmp_path / "imgs" / f"{name}.png")
    _write(tmp_path / "nlvr" / "valid.json", [_nlvr_record(), _nlvr_record(identifier="dev-850-0-1", label=0)])
    return tmp_path


def test_nlvr2_round_trip_with_an_images_dir(nlvr_root: Path) -> None:
    first, second = load_nlvr2_split(nlvr_root, "valid", images_dir=nlvr_root / "imgs")
    images = nlvr_root / "imgs"
    assert first == PairExample(
        identifier="dev-850-0-0",
        uid="nlvr2_dev_0",
        img_ids=("dev-850-0-img0", "dev-850-0-img1"),
        image_paths=(images / "dev-850-0-img0.png", images / "dev-850-0-img1.png"),
        statement=_nlvr_record()["sent"],
        label=True,
    )
    assert (first.target, second.target) == ("true", "false")


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"label": "True"}, "label must be the int 0 or 1"),
        ({"label": True}, "label must be the int 0 or 1"),
        ({"label": 2}, "label must be the int 0 or 1"),
        ({"img1": "missing"}, "names image 'missing'"),
    ],
)
def test_nlvr2_defects(nlvr_root: Path, overrides: dict, needle: str) -> None:
    path = _write(nlvr_root / "nlvr" / "valid.json", [_nlvr_record(**overrides)])
    with pytest.raises(DatasetError, match=needle) as info:
        load_nlvr2_split(nlvr_root, "valid", images_dir=nlvr_root / "imgs")
    assert f"{path} record #0" in str(info.value)


# --- COCO Karpathy captions --------------------------------------------------------------------


def _coco_image(split: str, cocoid: int, filepath: str | None = "val2014") -> dict:
    record = {
        "filename": f"COCO_val2014_{cocoid:012d}.jpg",
        "imgid": cocoid % 1000,
        "split": split,
        "sentences": [{"raw": "A man riding a horse.", "tokens": ["a", "man"]}, {"raw": "A rider on a horse."}],
        "cocoid": cocoid,
    }
    if filepath is not None:
        record["filepath"] = filepath
    return record


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    images = [_coco_image("train", 1), _coco_image("restval", 2), _coco_image("val", 3), _coco_image("test", 4)]
    for record in images:
        _image(tmp_path / "images" / record["filepath"] / record["filename"])
    _write(tmp_path / "coco" / "dataset_coco.json", {"images": images, "dataset": "coco"})
    return tmp_path


def test_caption_splits_follow_karpathy_train_includes_restval(coco_root: Path) -> None:
    train = load_caption_split(coco_root, "train")
    assert [(e.image_id, e.split) for e in train] == [(1, "train"), (2, "restval")]
    (test,) = load_caption_split(coco_root, "test")
    assert test == CaptionExample(
        image_id=4,
        img_id="COCO_val2014_000000000004",
        image_path=coco_root / "images" / "val2014" / "COCO_val2014_000000000004.jpg",
        references=("A man riding a horse.", "A rider on a horse."),
        split="test",
    )
    with pytest.raises(DatasetError, match="has no images in split 'test_ood'"):
        load_caption_split(coco_root, "test_ood")


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"split": "dev"}, "split must be one of"),
        ({"sentences": []}, "sentences must be a non-empty list"),
        ({"sentences": [{"text": "x"}]}, "sentences must be a non-empty list"),
        ({"filename": "absent.jpg"}, "absent.jpg, which does not exist"),
        ({"cocoid": 1}, "repeats image id=1"),
    ],
)
def test_caption_defects(coco_root: Path, patch: dict, needle: str) -> None:
    path = coco_root / "coco" / "dataset_coco.json"
    data = json.loads(path.read_text())
    data["images"][3].update(patch)
    _write(path, data)
    with pytest.raises(DatasetError, match=needle) as info:
        load_caption_split(coco_root, "test")
    assert f"{path} image #3" in str(info.value)


def test_caption_file_must_have_an_images_list(coco_root: Path) -> None:
    _write(coco_root / "coco" / "dataset_coco.json", [1, 2])
    with pytest.raises(DatasetError, match="must be an object with an 'images' list"):
        load_caption_split(coco_root, "val")


# --- Video (VALUE) -----------------------------------------------------------------------------


def _tvqa(**overrides: object) -> dict:
    record = {
        "vid_name": "s01e01_seg02_clip_00",
        "qid": 7,
        "q": "What is Sheldon holding?",
        "a0": "a cup",
        "a1": "a book",
        "a2": "a phone",
        "a3": "a laptop",
        "a4": "nothing",
        "answer_idx": 2,
        "ts": "1.5-4.25",
    }
    return {**record, **overrides}


@pytest.fixture
def video_root(tmp_path: Path) -> Path:
    (tmp_path / "video_features").mkdir()
    np.savez(tmp_path / "video_features" / "s01e01_seg02_clip_00.npz", features=np.ones((6, 4), dtype=np.float16))
    for t in range(3):
        _image(tmp_path / "videos" / "clip_b" / f"frame_{t:03d}.png")
    _jsonl(tmp_path / "tvqa" / "val.jsonl", [_tvqa(), _tvqa(qid=8, vid_name="clip_b", ts=[0, 2.5])])
    _jsonl(
        tmp_path / "tvqa" / "subtitles.jsonl",
        [
            {
                "vid_name": "s01e01_seg02_clip_00",
                "sub": [{"text": "B: hi", "start": 2.0, "end": 3}, {"text": "A: yo", "start": 0, "end": 1}],
            },
            {"vid_name": "clip_b", "sub": []},
        ],
    )
    return tmp_path


def test_video_qa_round_trip_prefers_features(video_root: Path) -> None:
    first, second = load_video_qa_split(video_root, "tvqa", "val")
    assert first.choices == ("a cup", "a book", "a phone", "a laptop", "nothing")
    assert (first.answer_idx, first.target, first.ts) == (2, "a2", (1.5, 4.25))
    assert first.video.features == video_root / "video_features" / "s01e01_seg02_clip_00.npz"
    assert first.subtitles == (Subtitle("A: yo", 0.0, 1.0), Subtitle("B: hi", 2.0, 3.0))
    assert second.video.features is None and len(second.video.frames) == 3 and second.ts == (0.0, 2.5)
    features = load_video_features(first.video.features)
    assert features.shape == (6, 4) and features.dtype == np.float32


def test_how2qa_has_four_answers(video_root: Path) -> None:
    record = _tvqa(answer_idx=3)
    del record["a4"]
    _jsonl(video_root / "how2qa" / "test.jsonl", [record])
    (video_root / "how2qa" / "subtitles.jsonl").write_text((video_root / "tvqa" / "subtitles.jsonl").read_text())
    (example,) = load_video_qa_split(video_root, "how2qa", "test")
    assert len(example.choices) == 4 and example.target == "a3"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"answer_idx": 5}, "answer_idx must be an int indexing"),
        ({"answer_idx": "a1"}, "answer_idx must be an int indexing"),
        ({"ts": "soon"}, "ts must be"),
        ({"ts": [3, 1]}, "ts must be"),
        ({"vid_name": "ghost"}, "neither .*ghost.npz nor frames"),
        ({"a1": None}, "a1 must be a string, got None"),
        ({"a3": 3}, "answer_idx must be an int indexing the string answers"),
    ],
)
def test_video_qa_defects(video_root: Path, overrides: dict, needle: str) -> None:
    if overrides.get("vid_name") == "ghost":
        with (video_root / "tvqa" / "subtitles.jsonl").open("a") as f:
            f.write(json.dumps({"vid_name": "ghost", "sub": []}) + "\n")
    path = _jsonl(video_root / "tvqa" / "val.jsonl", [_tvqa(**overrides)])
    with pytest.raises(DatasetError, match=needle) as info:
        load_video_qa_split(video_root, "tvqa", "val")
    assert f"{path} record #0" in str(info.value)


def test_video_qa_needs_subtitles_and_valid_jsonl(video_root: Path) -> None:
    _jsonl(video_root / "tvqa" / "subtitles.jsonl", [{"vid_name": "clip_b", "sub": []}])
    with pytest.raises(DatasetError, match="has no entry in .*subtitles.jsonl"):
        load_video_qa_split(video_root, "tvqa", "val")
    (video_root / "tvqa" / "subtitles.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"subtitles\.jsonl does not exist"):
        load_video_qa_split(video_root, "tvqa", "val")
    (video_root / "tvqa" / "val.jsonl").write_text('{"vid_name": "x"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"val\.jsonl line 2 is not valid JSON"):
        load_video_qa_split(video_root, "tvqa", "val")


def test_video_captions_round_trip_and_defects(video_root: Path) -> None:
    record = {"vid_name": "clip_b", "clip_id": 91, "ts": [0.5, 2.0], "duration": 3.0, "descs": [{"desc": "He waves."}]}
    path = _jsonl(video_root / "yc2c" / "train.jsonl", [record])
    (example,) = load_video_caption_split(video_root, "yc2c", "train")
    assert (example.clip_id, example.ts, example.references, example.subtitles) == (91, (0.5, 2.0), ("He waves.",), ())
    _jsonl(path, [{**record, "descs": ["He waves."]}])
    with pytest.raises(DatasetError, match=r"record #0 is malformed: descs must be a non-empty list"):
        load_video_caption_split(video_root, "yc2c", "train")
    _jsonl(path, [])
    with pytest.raises(DatasetError, match="holds no records"):
        load_video_caption_split(video_root, "yc2c", "train")


def test_video_features_defects(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones((2, 3)), y=np.ones(2))
    with pytest.raises(DatasetError, match=r"a\.npz holds arrays \['x', 'y'\] but none named 'features'"):
        load_video_features(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", features=np.ones(3))
    with pytest.raises(DatasetError, match=r"b\.npz array 'features' has shape \(3,\)"):
        load_video_features(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_text("junk")
    with pytest.raises(DatasetError, match=r"c\.npz is not a readable \.npz file"):
        load_video_features(tmp_path / "c.npz")


# --- Generic JSONL ---------------------------------------------------------------------------


def test_custom_qa_and_caption_files(tmp_path: Path) -> None:
    _image(tmp_path / "photos" / "cat.jpg")
    _image(tmp_path / "r.png")
    qa = _jsonl(
        tmp_path / "qa.jsonl",
        [
            {"id": "q1", "image": "photos/cat.jpg", "text": "what animal?", "answers": ["cat", "cat", "kitten"]},
            {"images": ["photos/cat.jpg", str(tmp_path / "r.png")], "text": "both show cats.", "answer": "false"},
            {"image": "r.png", "text": "which?", "choices": ["a", "b"], "answer": "b"},
        ],
    )
    data = load_custom_jsonl(qa)
    assert data.kind == "qa"
    first, second, third = data.examples
    assert first.label == pytest.approx({"cat": 2 / 3, "kitten": 1 / 3}) and first.img_ids == ("photos/cat",)
    assert second.question_id == 2 and len(second.image_paths) == 2
    assert third.choices == ("a", "b")
    captions = _jsonl(tmp_path / "cap.jsonl", [{"id": 5, "image": "r.png", "captions": ["a red square."]}])
    (example,) = load_custom_jsonl(captions).examples
    assert example == CaptionExample(5, "r", tmp_path / "r.png", ("a red square.",), "custom")


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"image": "r.png", "text": "q"}, "give exactly one of 'answer', 'answers' or 'captions'"),
        ({"image": "r.png", "answer": "x", "captions": ["y"]}, "give exactly one of"),
        ({"text": "q", "answer": "x"}, "exactly one of 'image'"),
        ({"image": "gone.png", "answer": "x"}, "names image 'gone.png'"),
        ({"image": "r.png", "answer": "c", "choices": ["a", "b"]}, "must be a list of strings that contains every answer"),
        ({"image": "r.png", "answers": []}, "give a non-empty string or list"),
        ({"images": ["r.png", "r.png"], "captions": ["a"]}, "captioning needs one image"),
        ({"id": 1, "image": "r.png", "captions": ["a"]}, "is a caption record, but"),
    ],
)
def test_custom_defects(tmp_path: Path, record: dict, needle: str) -> None:
    _image(tmp_path / "r.png")
    first = {"id": 0, "image": "r.png", "answer": "ok"}
    if "captions" in record and "answer" not in record and "images" in record:
        first = {"id": 0, "image": "r.png", "captions": ["fine."]}
    path = _jsonl(tmp_path / "d.jsonl", [first, record])
    with pytest.raises(DatasetError, match=needle) as info:
        load_custom_jsonl(path)
    assert f"{path} record #1" in str(info.value)
