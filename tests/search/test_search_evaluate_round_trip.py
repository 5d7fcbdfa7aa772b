"""A run's predictions file, scored by `python -m search.evaluate` against the dataset's own
files, gives exactly the score the run computed (`ScoredSplit.score`, what metrics.json holds).

Every task format a run can have is read the way training reads it (`prepare_tasks` over a small
generated benchmark; JSONL tasks exported from it), predicted half right and half wrong, written
with the split's own `results(...)` as `search.predict` writes them, and scored by the command.
Nothing here builds a backbone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.benchmark import BenchmarkSizes, generate_benchmark
from tasks.data_spec import DataSpec, TaskData, generated_spec
from tasks.export_jsonl import export_jsonl
from training.task_readers import PreparedTask, ScoredSplit
from training.task_registry import prepare_tasks

SPLIT = "test"  # what search.predict writes unless told otherwise
VIDEO_PATHS = {"videos": "videos", "features": "video_features"}


def _sizes(held: int) -> dict[str, int]:
    return {"train": 6, "val": held, "test": held, "test_ood": 2}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sizes = BenchmarkSizes(images=_sizes(10), nlvr2_pairs=_sizes(12), videos=_sizes(5), frames_per_video=2)
    return generate_benchmark(tmp_path_factory.mktemp("round-trip") / "mini-vl", sizes=sizes)


@pytest.fixture(scope="module")
def jsonl_dir(bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """User tasks as tasks.export_jsonl writes them: int ids (vqa, caption), ids like "20000010"
    (gqa), and a copy of the NLVR2 export without ids (line numbers are the ids)."""
    out = tmp_path_factory.mktemp("jsonl")
    for task in ("vqa", "gqa", "nlvr2", "caption"):
        export_jsonl(bench, task, out / task)
    for split in ("train", "val", "test"):
        lines = (out / "nlvr2" / f"{split}.jsonl").read_text().splitlines()
        records = [{k: v for k, v in json.loads(line).items() if k != "id"} for line in lines]
        (out / "nlvr2" / f"no_ids_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def _jsonl_task(name: str, folder: Path, prefix: str = "") -> TaskData:
    return TaskData(name, "jsonl", {split: str(folder / f"{prefix}{split}.jsonl") for split in ("train", "val", "test")})


@pytest.fixture(scope="module")
def tasks(bench: Path, jsonl_dir: Path) -> dict[str, PreparedTask]:
    generated = generated_spec(("vqa", "gqa", "nlvr2", "caption", "tvqa", "tvc")).tasks
    # How2QA and YouCook2 captions read the VALUE layout as TVQA and TVC do: the generated files serve.
    value = (TaskData("how2qa", "how2qa", {"root": "tvqa", **VIDEO_PATHS}), TaskData("yc2c", "yc2c", {"root": "tvc", **VIDEO_PATHS}))
    own = (
        _jsonl_task("my_qa", jsonl_dir / "vqa"),
        _jsonl_task("my_gqa", jsonl_dir / "gqa"),
        _jsonl_task("my_pairs", jsonl_dir / "nlvr2", "no_ids_"),
        _jsonl_task("my_captions", jsonl_dir / "caption"),
    )
    return prepare_tasks(DataSpec(generated + value + own, None, "round trip"), bench)


def _wrong(task: PreparedTask, example: Any, i: int) -> str:
    """A deterministic wrong prediction of the kind a model makes."""
    if task.format in ("caption", "tvc", "yc2c") or (task.prompt is not None and task.prompt.kind == "caption"):
        other = task.splits[SPLIT].examples[(i + 1) % len(task.splits[SPLIT].examples)]
        return other.targets[-1]  # another image's caption: partly right words
    if len(example.targets) > 1 and i % 4 == 1:
        return example.targets[-1]  # a minority's answer: VQA gives it partial credit, a JSONL task full
    if example.choices:
        if i % 4 == 3:
            return "none of the offered answers"  # rank classification never gives it; a results row must still say -1
        return next(c for c in example.choices if c not in example.targets)
    return "a wrong answer"


def _right(example: Any, i: int) -> str:
    """The target, every other time as a person writes it ("Purple."): the official
    normalisations accept it, an exact match over choices does not."""
    target = example.targets[0]
    return target if i % 4 == 0 else target[:1].upper() + target[1:].rstrip(".") + "."


def _predictions(task: PreparedTask, keep: int | None = None) -> dict[Any, str]:
    """Even examples right (or nearly), odd ones wrong; deterministic."""
    examples = task.splits[SPLIT].examples[:keep]
    return {e.key: _right(e, i) if i % 2 == 0 else _wrong(task, e, i) for i, e in enumerate(examples)}


def _evaluate(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "search.evaluate", *args, "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _write_results(path: Path, split: ScoredSplit, predictions: dict[Any, str]) -> Path:
    # As search.predict writes them.
    path.write_text(json.dumps(split.results(predictions), indent=1, default=str) + "\n")
    return path


def _coco_format(bench: Path, out: Path) -> Path:
    """The official COCO layout of every image of the benchmark (as captions_val2014.json holds
    more images than the Karpathy test split)."""
    images = json.loads((bench / "coco" / "dataset_coco.json").read_text())["images"]
    annotations = [
        {"image_id": image["cocoid"], "id": sentence["sentid"], "caption": sentence["raw"]}
        for image in images
        for sentence in image["sentences"]
    ]
    out.write_text(json.dumps({"images": [{"id": image["cocoid"]} for image in images], "annotations": annotations}))
    return out


# task name -> (subcommand, option, ground truth relative to the benchmark or the JSONL export, extra options)
CASES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "vqa": ("vqa", "--annotations", "vqa/v2_mscoco_test_annotations.json", ()),
    "gqa": ("gqa", "--annotations", "gqa/testdev.json", ()),
    "nlvr2": ("nlvr2", "--annotations", "nlvr/test.json", ()),
    "tvqa": ("tvqa", "--annotations", "tvqa/test.jsonl", ()),
    "how2qa": ("how2qa", "--annotations", "tvqa/test.jsonl", ()),
    "caption": ("caption", "--references", "coco/dataset_coco.json", ("--split", "test")),
    "tvc": ("tvc", "--references", "tvc/test.jsonl", ("--metrics", "CIDEr")),
    "yc2c": ("yc2c", "--references", "tvc/test.jsonl", ("--metrics", "CIDEr")),
    "my_qa": ("jsonl", "--references", "vqa/test.jsonl", ()),
    "my_gqa": ("jsonl", "--references", "gqa/test.jsonl", ()),
    "my_pairs": ("jsonl", "--references", "nlvr2/no_ids_test.jsonl", ()),
    "my_captions": ("jsonl", "--references", "caption/test.jsonl", ("--metrics", "CIDEr")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_search_evaluate_reproduces_the_runs_score(name: str, tasks, bench: Path, jsonl_dir: Path, tmp_path: Path) -> None:
    task, (command, option, truth, extra) = tasks[name], CASES[name]
    split = task.splits[SPLIT]
    predictions = _predictions(task)
    expected = split.score(predictions)
    assert 0 < expected < 100 or command in ("caption", "tvc", "yc2c") or name == "my_captions", (name, expected)
    results = _write_results(tmp_path / "results.json", split, predictions)
    root = jsonl_dir if command == "jsonl" else bench
    out = _evaluate(command, option, str(root / truth), "--predictions", str(results), *extra)
    assert out["score"] == expected, (name, out)
    assert out["n"] == len(split.examples)


def test_caption_scores_alike_against_the_official_coco_file_and_for_some_images(tasks, bench: Path, tmp_path: Path) -> None:
    """COCOEvalCap scores the images of the results: the Karpathy test predictions score the same
    against a COCO file of every image, and a results file for some images scores those."""
    split = tasks["caption"].splits[SPLIT]
    coco = _coco_format(bench, tmp_path / "captions_all.json")
    karpathy = bench / "coco" / "dataset_coco.json"
    whole = _write_results(tmp_path / "results.json", split, _predictions(tasks["caption"]))
    out = _evaluate("caption", "--references", str(coco), "--predictions", str(whole), "--metrics", "CIDEr,BLEU")
    assert out["score"] == split.score(_predictions(tasks["caption"])) and out["n"] == len(split.examples)
    some = _predictions(tasks["caption"], keep=4)
    part = _write_results(tmp_path / "part.json", split, some)
    for references, extra in ((coco, ()), (karpathy, ())):  # the Karpathy file's default split is test
        out = _evaluate("caption", "--references", str(references), "--predictions", str(part), "--metrics", "CIDEr", *extra)
        assert out["score"] == split.score(some) and out["n"] == 4


def test_caption_predictions_of_another_split_name_it(tasks, bench: Path, tmp_path: Path) -> None:
    val = tasks["caption"].splits["val"]
    results = _write_results(tmp_path / "val.json", val, {e.key: e.targets[0] for e in val.examples})
    karpathy = str(bench / "coco" / "dataset_coco.json")
    wrong = subprocess.run(
        [sys.executable, "-m", "search.evaluate", "caption", "--references", karpathy, "--predictions", str(results)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert f"are not in split 'test' of {karpathy}" in wrong.stderr and "pass --split val" in wrong.stderr
    out = _evaluate("caption", "--references", karpathy, "--split", "val", "--predictions", str(results), "--metrics", "CIDEr")
    assert out["score"] == val.score({e.key: e.targets[0] for e in val.examples})


def test_jsonl_ids_match_written_as_numbers_or_strings(tasks, jsonl_dir: Path, tmp_path: Path) -> None:
    """GQA's ids are strings of digits ("20000010"); another tool may write them as numbers."""
    split = tasks["my_gqa"].splits[SPLIT]
    predictions = _predictions(tasks["my_gqa"])
    assert all(isinstance(key, str) and key.isdigit() for key in predictions)
    rows = [{**row, "id": int(row["id"])} for row in split.results(predictions)]
    (tmp_path / "results.json").write_text(json.dumps(rows))
    out = _evaluate("jsonl", "--references", str(jsonl_dir / "gqa" / "test.jsonl"), "--predictions", str(tmp_path / "results.json"))
    assert out["score"] == split.score(predictions) and out["kind"] == "qa"
