"""mini-VL: the real loaders read every task, determinism, OOD splits, reuse, pretraining disjointness."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

import tasks.benchmark as benchmark
from tasks import (
    HELD_OUT_PAIRS,
    BenchmarkSizes,
    DatasetError,
    generate_benchmark,
    load_caption_split,
    load_gqa_split,
    load_nlvr2_split,
    load_video_caption_split,
    load_video_qa_split,
    load_vqa_split,
    pretraining_corpus,
)
from tasks.benchmark import SPLITS, TASK_SPLITS


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _pairs(objects: list[list]) -> set[tuple[str, str]]:
    return {(colour, shape) for shape, colour, *_ in objects}


def test_every_task_loads_with_the_real_loaders(tiny_benchmark: Path, tiny_benchmark_sizes: BenchmarkSizes) -> None:
    sizes = tiny_benchmark_sizes
    for split in SPLITS:
        n_images, n_videos = sizes.images[split], sizes.videos[split]
        vqa = load_vqa_split(tiny_benchmark, split)
        assert len(vqa) == n_images * sizes.vqa_questions_per_image and all(len(e.answers) == 10 for e in vqa)
        gqa = load_gqa_split(tiny_benchmark, TASK_SPLITS["gqa"][split])
        assert len(gqa) == n_images * sizes.gqa_questions_per_image
        assert all(list(e.label.values()) == [1.0] for e in gqa)
        nlvr = load_nlvr2_split(tiny_benchmark, TASK_SPLITS["nlvr2"][split])
        assert len(nlvr) == sizes.nlvr2_pairs[split]
        captions = load_caption_split(tiny_benchmark, split)
        assert len(captions) == n_images and all(len(set(e.references)) == 5 for e in captions)
        tvqa = load_video_qa_split(tiny_benchmark, "tvqa", split)
        assert len(tvqa) == n_videos * sizes.tvqa_questions_per_video
        assert all(len(e.choices) == 5 and len(e.video.frames) == sizes.frames_per_video for e in tvqa)
        assert all(len(e.subtitles) == 3 and e.video.features is None for e in tvqa)
        tvc = load_video_caption_split(tiny_benchmark, "tvc", split)
        assert len(tvc) == n_videos and all(len(set(e.references)) == 5 for e in tvc)
        # Every task uses only images of its own split.
        used = {p.name for e in gqa for p in e.image_paths} | {p.name for e in nlvr for p in e.image_paths}
        assert all(name.startswith(f"mini_{split}_") for name in used)


def test_same_arguments_give_byte_identical_files(tiny_benchmark: Path, tmp_path: Path, tiny_benchmark_sizes: BenchmarkSizes) -> None:
    again = generate_benchmark(tmp_path / "again", seed=0, sizes=tiny_benchmark_sizes)
    assert _files(again) == _files(tiny_benchmark)
    other = generate_benchmark(tmp_path / "other", seed=1, sizes=tiny_benchmark_sizes)
    assert _files(other)["gqa/train.json"] != _files(tiny_benchmark)["gqa/train.json"]


def test_ood_split_holds_exactly_the_held_out_pairs(tiny_benchmark: Path) -> None:
    truth = json.loads((tiny_benchmark / "scenes.json").read_text())
    for img_id, objects in truth["images"].items():
        assert bool(_pairs(objects) & HELD_OUT_PAIRS) == img_id.startswith("mini_test_ood_"), img_id
    for vid_name, video in truth["videos"].items():
        assert bool(_pairs(video["objects"]) & HELD_OUT_PAIRS) == vid_name.startswith("mini_test_ood_")
    # Text too: no held-out pair is ever named in a training caption.
    named = {f"{c} {s}" for c, s in HELD_OUT_PAIRS}
    train_refs = [r for e in load_caption_split(tiny_benchmark, "train") for r in e.references]
    assert not any(pair in r for r in train_refs for pair in named)
    ood_refs = [" ".join(e.references) for e in load_caption_split(tiny_benchmark, "test_ood")]
    assert all(any(pair in r for pair in named) for r in ood_refs)


def test_nlvr2_labels_are_balanced_and_images_differ(tiny_benchmark: Path) -> None:
    for split in TASK_SPLITS["nlvr2"].values():
        examples = load_nlvr2_split(tiny_benchmark, split)
        counts = Counter(e.label for e in examples)
        assert abs(counts[True] - counts[False]) <= 1
        assert all(e.img_ids[0] != e.img_ids[1] for e in examples)


def _nlvr2_template(statement: str) -> str:
    """Which of tasks.nlvr2_statements.TEMPLATES wrote a statement."""
    if statement.startswith("each image contains at least one "):
        return "each_colour"
    if statement.startswith("both images contain "):
        return "both_shape"
    assert statement.startswith(("the left image contains ", "the right image contains ")), statement
    return "side_colour" if statement.endswith(" object.") else "side_shape"


def test_nlvr2_plan_balances_templates_and_labels() -> None:
    import random

    plan = benchmark._nlvr2_plan(101, random.Random(0))
    per_template = Counter(t for t, _ in plan)
    assert set(per_template) == set(benchmark.NLVR2_TEMPLATES)
    assert max(per_template.values()) - min(per_template.values()) <= 1
    labels = Counter(plan)
    assert all(abs(labels[(t, True)] - labels[(t, False)]) <= 1 for t in per_template)
    assert abs(sum(label for _, label in plan) * 2 - len(plan)) <= 1


def test_default_sizes_give_balanced_answers(tmp_path: Path) -> None:
    """A mid-sized run: no single answer dominates any task (the majority baselines stay low)."""
    sizes = BenchmarkSizes(
        images={"train": 150, "val": 2, "test": 2, "test_ood": 2},
        nlvr2_pairs={"train": 100, "val": 2, "test": 2, "test_ood": 2},
        videos={"train": 60, "val": 1, "test": 1, "test_ood": 1},
        frames_per_video=2,
    )
    root = generate_benchmark(tmp_path / "b", sizes=sizes)
    # NLVR2: every template about equally often and true as often as false, so the wording
    # alone predicts nothing (the old generator let some templates be false 92% of the time).
    statements = Counter((_nlvr2_template(e.statement), e.label) for e in load_nlvr2_split(root, "train"))
    for name in benchmark.NLVR2_TEMPLATES:
        assert abs(statements[(name, True)] - statements[(name, False)]) <= 1, name
        assert statements[(name, True)] + statements[(name, False)] >= 100 // len(benchmark.NLVR2_TEMPLATES) - 1, name
    gqa = Counter(a for e in load_gqa_split(root, "train") for a in e.label)
    assert gqa.most_common(1)[0][1] / sum(gqa.values()) < 0.3
    assert {"left", "right", "above", "below", "yes", "no"} <= set(gqa)
    idx = Counter(e.answer_idx for e in load_video_qa_split(root, "tvqa", "train"))
    assert max(idx.values()) / sum(idx.values()) < 0.35
    kinds = Counter(e.question.split()[0] for e in load_video_qa_split(root, "tvqa", "train"))
    assert len(kinds) >= 2


def test_reuse_regeneration_and_foreign_directories(tmp_path: Path, tiny_benchmark_sizes: BenchmarkSizes) -> None:
    root = generate_benchmark(tmp_path / "b", sizes=tiny_benchmark_sizes)
    marker = root / "marker"
    marker.write_text("x")
    generate_benchmark(root, sizes=tiny_benchmark_sizes)
    assert marker.exists()  # reused
    next((root / "videos").glob("*/frame_000.png")).unlink()
    generate_benchmark(root, sizes=tiny_benchmark_sizes)
    assert not marker.exists()  # damaged -> regenerated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(DatasetError, match=r"is not a dataset written by tasks\.benchmark"):
        generate_benchmark(foreign, sizes=tiny_benchmark_sizes)


def test_a_crash_leaves_no_partial_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_benchmark_sizes: BenchmarkSizes) -> None:
    def crash(self: object, *args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(benchmark._Writer, "_write_nlvr2", crash)
    with pytest.raises(OSError, match="disk full"):
        generate_benchmark(tmp_path / "b", sizes=tiny_benchmark_sizes)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_reported_together(tmp_path: Path) -> None:
    sizes = BenchmarkSizes(images={"train": 1, "val": 0}, frames_per_video=1)
    with pytest.raises(ValueError) as info:
        generate_benchmark(tmp_path / "b", seed=1.5, sizes=sizes, image_size=8)  # type: ignore[arg-type]
    message = str(info.value)
    assert "images must map each of ['train', 'val', 'test', 'test_ood']" in message
    assert "frames_per_video must be an int in [2, 64], but got 1" in message
    assert "seed must be an int, but got 1.5" in message and "image_size must be an int >= 16" in message
    assert not (tmp_path / "b").exists()


def test_command_line_generates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = BenchmarkSizes(
        images={s: 2 for s in SPLITS}, nlvr2_pairs={s: 1 for s in SPLITS}, videos={s: 1 for s in SPLITS}, frames_per_video=2
    )
    import tasks.__main__ as cli

    monkeypatch.setattr(cli, "generate_benchmark", functools.partial(generate_benchmark, sizes=small))
    cli.main(["generate", str(tmp_path / "cli"), "--seed", "3"])
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["generator"] == "tasks.benchmark"
    result = subprocess.run([sys.executable, "-m", "tasks", "generate", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--image-size" in result.stdout


def test_pretraining_corpus_is_disjoint_from_the_benchmark(tiny_benchmark: Path) -> None:
    corpus = pretraining_corpus(seed=0, n=40, exclude_root=tiny_benchmark)
    assert len(corpus) == 40 and len({p.pair_id for p in corpus}) == 40
    assert corpus == pretraining_corpus(seed=0, n=40, exclude_root=tiny_benchmark)
    truth = json.loads((tiny_benchmark / "scenes.json").read_text())
    bench_scenes = {tuple(map(tuple, objs)) for objs in truth["images"].values()}
    bench_pixels = {Image.open(p).tobytes() for p in (tiny_benchmark / "images").glob("*.png")}
    for pair in corpus:
        key = tuple((o.shape, o.colour, o.size, o.x, o.y) for o in pair.scene.objects)
        assert key not in bench_scenes and pair.image.tobytes() not in bench_pixels
        assert not {(o.colour, o.shape) for o in pair.scene.objects} & HELD_OUT_PAIRS
        assert pair.caption.endswith(".")


def test_pretraining_skips_a_benchmark_image(tiny_benchmark: Path, tmp_path: Path) -> None:
    """Plant the corpus's first image in a fake benchmark: it must be skipped."""
    first = pretraining_corpus(seed=0, n=1)[0]
    fake = tmp_path / "fake"
    (fake / "images").mkdir(parents=True)
    (fake / "videos").mkdir()
    first.image.save(fake / "images" / "x.png")
    (fake / "scenes.json").write_text(json.dumps({"images": {}, "videos": {}}))
    assert pretraining_corpus(seed=0, n=1, exclude_root=fake)[0].image.tobytes() != first.image.tobytes()
    with pytest.raises(DatasetError, match="scenes.json does not exist"):
        pretraining_corpus(n=1, exclude_root=tmp_path)
