"""export-jsonl: a generated task written as generic JSONL reads back the same, byte for byte, and bad input
writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tasks import (
    DatasetError,
    load_caption_split,
    load_custom_jsonl,
    load_gqa_split,
    load_nlvr2_split,
    load_vqa_split,
)
from tasks.__main__ import default_benchmark_dir
from tasks.export_jsonl import export_jsonl

REPO = Path(__file__).resolve().parents[2]
SPLITS = ("train", "val", "test")
# Written out here rather than taken from TASK_SPLITS, so a wrong split mapping fails.
SOURCE_SPLITS = {
    "vqa": {"train": "train", "val": "val", "test": "test"},
    "gqa": {"train": "train", "val": "valid", "test": "testdev"},
    "nlvr2": {"train": "train", "val": "valid", "test": "test"},
    "caption": {"train": "train", "val": "val", "test": "test"},
}
LOADERS = {"vqa": load_vqa_split, "gqa": load_gqa_split, "nlvr2": load_nlvr2_split, "caption": load_caption_split}


def _source(root: Path, task: str, split: str) -> list:
    return LOADERS[task](root, SOURCE_SPLITS[task][split])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VLPETL_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "tasks", "export-jsonl", *args], capture_output=True, text=True, cwd=REPO, env=env)


def _check_same(task: str, source, exported, record: dict) -> None:
    """One exported example against the loader's: text, target and image bytes."""
    if task == "caption":
        assert exported.image_id == source.image_id and exported.references == source.references
        assert exported.image_path.read_bytes() == source.image_path.read_bytes()
        return
    if task == "vqa":
        assert exported.question_id == source.question_id and exported.question == source.question
        assert record["answers"] == list(source.answers) and len(source.answers) == 10
        counts = Counter(source.answers)
        assert exported.label == {a: c / 10 for a, c in counts.items()}
        sources = [source.image_path]
    elif task == "gqa":
        assert exported.question_id == source.question_id and exported.question == source.question
        assert exported.label == source.label and record["answer"] == next(iter(source.label))
        sources = list(source.image_paths)
    else:
        assert exported.question_id == source.identifier and exported.question == source.statement
        assert exported.label == {source.target: 1.0} and exported.choices == ("true", "false")
        sources = list(source.image_paths)
    assert [p.read_bytes() for p in exported.image_paths] == [p.read_bytes() for p in sources]


@pytest.mark.parametrize("task", ["vqa", "gqa", "nlvr2", "caption"])
def test_export_reads_back_like_the_source(tiny_benchmark: Path, tmp_path: Path, task: str) -> None:
    out = tmp_path / "out"
    written = export_jsonl(tiny_benchmark, task, out, max_examples=3)
    assert written == {**{s: out / f"{s}.jsonl" for s in SPLITS}, "images": out / "images"}
    used, ids = set(), []
    for split in SPLITS:
        source = _source(tiny_benchmark, task, split)[:3]
        data = load_custom_jsonl(written[split])
        assert data.kind == ("caption" if task == "caption" else "qa") and len(data.examples) == len(source) == 3
        for src, exp, record in zip(source, data.examples, _lines(written[split])):
            _check_same(task, src, exp, record)
        ids += [json.loads(line)["id"] for line in written[split].read_text().splitlines()]
        used |= {p.name for e in data.examples for p in getattr(e, "image_paths", None) or (e.image_path,)}
    assert len(ids) == len(set(ids))  # unique across the splits, not only within a file
    assert {p.name for p in written["images"].iterdir()} == used  # exactly the images used
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left beside it


def test_without_a_cap_every_answered_example_is_exported(tiny_benchmark: Path, tmp_path: Path) -> None:
    written = export_jsonl(tiny_benchmark, "gqa", tmp_path / "out")
    for split in SPLITS:
        assert len(load_custom_jsonl(written[split]).examples) == len(_source(tiny_benchmark, "gqa", split))


