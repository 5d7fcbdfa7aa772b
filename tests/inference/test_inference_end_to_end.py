"""From a search to a predictions file: search, export, train, predict, evaluate.

The predictions `search.predict` writes for a run's test split score, with `search.evaluate`
against the dataset's own files, exactly the test scores of the run's `metrics.json`; and the
Python API (`inference.load_run(...).predict`) gives the answers the command wrote.
"""

from __future__ import annotations

import json

from PIL import Image
from inference import load_run
from training.run_folder import MANIFEST, read_run_folder
from training.environment import benchmark_dir

from run_commands import cli


def test_the_run_folder_holds_everything_loading_needs(run_dir):
    folder = read_run_folder(run_dir)  # every file present and matching the manifest's digests
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert {"recipe.json", "trainable.safetensors", "metrics.json", "curve.json"} <= set(manifest["files"])
    assert any(name.startswith("tokenizer/") for name in manifest["files"])
    assert any(name.startswith("predictions/test/") for name in manifest["files"])
    assert folder.backbone["name"] == folder.recipe["config"]["backbone"]
    assert all(len(folder.backbone[key]) == 64 for key in ("clip_weights_sha256", "language_model_weights_sha256"))
    assert manifest["environment"]["packages"]["torch"]
    assert folder.prompts["nlvr2"].images == 2 and folder.prompts["nlvr2"].choices == ("true", "false")
    assert folder.recipe["data"]["tasks"], "the run records the data description it trained on"
    curve = json.loads((run_dir / "curve.json").read_text())
    assert curve["loss"], "the training curve has loss points"


def test_predictions_scored_by_search_evaluate_reproduce_the_runs_test_scores(run_dir, predictions, data_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    root = benchmark_dir(data_dir, 0)
    truth = {"vqa": root / "vqa" / "v2_mscoco_test_annotations.json", "nlvr2": root / "nlvr" / "test.json"}
    for task, truth_file in truth.items():
        printed = cli(
            "search.evaluate", task, "--annotations", str(truth_file), "--predictions", str(predictions / f"{task}.json"), "--json"
        ).stdout
        assert json.loads(printed)["score"] == metrics["test"][task], task
        # The command's predictions are the ones the run wrote when it scored the split.
        assert json.loads((predictions / f"{task}.json").read_text()) == json.loads(
            (run_dir / "predictions" / "test" / f"{task}.json").read_text()
        )


def test_load_run_predict_answers_as_search_predict(run_dir, predictions, data_dir):
    run = load_run(run_dir, data_dir, device="cpu")
    root = benchmark_dir(data_dir, 0)
    questions = json.loads((root / "vqa" / "karpathy_test.json").read_text())[:24]
    answers = run.predict(
        images=[root / "images" / f"{q['img_id']}.png" for q in questions], texts=[q["sent"] for q in questions], task="vqa", batch_size=7
    )
    written = {row["question_id"]: row["answer"] for row in json.loads((predictions / "vqa.json").read_text())}
    assert answers == [written[q["question_id"]] for q in questions]
    with Image.open(root / "images" / f"{questions[0]['img_id']}.png") as picture:  # PIL images too
        assert run.predict(images=[picture.copy()], texts=[questions[0]["sent"]], task="vqa") == answers[:1]

    statements = json.loads((root / "nlvr" / "test.json").read_text())[:10]
    pairs = [(root / "images" / f"{s['img0']}.png", root / "images" / f"{s['img1']}.png") for s in statements]
    verdicts = run.predict(images=pairs, texts=[s["sent"] for s in statements], task="nlvr2")
    written = {row["identifier"]: row["prediction"] for row in json.loads((predictions / "nlvr2.json").read_text())}
    assert verdicts == [written[s["identifier"]] for s in statements]


def test_predict_on_new_inputs_writes_the_tasks_results_rows(run_dir, predictions, data_dir, tmp_path):
    root = benchmark_dir(data_dir, 0)
    questions = json.loads((root / "vqa" / "karpathy_test.json").read_text())[:5]
    inputs = tmp_path / "questions.jsonl"
    inputs.write_text(
        "".join(
            json.dumps({"id": q["question_id"], "image": str(root / "images" / f"{q['img_id']}.png"), "text": q["sent"]}) + "\n"
            for q in questions
        )
    )
    out = tmp_path / "answers.json"
    cli("search.predict", "--run", str(run_dir), "--task", "vqa", "--input", str(inputs), "--out", str(out), "--data-dir", str(data_dir))
    written = {row["question_id"]: row["answer"] for row in json.loads((predictions / "vqa.json").read_text())}
    assert json.loads(out.read_text()) == [{"question_id": q["question_id"], "answer": written[q["question_id"]]} for q in questions]
