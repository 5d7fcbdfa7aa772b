"""Accuracy metrics of GQA, NLVR2 and multiple-choice video QA, as their tools compute them.

* GQA (the VL-T5 / VL-Adapter ``GQAEvaluator``): the prediction gets the VQA
  tool's punctuation step, then is lowercased, split on whitespace and
  stripped of the articles a/an/the; it scores the label's value for that
  answer (1.0 for GQA's single answer) or 0. GQA's own ``eval.py`` compares
  the strings as they are; the two agree on normalised answers such as ours.
* NLVR2 (the official ``metrics.py``): a prediction is correct when it equals
  the label, case-insensitively, as "true"/"false"; consistency is the share
  of sentences (identifier without its pair index) whose every pair is right.
* TVQA / How2QA: a prediction is correct when it names the right answer index.

Every function returns a percentage (0-100) and, like the official tools,
requires one prediction per ground-truth example and none for unknown ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from tasks.metrics.vqa_accuracy import process_punctuation

__all__ = [
    "check_coverage",
    "gqa_accuracy",
    "normalize_gqa_answer",
    "nlvr2_accuracy",
    "nlvr2_consistency",
    "parse_choice",
    "parse_truth",
    "video_qa_accuracy",
]

_ARTICLES = frozenset({"a", "an", "the"})


def check_coverage(predictions: Mapping, truth: Mapping, what: str = "question ids") -> None:
    """Raise ValueError unless both mappings have the same keys (both non-empty)."""
    if not truth:
        raise ValueError(f"the ground truth is empty; pass at least one example's {what[:-1]}.")
    missing = sorted(map(str, set(truth) - set(predictions)))
    unknown = sorted(map(str, set(predictions) - set(truth)))
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"{len(missing)} {what} have no prediction (e.g. {', '.join(missing[:5])})")
        if unknown:
            problems.append(f"{len(unknown)} predictions name unknown {what} (e.g. {', '.join(unknown[:5])})")
        raise ValueError(
            "predictions and ground truth must cover the same "
            + what
            + ", but "
            + "; ".join(problems)
            + ". Predict every example of the split."
        )


def normalize_gqa_answer(answer: str) -> str:
    """The VL-T5 GQA evaluator's normalisation: punctuation, lowercase, no articles."""
    words = process_punctuation(answer).lower().split()
    return " ".join(w for w in words if w not in _ARTICLES)


def gqa_accuracy(predictions: Mapping[int | str, str], labels: Mapping[int | str, Mapping[str, float]]) -> float:
    """GQA accuracy in percent: mean label score of the normalised predictions.

    Args:
        predictions: question_id -> predicted answer text.
        labels: question_id -> ``{answer: score}`` (GQA: ``{answer: 1.0}``).

    Raises:
        ValueError: If the question ids of the two mappings differ.
    """
    check_coverage(predictions, labels)
    total = sum(labels[q].get(normalize_gqa_answer(predictions[q]), 0.0) for q in labels)
    return 100.0 * total / len(labels)


def parse_truth(value: object) -> bool | None:
    """``True``/``False`` from "true"/"false" (any case), 1/0 or a bool; else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(value.strip().lower())
    return None


def nlvr2_accuracy(predictions: Mapping[str, object], labels: Mapping[str, bool]) -> float:
    """NLVR2 accuracy in percent; an unreadable prediction counts as wrong.

    Args:
        predictions: identifier -> "true"/"false" (any case), 1/0 or a bool.
        labels: identifier -> the truth.
    """
    check_coverage(predictions, labels, "identifiers")
    return 100.0 * sum(parse_truth(predictions[k]) == v for k, v in labels.items()) / len(labels)


def nlvr2_consistency(predictions: Mapping[str, object], labels: Mapping[str, bool]) -> float:
    """Percent of sentences all of whose image pairs are predicted correctly.

    A sentence is the identifier ``<split>-<set>-<pair>-<sentence>`` without
    its pair index.
    """
    check_coverage(predictions, labels, "identifiers")
    groups: dict[str, list[bool]] = defaultdict(list)
    for identifier, truth in labels.items():
        parts = identifier.split("-")
        key = "-".join(parts[:2] + parts[3:]) if len(parts) == 4 else identifier
        groups[key].append(parse_truth(predictions[identifier]) == truth)
    return 100.0 * sum(all(v) for v in groups.values()) / len(groups)


def parse_choice(value: object) -> int | None:
    """An answer index from ``"a3"``, ``"3"`` or ``3``; else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        text = text[1:] if text.startswith("a") else text
        if text.isdigit():
            return int(text)
    return None


def video_qa_accuracy(predictions: Mapping[int | str, object], answers: Mapping[int | str, int]) -> float:
    """TVQA / How2QA accuracy in percent.

    Args:
        predictions: qid -> ``"a{idx}"`` (the model's target text), or an index.
        answers: qid -> the correct index.
    """
    check_coverage(predictions, answers, "qids")
    return 100.0 * sum(parse_choice(predictions[q]) == a for q, a in answers.items()) / len(answers)
