"""Score a predictions file against ground truth with the official metric of its task.

Ground truth is in the official layouts (tasks/README.md), or a user's JSONL file
(tasks.custom); predictions are JSON lists in the official results formats (search/evaluate.py
lists them per task). The ground truth is read by the loaders training reads it with
(tasks.coco_captions, tasks.custom), so a run's `metrics.json` and this module score the same
predictions alike. Imports no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks._records import read_json, read_jsonl
from tasks.coco_captions import FILE_SPLITS, karpathy_references, read_karpathy_images
from tasks.custom import accepted_answers, load_custom_jsonl
from tasks.errors import DatasetError
from tasks.examples import CaptionExample, QAExample
from tasks.metrics.aggregate import reported_score
from tasks.metrics.captioning import CAPTION_METRICS, caption_metrics
from tasks.metrics.exact_match import gqa_accuracy, nlvr2_accuracy, nlvr2_consistency, video_qa_accuracy
from tasks.metrics.vqa_accuracy import vqa_accuracy

__all__ = ["CAPTION_TASKS", "DEFAULT_KARPATHY_SPLIT", "JSONL_TASK", "QA_TASKS", "score_predictions"]

QA_TASKS = ("vqa", "gqa", "nlvr2", "tvqa", "how2qa")
CAPTION_TASKS = ("caption", "tvc", "yc2c")
JSONL_TASK = "jsonl"  # a user's own task (tasks.custom): QA or captioning, as its file says
# search.predict writes the test split unless told otherwise.
DEFAULT_KARPATHY_SPLIT = "test"


def score_predictions(
    task: str,
    predictions: Path,
    *,
    annotations: Path | None = None,
    references: Path | None = None,
    metrics: tuple[str, ...] | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """The task's metrics over a predictions file, with ``score`` the number the paper reports
    (accuracy in percent, or CIDEr x 100) and ``n`` the number of examples scored.

    Args:
        task: one of QA_TASKS (scored against ``annotations``), CAPTION_TASKS or JSONL_TASK
            (against ``references``).
        predictions: the results file.
        metrics: caption metrics to compute (default all of CAPTION_METRICS).
        split: for ``caption`` against a Karpathy ``dataset_coco.json``, the split of the file
            the predictions are for (one of FILE_SPLITS; default DEFAULT_KARPATHY_SPLIT).
            COCO-format references are one split already and take none.

    Raises:
        DatasetError: a file that cannot be read or does not match its layout (names the file).
        CaptionMetricError: a caption metric that cannot be computed.
        ValueError: ids that do not match the ground truth, unknown metric names.
    """
    if task in QA_TASKS:
        if annotations is None:
            raise ValueError(f"task {task!r} is scored against annotations; give the annotations file")
        result = _score_qa(task, annotations, predictions)
    elif task in CAPTION_TASKS or task == JSONL_TASK:
        if references is None:
            raise ValueError(f"task {task!r} is scored against references; give the references file")
        if split is not None and task != "caption":
            raise ValueError(f"a split is chosen only for caption against a Karpathy dataset_coco.json, not for task {task!r}")
        if task == JSONL_TASK:
            result = _score_jsonl(references, predictions, metrics)
        else:
            result = _score_caption(task, references, predictions, metrics or CAPTION_METRICS, split)
    else:
        raise ValueError(f"task {task!r} is unknown; known tasks: {', '.join(QA_TASKS + CAPTION_TASKS + (JSONL_TASK,))}")
    if "accuracy" in result or "CIDEr" in result:
        kind = result.get("kind")
        result["score"] = reported_score(f"custom_{kind}" if task == JSONL_TASK else task, result)
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


def _caption_references(task: str, path: Path, split: str | None) -> tuple[dict[Any, list[str]], str]:
    """image or clip id -> reference captions, and which layout the file is in."""
    if task != "caption":
        descs = _mapping(path, "references", ("clip_id",), ("descs",))
        return {k: [_desc(d) for d in v] for k, v in descs.items()}, "value"
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("images"), list) and not isinstance(data.get("annotations"), list):
        # The Karpathy dataset_coco.json training reads: the references exactly as training's.
        karpathy = karpathy_references(path, split or DEFAULT_KARPATHY_SPLIT)
        return {k: list(v) for k, v in karpathy.items()}, "karpathy"
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DatasetError(
            f"{path} must be COCO-format references (an object with 'images' and 'annotations' lists) or a "
            "Karpathy dataset_coco.json (an object with an 'images' list whose records hold 'sentences')."
        )
    if split is not None:
        raise DatasetError(
            f"{path} is in the COCO format, one split already; --split chooses a split of a Karpathy dataset_coco.json: drop it."
        )
    image_ids = [img.get("id") for img in data.get("images", []) if isinstance(img, dict)]
    refs: dict[Any, list[str]] = {i: [] for i in image_ids}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise DatasetError(f"{path} annotation #{i} must be an object with 'image_id' and 'caption'.")
        refs.setdefault(ann["image_id"], []).append(ann["caption"])
    if not refs:
        raise DatasetError(f"{path} holds no reference captions; an empty split cannot be evaluated.")
    return refs, "coco"


def _desc(entry: Any) -> Any:
    # A VALUE caption entry, {"desc": text, ...} or the text itself; JSON as read, unchecked.
    return entry.get("desc") if isinstance(entry, dict) else entry


def _caption_predictions(path: Path) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for i, record in enumerate(_records(path, "predictions")):
        key = _field(record, ("image_id", "clip_id", "id"), path, i)
        if key in out:
            raise DatasetError(f"{path} record #{i} repeats id {key!r}; give one caption per image or clip.")
        if "descs" in record and isinstance(record["descs"], list) and record["descs"]:
            first = record["descs"][0]
            out[key] = _desc(first)
        else:
            out[key] = _field(record, ("caption",), path, i)
    return out


def _score_caption(task: str, references: Path, predictions: Path, metrics: tuple[str, ...], split: str | None) -> dict[str, Any]:
    refs, layout = _caption_references(task, references, split)
    preds = _same_key_type(_caption_predictions(predictions), refs)
    if layout != "value":
        # pycocoevalcap's COCOEvalCap scores the images of the results (cocoRes.getImgIds()),
        # with CIDEr's idf from their references only: a results file for the Karpathy test
        # images scores the same against captions_val2014.json as against the test split.
        # A predicted image the references lack is refused, as COCO.loadRes refuses it.
        _check_known(preds, refs, references, layout, split)
        refs = {k: v for k, v in refs.items() if k in preds}
    out: dict[str, Any] = dict(caption_metrics(refs, preds, metrics))
    out["n"] = len(refs)
    return out


def _check_known(preds: dict[Any, str], refs: dict[Any, list[str]], references: Path, layout: str, split: str | None) -> None:
    unknown = [k for k in preds if k not in refs]
    if not unknown:
        return
    example = ", ".join(map(str, unknown[:5]))
    if layout == "coco":
        raise ValueError(f"{len(unknown)} predicted image ids are not images of {references} (e.g. {example}); predict its images only.")
    where = {image.image_id: image.split for image in read_karpathy_images(references)}
    found = sorted({where[k] for k in unknown if k in where}, key=FILE_SPLITS.index)
    hint = f"; they are in split {', '.join(found)}: pass --split {found[0]}" if found else "; predict the split's images only"
    raise ValueError(
        f"{len(unknown)} predicted image ids are not in split {split or DEFAULT_KARPATHY_SPLIT!r} of {references} (e.g. {example}){hint}."
    )


def _score_jsonl(references: Path, predictions: Path, metrics: tuple[str, ...] | None) -> dict[str, Any]:
    """A user's JSONL task, read by training's own reader (ids: ``id``, else the line number)."""
    dataset = load_custom_jsonl(references, images_required=False)
    if dataset.kind == "caption":
        refs = {e.image_id: list(e.references) for e in dataset.examples if isinstance(e, CaptionExample)}
        preds = _same_key_type(_jsonl_rows(predictions, references, "caption"), refs)
        out: dict[str, Any] = dict(caption_metrics(refs, _strings(preds, predictions), metrics or CAPTION_METRICS))
        return {**out, "kind": "caption", "n": len(refs)}
    if metrics:
        raise DatasetError(
            f"{references} holds question-answering examples, scored by accuracy; caption metrics do not apply: drop --metrics."
        )
    accepted = {e.question_id: accepted_answers(e) for e in dataset.examples if isinstance(e, QAExample)}
    preds = _strings(_jsonl_rows(predictions, references, "answer"), predictions)
    return {"accuracy": gqa_accuracy(_same_key_type(preds, accepted), accepted), "kind": "qa", "n": len(accepted)}


def _jsonl_rows(predictions: Path, references: Path, field: str) -> dict[Any, Any]:
    """id -> the row's ``field``; a row of the other kind says which kind the task is."""
    try:
        return _mapping(predictions, "predictions", ("id",), (field,))
    except DatasetError as error:
        kind = "captioning" if field == "caption" else "question-answering"
        raise DatasetError(f'{error} {references} holds {kind} examples: give rows {{"id", "{field}"}}.') from error
