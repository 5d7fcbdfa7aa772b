"""Small datasets in the authors' layouts and in JSONL, as a user would have them on disk.

Each is cut from the generated benchmark (the first N records of each split, their images and
videos copied), into folders that keep annotations, images and video frames apart, as real
datasets do, so that a data file must name each folder. The test that uses them computes the
official metrics itself from these files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

SIZES = {"train": 16, "val": 8, "test": 8}


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _write_jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _copy_image(bench: Path, img_id: str, images: Path) -> None:
    images.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bench / "images" / f"{img_id}.png", images / f"{img_id}.png")


def write_vqa(bench: Path, root: Path, images: Path) -> None:
    """VQA v2 Karpathy layout: karpathy_{split}.json + the official annotation files."""
    for split, n in SIZES.items():
        records = json.loads((bench / "vqa" / f"karpathy_{split}.json").read_text())[:n]
        _write_json(root / f"karpathy_{split}.json", records)
        kept = {r["question_id"] for r in records}
        annotations = json.loads((bench / "vqa" / f"v2_mscoco_{split}_annotations.json").read_text())
        annotations["annotations"] = [a for a in annotations["annotations"] if a["question_id"] in kept]
        _write_json(root / f"v2_mscoco_{split}_annotations.json", annotations)
        for r in records:
            _copy_image(bench, r["img_id"], images)


def write_gqa(bench: Path, root: Path, images: Path) -> None:
    for split, own in (("train", "train"), ("val", "valid"), ("test", "testdev")):
        records = json.loads((bench / "gqa" / f"{own}.json").read_text())[: SIZES[split]]
        _write_json(root / f"{own}.json", records)
        for r in records:
            _copy_image(bench, r["img_id"], images)


def write_nlvr2(bench: Path, root: Path, images: Path) -> None:
    for split, own in (("train", "train"), ("val", "valid"), ("test", "test")):
        records = json.loads((bench / "nlvr" / f"{own}.json").read_text())[: SIZES[split]]
        _write_json(root / f"{own}.json", records)
        for r in records:
            _copy_image(bench, r["img0"], images)
            _copy_image(bench, r["img1"], images)


def write_caption(bench: Path, root: Path, images: Path) -> None:
    data = json.loads((bench / "coco" / "dataset_coco.json").read_text())
    kept = []
    for split, n in SIZES.items():
        kept += [image for image in data["images"] if image["split"] == split][:n]
    _write_json(root / "dataset_coco.json", {"dataset": "coco", "images": kept})
    for image in kept:
        _copy_image(bench, Path(image["filename"]).stem, images)


def write_video(
    bench: Path,
    source_task: str,
    root: Path,
    videos: Path | None,
    features: Path | None,
    feature_dim: int = 0,
    max_choices: int | None = None,
) -> None:
    """VALUE layout: {split}.jsonl and subtitles.jsonl in `root`; frames in `videos`, or
    per-video .npz features in `features` (random, deterministic, of `feature_dim`)."""
    used = set()
    for split, n in SIZES.items():
        records = _read_jsonl(bench / source_task / f"{split}.jsonl")
        if max_choices is not None:  # How2QA: four answers
            records = [{k: v for k, v in r.items() if k != f"a{max_choices}"} for r in records if r["answer_idx"] < max_choices]
        records = records[:n]
        _write_jsonl(root / f"{split}.jsonl", records)
        used |= {r["vid_name"] for r in records}
    subtitles = [s for s in _read_jsonl(bench / source_task / "subtitles.jsonl") if s["vid_name"] in used]
    _write_jsonl(root / "subtitles.jsonl", subtitles)
    rng = np.random.default_rng(0)
    for vid in sorted(used):
        if videos is not None:
            shutil.copytree(bench / "videos" / vid, videos / vid, dirs_exist_ok=True)
        if features is not None:
            features.mkdir(parents=True, exist_ok=True)
            np.savez(features / f"{vid}.npz", features=rng.standard_normal((8, feature_dim)).astype(np.float32))


def write_jsonl_tasks(bench: Path, out: Path) -> dict[str, str]:
    """The four kinds of JSONL task: QA with one image, QA with two images, QA with choices,
    captioning. Returns task name -> folder (relative to `out`)."""
    from tasks.export_jsonl import export_jsonl

    folders = {"shapes_qa": "vqa", "pairs": "nlvr2", "captions": "caption"}
    for name, task in folders.items():
        export_jsonl(bench, task, out / name, max_examples=SIZES["train"])
        for split in ("train", "val", "test"):  # the same caps as the other layouts
            path = out / name / f"{split}.jsonl"
            path.write_text("".join(path.read_text().splitlines(keepends=True)[: SIZES[split]]))
    # Multiple choice: GQA questions offered with their answer and two others of the vocabulary.
    export_jsonl(bench, "gqa", out / "choices", max_examples=SIZES["train"])
    vocabulary = sorted({json.loads(line).get("answer", "") for line in (out / "choices" / "train.jsonl").read_text().splitlines()})
    for split in ("train", "val", "test"):
        path = out / "choices" / f"{split}.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines()][: SIZES[split]]
        for r in records:
            others = [a for a in vocabulary if a != r["answer"]][:2]
            r["choices"] = sorted([r["answer"], *others])
        _write_jsonl(path, records)
    folders["choices"] = "gqa"
    return {name: name for name in folders}


def small_benchmark(folder: Path, train: int) -> Path:
    """A generated benchmark with `train` training images (8 val, 8 test): data a user's
    backbone trains on in seconds."""
    from tasks.benchmark import BenchmarkSizes, generate_benchmark

    split = {"train": train, "val": 8, "test": 8, "test_ood": 2}
    sizes = BenchmarkSizes(images=split, nlvr2_pairs=split, videos={s: 1 for s in split}, frames_per_video=2)
    return generate_benchmark(folder, sizes=sizes)
