"""A search on the user's own data, through the commands a user runs: the authors' eight
layouts and the four kinds of JSONL task, each searched (2 trials), exported and trained; the
run's validation and test scores checked against the official metrics computed here, from
the run's prediction files and the dataset files the test wrote."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import optuna
import pytest
import yaml

from run_commands import cli
from storage import load_results, make_engine
from user_data_layouts import write_caption, write_gqa, write_jsonl_tasks, write_nlvr2, write_video, write_vqa

STEPS = "6"


@pytest.fixture(scope="module")
def user_data(tmp_path_factory, data_dir, env) -> Path:
    """Datasets as a user keeps them: annotations, images and videos in separate folders."""
    from models.visual_encoder import visual_feature_dim

    bench = env.data_base  # the generated benchmark the session's environment read
    root = tmp_path_factory.mktemp("user-data")
    images = root / "coco" / "images"
    write_vqa(bench, root / "vqa", images)
    write_gqa(bench, root / "gqa" / "questions", root / "gqa" / "images")
    write_nlvr2(bench, root / "nlvr2" / "annotations", root / "nlvr2" / "images")
    write_caption(bench, root / "coco" / "karpathy", images)
    write_video(bench, "tvqa", root / "value" / "tvqa", root / "value" / "videos", None)
    write_video(bench, "tvqa", root / "value" / "how2qa", root / "value" / "videos-how2qa", None, max_choices=4)
    write_video(bench, "tvc", root / "value" / "tvc", root / "value" / "videos", None)
    dim = visual_feature_dim(env.location)
    write_video(bench, "tvc", root / "value" / "yc2c", None, root / "value" / "yc2c_features", feature_dim=dim)
    (root / "images.yaml").write_text(
        yaml.safe_dump(
            {
                "tasks": {
                    "my_vqa": {"format": "vqa", "root": "vqa", "images": "coco/images"},
                    "my_gqa": {"format": "gqa", "root": "gqa/questions", "images": "gqa/images"},
                    "my_nlvr": {"format": "nlvr2", "root": "nlvr2/annotations", "images": "nlvr2/images"},
                    "coco_captions": {"format": "caption", "root": "coco/karpathy", "images": "coco/images"},
                }
            }
        )
    )
    (root / "videos.yaml").write_text(
        yaml.safe_dump(
            {
                "tasks": {
                    "tvqa": {"format": "tvqa", "root": "value/tvqa", "videos": "value/videos"},
                    "how2qa": {"format": "how2qa", "root": "value/how2qa", "videos": "value/videos-how2qa"},
                    "tvc": {"format": "tvc", "root": "value/tvc", "videos": "value/videos"},
                    "yc2c": {"format": "yc2c", "root": "value/yc2c", "features": "value/yc2c_features"},
                }
            }
        )
    )
    folders = write_jsonl_tasks(bench, root / "own")
    (root / "jsonl.yaml").write_text(
        yaml.safe_dump(
            {
                "tasks": {
                    name: {"format": "jsonl", **{split: f"own/{folder}/{split}.jsonl" for split in ("train", "val", "test")}}
                    for name, folder in folders.items()
                }
            }
        )
    )
    return root


KINDS = ("images", "videos", "jsonl")


@pytest.fixture(scope="module")
def runs(user_data, data_dir, tmp_path_factory) -> dict[str, dict]:
    """Per kind: launch (2 trials), export the best within 5%, train it; what each printed and wrote."""
    out = {}
    for kind in KINDS:
        folder = tmp_path_factory.mktemp(f"run-{kind}")
        url = f"sqlite:///{folder / 'studies.db'}"
        launch = cli(
            "search.launch",
            "--workers",
            "1",
            "--confirm-seeds",
            "1",
            "--budget",
            "5%",
            "--trials",
            "2",
            "--steps",
            STEPS,
            "--rungs",
            "0",
            "--data",
            str(user_data / f"{kind}.yaml"),
            "--study",
            kind,
            "--storage",
            url,
            "--data-dir",
            str(data_dir),
        )
        recipe = folder / "best.yaml"
        cli("search.export", "--study", kind, "--storage", url, "--budget", "5%", "--out", str(recipe))
        run = folder / "run"
        train = cli("search.train", "--recipe", str(recipe), "--data-dir", str(data_dir), "--out", str(run), "--steps", STEPS)
        out[kind] = {"url": url, "launch": launch, "recipe": recipe, "run": run, "train": train}
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_search_scores_the_users_tasks_on_validation(runs, kind, user_data):
    data = yaml.safe_load((user_data / f"{kind}.yaml").read_text())
    names = list(data["tasks"])
    results = load_results(make_engine(runs[kind]["url"]), kind)
    complete = results[results["status"] == "complete"]
    assert len(complete) == 2
    for _, row in complete.iterrows():
        assert sorted(row["task_scores"]) == sorted(names)  # the user's task names
        assert row["score"] == pytest.approx(sum(row["task_scores"].values()) / len(names))
        inputs = row["environment"]["inputs"]
        assert inputs["data"]["tasks"].keys() == data["tasks"].keys()
        assert inputs["data_files"]["files"] > len(names) and len(inputs["data_files"]["sha256"]) == 64
    assert "Pareto front" in runs[kind]["launch"].stdout


@pytest.mark.parametrize("kind", KINDS)
def test_export_carries_the_data_and_train_reports_val_and_test(runs, kind, user_data):
    recipe = yaml.safe_load(runs[kind]["recipe"].read_text())
    assert recipe["data"]["base"] == str(user_data)
    metrics = json.loads((runs[kind]["run"] / "metrics.json").read_text())
    names = list(yaml.safe_load((user_data / f"{kind}.yaml").read_text())["tasks"])
    assert sorted(metrics["val"]) == sorted(names) and sorted(metrics["test"]) == sorted(names)
    for split in ("val", "test"):
        for name in names:
            expected = official_score(kind, name, split, runs[kind]["run"], user_data)
            assert metrics[split][name] == pytest.approx(expected, abs=1e-6), (split, name)
    assert "test:" in runs[kind]["train"].stdout


def test_relaunch_resumes_the_same_data_and_a_changed_file_is_refused(runs, user_data, data_dir, tmp_path):
    url = runs["jsonl"]["url"]
    before = len(optuna.load_study(study_name="jsonl", storage=url).trials)
    # The same data in another folder (another machine's copy): --data-root maps it, and the
    # worker joins (the goal is met, so it trains nothing).
    copy = tmp_path / "copy"
    shutil.copytree(user_data / "own", copy / "own")
    joined = cli("search.worker", "--study", "jsonl", "--storage", url, "--data-dir", str(data_dir), "--data-root", str(copy))
    assert "trained 0 trials" in joined.stdout
    # One answer changed in a validation file: the worker refuses before writing anything.
    val = copy / "own" / "shapes_qa" / "val.jsonl"
    lines = val.read_text().splitlines()
    record = json.loads(lines[0])
    record["answers"] = ["something else"] * len(record["answers"])
    val.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    fresh = tmp_path / "fresh-data-dir"
    refused = cli("search.worker", "--study", "jsonl", "--storage", url, "--data-dir", str(fresh), "--data-root", str(copy), ok=False)
    assert refused.returncode == 2
    assert "own/shapes_qa/val.jsonl differs from the study's copy" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not fresh.exists()  # no benchmark, backbone or feature cache written
    assert len(optuna.load_study(study_name="jsonl", storage=url).trials) == before
    # The launcher refuses the same way on a relaunch from the changed copy.
    again = cli(
        "search.launch",
        "--workers",
        "1",
        "--confirm-seeds",
        "1",
        "--budget",
        "5%",
        "--trials",
        "2",
        "--study",
        "jsonl",
        "--storage",
        url,
        "--data-dir",
        str(data_dir),
        "--data-root",
        str(copy),
        ok=False,
    )
    assert again.returncode == 2 and "val.jsonl differs" in again.stderr


def test_short_form_finds_val_and_test_beside_train(user_data, data_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'short.db'}"
    launch = cli(
        "search.launch",
        "--workers",
        "1",
        "--confirm-seeds",
        "1",
        "--budget",
        "5%",
        "--trials",
        "1",
        "--steps",
        "2",
        "--rungs",
        "0",
        "--no-warm-start",
        "--data",
        str(user_data / "own" / "captions" / "train.jsonl"),
        "--study",
        "short",
        "--storage",
        url,
        "--data-dir",
        str(data_dir),
    )
    results = load_results(make_engine(url), "short")
    assert list(results.iloc[0]["task_scores"]) == ["captions"]  # named after its folder
    assert "captions" in launch.stderr


# --- the official metrics, computed here from the files the test wrote ---------------------


def official_score(kind: str, name: str, split: str, run: Path, user_data: Path) -> float:
    rows = json.loads((run / "predictions" / split / f"{name}.json").read_text())
    data = yaml.safe_load((user_data / f"{kind}.yaml").read_text())["tasks"][name]
    fmt = data["format"]
    if fmt == "vqa":
        annotations = json.loads((user_data / data["root"] / f"v2_mscoco_{split}_annotations.json").read_text())["annotations"]
        answers = {a["question_id"]: [x["answer"] for x in a["answers"]] for a in annotations}
        return _mean(_vqa(row["answer"], answers[row["question_id"]]) for row in rows)
    if fmt == "gqa":
        labels = {
            r["question_id"]: r["label"]
            for r in json.loads((user_data / data["root"] / f"{ {'val': 'valid', 'test': 'testdev'}[split] }.json").read_text())
        }
        return _mean(labels[row["questionId"]].get(_normalise(row["prediction"]), 0.0) for row in rows)
    if fmt == "nlvr2":
        labels = {
            r["identifier"]: r["label"]
            for r in json.loads((user_data / data["root"] / f"{ {'val': 'valid', 'test': 'test'}[split] }.json").read_text())
        }
        return _mean(float(row["prediction"] == ("true" if labels[row["identifier"]] else "false")) for row in rows)
    if fmt == "caption":
        images = json.loads((user_data / data["root"] / "dataset_coco.json").read_text())["images"]
        references = {i["cocoid"]: [s["raw"] for s in i["sentences"]] for i in images if i["split"] == split}
        return _cider(references, {row["image_id"]: row["caption"] for row in rows})
    if fmt in ("tvqa", "how2qa"):
        truth = {r["qid"]: r["answer_idx"] for r in _jsonl(user_data / data["root"] / f"{split}.jsonl")}
        return _mean(float(row["answer_idx"] == truth[row["qid"]]) for row in rows)
    if fmt in ("tvc", "yc2c"):
        references = {r["clip_id"]: [d["desc"] for d in r["descs"]] for r in _jsonl(user_data / data["root"] / f"{split}.jsonl")}
        return _cider(references, {row["clip_id"]: row["descs"][0]["desc"] for row in rows})
    records = _jsonl(user_data / data[split])
    if "captions" in records[0]:
        return _cider({r["id"]: r["captions"] for r in records}, {row["id"]: row["caption"] for row in rows})
    accepted = {r["id"]: {_normalise(a) for a in r.get("answers", [r.get("answer")])} for r in records}
    return _mean(float(_normalise(row["answer"]) in accepted[row["id"]]) for row in rows)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean(values) -> float:
    values = list(values)
    return 100.0 * sum(values) / len(values)


def _normalise(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(w for w in words if w not in {"a", "an", "the"})


def _vqa(prediction: str, answers: list[str]) -> float:
    """VQA accuracy: min(1, humans who gave the answer / 3), averaged over the 10 leave-one-out sets."""
    prediction = _normalise(prediction)
    given = [_normalise(a) for a in answers]
    scores = [min(1.0, sum(g == prediction for j, g in enumerate(given) if j != i) / 3) for i in range(len(given))]
    return sum(scores) / len(scores)


def _cider(references: dict, predictions: dict) -> float:
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in references[k]] for k in predictions})
    res = tokenizer.tokenize({k: [{"caption": predictions[k]}] for k in predictions})
    score, _ = Cider().compute_score(gts, res)
    return 100.0 * score