def test_export_is_deterministic_and_accepts_an_empty_folder(tiny_benchmark: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    export_jsonl(tiny_benchmark, "nlvr2", tmp_path / "a", max_examples=2)
    export_jsonl(tiny_benchmark, "nlvr2", tmp_path / "b", max_examples=2)
    first = _files(tmp_path / "a")
    assert first == _files(tmp_path / "b") and "images" in {Path(name).parts[0] for name in first}
    text = (tmp_path / "a" / "train.jsonl").read_bytes()
    assert text.endswith(b"\n") and text.count(b"\n") == 2
    assert list(json.loads(text.splitlines()[0])) == ["id", "images", "text", "choices", "answer"]


def test_vqa_without_annotation_file_uses_the_label(tiny_benchmark: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "vqa").mkdir(parents=True)
    for split in SPLITS:
        shutil.copy(tiny_benchmark / "vqa" / f"karpathy_{split}.json", root / "vqa")
    (root / "images").symlink_to(tiny_benchmark / "images")
    written = export_jsonl(root, "vqa", tmp_path / "out", max_examples=2)
    for source, record in zip(load_vqa_split(root, "val"), _lines(written["val"])):
        best_first = sorted((a for a, s in source.label.items() if s > 0), key=lambda a: (-source.label[a], a))
        assert source.answers == () and record["answers"] == best_first


def test_an_id_in_two_splits_is_refused(tiny_benchmark: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_benchmark / "gqa", root / "gqa")
    (root / "images").symlink_to(tiny_benchmark / "images")
    train = json.loads((root / "gqa" / "train.json").read_text())
    valid = json.loads((root / "gqa" / "valid.json").read_text())
    valid[0]["question_id"] = train[0]["question_id"]
    (root / "gqa" / "valid.json").write_text(json.dumps(valid))
    with pytest.raises(DatasetError, match=f"{train[0]['question_id']!r} is in both train and val"):
        export_jsonl(root, "gqa", tmp_path / "out", max_examples=1)
    assert not (tmp_path / "out").exists()


def test_two_images_of_one_file_name_are_refused(tiny_benchmark: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_benchmark / "coco", root / "coco")
    shutil.copytree(tiny_benchmark / "images", root / "images")
    data = json.loads((root / "coco" / "dataset_coco.json").read_text())
    train = [r for r in data["images"] if r["split"] == "train"]
    val = next(r for r in data["images"] if r["split"] == "val")
    val["filepath"], val["filename"] = "other", train[0]["filename"]  # same name, another folder
    (root / "images" / "other").mkdir()
    shutil.copy(root / "images" / train[0]["filename"], root / "images" / "other")
    (root / "coco" / "dataset_coco.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="share the file name"):
        export_jsonl(root, "caption", tmp_path / "out", max_examples=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_cli_exports_and_prints_the_paths(tiny_benchmark: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("--task", "caption", "--benchmark", str(tiny_benchmark), "--out", str(out), "--max-examples", "2")
    result = _cli(*args, data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    expected = [str(out / f"{s}.jsonl") for s in SPLITS] + [str(out / "images")]
    assert result.stdout.splitlines() == expected
    assert all(len(load_custom_jsonl(out / f"{s}.jsonl").examples) == 2 for s in SPLITS)
    assert not (tmp_path / "data").exists()  # --benchmark given: nothing generated


def test_cli_generates_the_default_benchmark_where_the_search_keeps_it(tmp_path: Path) -> None:
    result = _cli("--task", "vqa", "--out", str(tmp_path / "out"), "--max-examples", "1", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "benchmark" / "mini-vl-v3-seed0" / "vqa" / "karpathy_train.json").is_file()
    assert all(len(load_custom_jsonl(tmp_path / "out" / f"{s}.jsonl").examples) == 1 for s in SPLITS)


def test_default_benchmark_dir_matches_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.environment import benchmark_dir  # imports torch; only this test pays for it

    monkeypatch.setenv("VLPETL_DATA_DIR", str(tmp_path))
    assert default_benchmark_dir(3) == benchmark_dir(tmp_path, 3)


def _bad_out(tmp_path: Path, kind: str) -> Path:
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
    elif kind == "full":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    return out


@pytest.mark.parametrize(
    "args, out_kind, words",
    [
        (["--task", "vqa2"], "new", ["'vqa2'", "vqa, gqa, nlvr2, caption"]),
        (["--task", "vqa", "--max-examples", "0"], "new", ["max examples 0", "positive", "at least 1"]),
        (["--task", "vqa", "--max-examples", "-2"], "new", ["max examples -2", "positive"]),
        (["--task", "gqa"], "file", ["is a file", "new or empty folder"]),
        (["--task", "gqa"], "full", ["is not empty", "new or empty folder"]),
        (["--task", "gqa", "--benchmark", "{empty}"], "new", ["has no gqa data", "gqa/train.json", "--benchmark"]),
        (["--task", "gqa", "--benchmark", "{empty}", "--seed", "1"], "new", ["--seed 1", "--benchmark"]),
    ],
    ids=["unknown-task", "zero-max", "negative-max", "out-is-file", "out-not-empty", "no-task-files", "seed-and-root"],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str], out_kind: str, words: list[str]) -> None:
    (tmp_path / "empty").mkdir()
    out = _bad_out(tmp_path, out_kind)
    before = _files(tmp_path)
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    # Without --benchmark the command would generate one in the data dir: bad input must stop it first.
    result = _cli(*args, "--out", str(out), data_dir=tmp_path / "data")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tasks: error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert _files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["empty"] + (["out"] if out_kind != "new" else []))


def test_abbreviated_flags_are_refused(tiny_benchmark: Path, tmp_path: Path) -> None:
    result = _cli("--task", "vqa", "--bench", str(tiny_benchmark), "--out", str(tmp_path / "o"), data_dir=tmp_path)
    assert result.returncode == 2 and "unrecognized arguments: --bench" in result.stderr
    assert not (tmp_path / "o").exists()


def test_api_rejects_bad_arguments(tiny_benchmark: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="task 'tvqa' cannot be exported"):
        export_jsonl(tiny_benchmark, "tvqa", tmp_path / "out")
    with pytest.raises(ValueError, match="not a positive count"):
        export_jsonl(tiny_benchmark, "vqa", tmp_path / "out", max_examples=True)
    assert list(tmp_path.iterdir()) == []
