"""Score a predictions file against ground truth with the official metric of its task.

Ground truth is in the official layouts (tasks/README.md); predictions are JSON lists in the
official results formats (`python -m search.evaluate --help` lists them per task). Imports no
torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks._records import read_json, read_jsonl
from tasks.errors import DatasetError
from tasks.metrics.aggregate import reported_score
from tasks.metrics.captioning import CAPTION_METRICS, caption_metrics
from tasks.metrics.exact_match import gqa_accuracy, nlvr2_accuracy, nlvr2_consistency, video_qa_accuracy
from tasks.metrics.vqa_accuracy import vqa_accuracy

__all__ = ["CAPTION_TASKS", "QA_TASKS", "score_predictions"]

QA_TASKS = ("vqa", "gqa", "nlvr2", "tvqa", "how2qa")
CAPTION_TASKS = ("caption", "tvc", "yc2c")


def score_predictions(
    task: str,
    predictions: Path,
    *,
    annotations: Path | None = None,
    references: Path | None = None,
    metrics: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The task's metrics over a predictions file, with ``score`` the number the paper reports
    (accuracy in percent, or CIDEr x 100) and ``n`` the number of examples scored.

    Args:
        task: one of QA_TASKS (scored against ``annotations``) or CAPTION_TASKS (against
            ``references``).
        predictions: the results file.
        metrics: caption metrics to compute (default all of CAPTION_METRICS).

    Raises:
        DatasetError: a file that cannot be read or does not match its layout (names the file).
        CaptionMetricError: a caption metric that cannot be computed.
        ValueError: ids that do not match the ground truth, unknown metric names.
    """
    if task in QA_TASKS:
        if annotations is None:
            raise ValueError(f"task {task!r} is scored against annotations; give the annotations file")
        result = _score_qa(task, annotations, predictions)
    elif task in CAPTION_TASKS:
        if references is None:
            raise ValueError(f"task {task!r} is scored against reference captions; give the references file")
        result = _score_caption(task, references, predictions, metrics or CAPTION_METRICS)
    else:
        raise ValueError(f"task {task!r} is unknown; known tasks: {', '.join(QA_TASKS + CAPTION_TASKS)}")
    if "accuracy" in result or "CIDEr" in result:
        result["score"] = reported_score(task, result)
    return result


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


def _score_qa(task: str, annotations: Path, preds_path: Path) -> dict[str, Any]:
    if task == "vqa":
        truth = _mapping(annotations, "annotations", ("question_id",), ("answers",))
        truth = {q: [a["answer"] if isinstance(a, dict) else a for a in answers] for q, answers in truth.items()}
        preds = _strings(_mapping(preds_path, "predictions", ("question_id",), ("answer",)), preds_path)
        return {"accuracy": vqa_accuracy(_same_key_type(preds, truth), truth), "n": len(truth)}
    if task == "gqa":
        truth = _mapping(annotations, "annotations", ("question_id",), ("label",))
        preds = _mapping(preds_path, "predictions", ("question_id", "questionId"), ("answer", "prediction"))
        preds = _strings(preds, preds_path)
        return {"accuracy": gqa_accuracy(_same_key_type(preds, truth), truth), "n": len(truth)}
    if task == "nlvr2":
        labels = _mapping(annotations, "annotations", ("identifier",), ("label",))
        truth = {k: v == 1 for k, v in labels.items()}
        preds = _same_key_type(_mapping(preds_path, "predictions", ("identifier",), ("prediction", "answer")), truth)
        return {
            "accuracy": nlvr2_accuracy(preds, truth),
            "consistency": nlvr2_consistency(preds, truth),
            "n": len(truth),
        }
    truth = _mapping(annotations, "annotations", ("qid",), ("answer_idx",))
    preds = _mapping(preds_path, "predictions", ("qid",), ("answer", "answer_idx"))
    return {"accuracy": video_qa_accuracy(_same_key_type(preds, truth), truth), "n": len(truth)}


def _caption_references(task: str, path: Path) -> dict[Any, list[str]]:
    if task != "caption":
        descs = _mapping(path, "references", ("clip_id",), ("descs",))
        return {k: [_desc(d) for d in v] for k, v in descs.items()}
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


def _desc(entry: Any) -> Any:
    # A VALUE caption entry, {"desc": text, ...} or the text itself; JSON as read, unchecked.
    return entry.get("desc") if isinstance(entry, dict) else entry


def _caption_predictions(path: Path) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for i, record in enumerate(_records(path, "predictions")):
        key = _field(record, ("image_id", "clip_id"), path, i)
        if key in out:
            raise DatasetError(f"{path} record #{i} repeats id {key!r}; give one caption per image or clip.")
        if "descs" in record and isinstance(record["descs"], list) and record["descs"]:
            first = record["descs"][0]
            out[key] = _desc(first)
        else:
            out[key] = _field(record, ("caption",), path, i)
    return out


def _score_caption(task: str, references: Path, predictions: Path, metrics: tuple[str, ...]) -> dict[str, Any]:
    refs = _caption_references(task, references)
    preds = _same_key_type(_caption_predictions(predictions), refs)
    out: dict[str, Any] = dict(caption_metrics(refs, preds, metrics))
    out["n"] = len(refs)
    return out
