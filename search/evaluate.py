"""Score a predictions file with the official metric of its task.

    python -m search.evaluate vqa --annotations v2_mscoco_val_annotations.json --predictions results.json --json
    python -m search.evaluate gqa --annotations gqa/testdev.json --predictions results.json
    python -m search.evaluate nlvr2 --annotations nlvr/test.json --predictions results.json
    python -m search.evaluate tvqa --annotations tvqa/test.jsonl --predictions results.json   # also how2qa
    python -m search.evaluate caption --references captions_test.json --predictions results.json
    python -m search.evaluate tvc --references tvc/test.jsonl --predictions results.json      # also yc2c

Ground truth is in the official layouts (tasks/README.md). Predictions are JSON
lists in the official results formats:

* vqa: ``[{question_id, answer}]``;
* gqa: ``[{question_id, answer}]`` or the challenge's ``[{questionId, prediction}]``;
* nlvr2: ``[{identifier, prediction}]`` with "true"/"false" (any case) or 1/0;
* tvqa / how2qa: ``[{qid, answer}]`` with ``"a3"`` or ``3`` (or ``answer_idx``);
* caption: COCO results ``[{image_id, caption}]`` against COCO-format references
  ``{"images": [{id}], "annotations": [{image_id, caption}]}``;
* tvc / yc2c: VALUE results ``[{clip_id, descs: [{desc}]}]`` or ``[{clip_id, caption}]``.

Prints the task's metrics, with ``score`` the number the paper reports (accuracy
in percent, or CIDEr x 100) and ``n`` the number of examples scored; ``--json``
prints one JSON object. Bad input prints one line naming the file and the
problem and exits with status 2. Imports no torch, so it starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search.cli_common import fail
from tasks._records import read_json, read_jsonl
from tasks.errors import DatasetError
from tasks.metrics.aggregate import reported_score
from tasks.metrics.captioning import CAPTION_METRICS, CaptionMetricError, caption_metrics
from tasks.metrics.exact_match import gqa_accuracy, nlvr2_accuracy, nlvr2_consistency, video_qa_accuracy
from tasks.metrics.vqa_accuracy import vqa_accuracy

PROGRAM = "python -m search.evaluate"
QA_TASKS = ("vqa", "gqa", "nlvr2", "tvqa", "how2qa")
CAPTION_TASKS = ("caption", "tvc", "yc2c")


def _records(path: Path, what: str) -> list[dict[str, Any]]:
    """A JSON list (or JSONL) of objects, or DatasetError naming the file."""
    data = read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
    if isinstance(data, dict) and what == "annotations" and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list) or not data:
        raise DatasetError(f"{path} must hold a non-empty JSON list of {what}, got {type(data).__name__}.")
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise DatasetError(f"{path} record #{i} must be a JSON object, got {type(record).__name__}.")
    return data


def _field(record: dict[str, Any], names: tuple[str, ...], path: Path, i: int) -> Any:
    for name in names:
        if name in record:
            return record[name]
    raise DatasetError(f"{path} record #{i} lacks {' or '.join(repr(n) for n in names)}; it has {sorted(record)}.")


def _mapping(path: Path, what: str, keys: tuple[str, ...], values: tuple[str, ...]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for i, record in enumerate(_records(path, what)):
        key = _field(record, keys, path, i)
        if key in out:
            raise DatasetError(f"{path} record #{i} repeats {keys[0]}={key!r}; give one entry per example.")
        out[key] = _field(record, values, path, i)
    return out


def _same_key_type(predictions: dict[Any, Any], truth: dict[Any, Any]) -> dict[Any, Any]:
    # Ids written as "12" by one tool and 12 by another still match.
    as_str = {str(k): k for k in truth}
    return {as_str.get(str(k), k): v for k, v in predictions.items()}


def _strings(predictions: dict[Any, Any], path: Path) -> dict[Any, str]:
    bad = [k for k, v in predictions.items() if not isinstance(v, str)]
    if bad:
        raise DatasetError(
            f"{path} gives a non-string answer for {len(bad)} question(s) (e.g. {bad[0]!r}: "
            f"{predictions[bad[0]]!r}); answers must be strings."
        )
    return predictions


def _score_qa(task: str, args: argparse.Namespace) -> dict[str, Any]:
    preds_path = args.predictions
    if task == "vqa":
        truth = _mapping(args.annotations, "annotations", ("question_id",), ("answers",))
        truth = {q: [a["answer"] if isinstance(a, dict) else a for a in answers] for q, answers in truth.items()}
        preds = _strings(_mapping(preds_path, "predictions", ("question_id",), ("answer",)), preds_path)
        return {"accuracy": vqa_accuracy(_same_key_type(preds, truth), truth), "n": len(truth)}
    if task == "gqa":
        truth = _mapping(args.annotations, "annotations", ("question_id",), ("label",))
        preds = _mapping(preds_path, "predictions", ("question_id", "questionId"), ("answer", "prediction"))
        preds = _strings(preds, preds_path)
        return {"accuracy": gqa_accuracy(_same_key_type(preds, truth), truth), "n": len(truth)}
    if task == "nlvr2":
        labels = _mapping(args.annotations, "annotations", ("identifier",), ("label",))
        truth = {k: v == 1 for k, v in labels.items()}
        preds = _same_key_type(_mapping(preds_path, "predictions", ("identifier",), ("prediction", "answer")), truth)
        return {
            "accuracy": nlvr2_accuracy(preds, truth),
            "consistency": nlvr2_consistency(preds, truth),
            "n": len(truth),
        }
    truth = _mapping(args.annotations, "annotations", ("qid",), ("answer_idx",))
    preds = _mapping(preds_path, "predictions", ("qid",), ("answer", "answer_idx"))
    return {"accuracy": video_qa_accuracy(_same_key_type(preds, truth), truth), "n": len(truth)}


def _caption_references(task: str, path: Path) -> dict[Any, list[str]]:
    if task != "caption":
        descs = _mapping(path, "references", ("clip_id",), ("descs",))
        return {k: [d.get("desc") if isinstance(d, dict) else d for d in v] for k, v in descs.items()}
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DatasetError(f"{path} must be COCO-format references: an object with 'images' and 'annotations' lists.")
    image_ids = [img.get("id") for img in data.get("images", []) if isinstance(img, dict)]
    refs: dict[Any, list[str]] = {i: [] for i in image_ids}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise DatasetError(f"{path} annotation #{i} must be an object with 'image_id' and 'caption'.")
        refs.setdefault(ann["image_id"], []).append(ann["caption"])
    if not refs:
        raise DatasetError(f"{path} holds no reference captions; an empty split cannot be evaluated.")
    return refs


def _caption_predictions(path: Path) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for i, record in enumerate(_records(path, "predictions")):
        key = _field(record, ("image_id", "clip_id"), path, i)
        if key in out:
            raise DatasetError(f"{path} record #{i} repeats id {key!r}; give one caption per image or clip.")
        if "descs" in record and isinstance(record["descs"], list) and record["descs"]:
            first = record["descs"][0]
            out[key] = first.get("desc") if isinstance(first, dict) else first
        else:
            out[key] = _field(record, ("caption",), path, i)
    return out


def _score_caption(task: str, args: argparse.Namespace) -> dict[str, Any]:
    refs = _caption_references(task, args.references)
    preds = _same_key_type(_caption_predictions(args.predictions), refs)
    metrics = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else CAPTION_METRICS
    out: dict[str, Any] = dict(caption_metrics(refs, preds, metrics))
    out["n"] = len(refs)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Score predictions with a task's official metric.", allow_abbrev=False)
    commands = parser.add_subparsers(dest="task", required=True)
    for task in QA_TASKS:
        sub = commands.add_parser(task, help=f"{task} accuracy", allow_abbrev=False)
        sub.add_argument("--annotations", type=Path, required=True, help="ground truth in the official layout")
        sub.add_argument("--predictions", type=Path, required=True, help="results file (JSON list)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
    for task in CAPTION_TASKS:
        sub = commands.add_parser(task, help=f"{task} BLEU/METEOR/ROUGE-L/CIDEr", allow_abbrev=False)
        sub.add_argument("--references", type=Path, required=True, help="reference captions")
        sub.add_argument("--predictions", type=Path, required=True, help="results file (JSON list)")
        sub.add_argument("--metrics", default="", help=f"comma-separated subset of {','.join(CAPTION_METRICS)}")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv``, score, print; exit 2 with one line on bad input."""
    args = _parser().parse_args(argv)
    score: Callable[[str, argparse.Namespace], dict[str, Any]] = (
        _score_qa if args.task in QA_TASKS else _score_caption
    )
    try:
        result = score(args.task, args)
        name = "caption" if args.task == "caption" else args.task
        if "accuracy" in result or "CIDEr" in result:
            result["score"] = reported_score(name, result)
    except (DatasetError, CaptionMetricError) as err:
        fail(PROGRAM, str(err))
    except ValueError as err:  # ids that do not match, bad metric names
        fail(PROGRAM, f"{args.predictions}: {err}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key in sorted(result):
            print(f"{key}: {result[key]}")


if __name__ == "__main__":
    main(sys.argv[1:])
