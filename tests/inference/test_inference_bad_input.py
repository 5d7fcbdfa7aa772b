"""A run folder or an input that cannot be used: one line naming the file and the fix, exit 2,
nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from run_commands import in_process

import search.predict

from inference import RunFolderError, load_run
from training.environment import benchmark_dir
from models.features import file_digest
from training.run_folder import MANIFEST


@pytest.fixture
def copy(run_dir, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    return target


def predict_fails(run: Path, out: Path, *args: str, data_dir: Path) -> str:
    result = in_process(search.predict.main, "--run", str(run), "--out", str(out), "--data-dir", str(data_dir), *args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("search.predict: error: "), result.stderr[-2000:]
    assert not out.exists(), "nothing is written on bad input"
    return result.stderr


def test_a_missing_file_is_named(copy, data_dir, tmp_path):
    (copy / "metrics.json").unlink()
    stderr = predict_fails(copy, tmp_path / "p.json", data_dir=data_dir)
    assert "metrics.json is missing from the run folder" in stderr


def test_a_folder_without_manifest_is_unfinished(copy, data_dir, tmp_path):
    (copy / MANIFEST).unlink()
    assert "the run is unfinished or this is not a run folder" in predict_fails(copy, tmp_path / "p.json", data_dir=data_dir)


def test_corrupt_weights_are_caught_by_their_digest(copy, data_dir, tmp_path):
    weights = copy / "trainable.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # a tensor byte: the header still parses
    weights.write_bytes(bytes(data))
    stderr = predict_fails(copy, tmp_path / "p.json", data_dir=data_dir)
    assert "trainable.safetensors has changed since the run wrote it" in stderr


def test_weights_that_do_not_fit_the_recipe_are_refused(copy, data_dir):
    recipe = json.loads((copy / "recipe.json").read_text())
    recipe["config"]["method"], recipe["config"]["method_params"] = "lora", {"rank": 4}
    recipe["config"]["freeze"] = {}
    (copy / "recipe.json").write_text(json.dumps(recipe))
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"]["recipe.json"] = file_digest(copy / "recipe.json")  # a consistent folder, wrong weights
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError, match="do not fit its recipe.json"):
        load_run(copy, data_dir, device="cpu")


def test_a_backbone_that_differs_from_the_runs_is_refused(run_dir, data_dir, tmp_path):
    other = tmp_path / "other-data"
    shutil.copytree(data_dir / "backbones", other / "backbones")
    name = json.loads((run_dir / MANIFEST).read_text())["backbone"]["name"]
    projection = other / "backbones" / name / "vl_projection.safetensors"
    data = bytearray(projection.read_bytes())
    data[-5] ^= 0xFF
    projection.write_bytes(bytes(data))
    stderr = predict_fails(run_dir, tmp_path / "p.json", data_dir=other)
    assert "vl projection" in stderr and "differs from the one the run" in stderr and "--data-dir" in stderr
    stderr = predict_fails(run_dir, tmp_path / "p.json", data_dir=tmp_path / "empty")
    assert "is missing" in stderr


def test_a_task_not_in_the_run_is_named_with_the_runs_tasks(run_dir, data_dir, tmp_path):
    stderr = predict_fails(run_dir, tmp_path / "p.json", "--task", "caption", data_dir=data_dir)
    assert "--task 'caption' is not a task of the run; its tasks: vqa, nlvr2" in stderr


def test_bad_input_lines_are_all_listed(run_dir, data_dir, tmp_path):
    image = next((benchmark_dir(data_dir, 0) / "images").glob("*.png"))
    lines = [
        {"id": 1, "image": str(image), "text": "what color is the circle?"},
        {"id": 1, "image": str(image), "text": "a repeated id"},
        {"id": 2, "image": "nope.png", "text": "a missing image"},
        ["not", "an", "object"],
        {"id": 3, "text": "no image"},
    ]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    stderr = predict_fails(run_dir, tmp_path / "p.json", "--task", "vqa", "--input", str(inputs), data_dir=data_dir)
    for number, problem in [(2, "repeats id 1"), (3, "nope.png"), (4, "is not a JSON object"), (5, "exactly one of 'image'")]:
        assert f"line {number}" in stderr and problem in stderr
    stderr = predict_fails(run_dir, tmp_path / "p.json", "--input", str(inputs), "--split", "test", data_dir=data_dir)
    assert "drop --split" in stderr


def test_the_python_api_names_what_is_wrong(run_dir, data_dir):
    run = load_run(run_dir, data_dir, device="cpu")
    image = next((benchmark_dir(data_dir, 0) / "images").glob("*.png"))
    with pytest.raises(ValueError, match="pass task= one of"):
        run.predict(images=[image], texts=["what?"])
    with pytest.raises(ValueError, match="sees 2 image"):
        run.predict(images=[image], texts=["two dogs."], task="nlvr2")
    with pytest.raises(ValueError, match="got 1 images but 2 texts"):
        run.predict(images=[image], texts=["a", "b"], task="vqa")
    with pytest.raises(ValueError, match="does not exist"):
        run.predict(images=["no-such.png"], texts=["a"], task="vqa")
