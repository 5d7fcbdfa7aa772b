"""The numbers a paper reports per task, and their average (PAPER.md section 6).

The paper averages the numbers as printed: VQA, GQA and NLVR2 accuracies in
percent and COCO CIDEr x 100, e.g. full fine-tuning (67.6 + 56.7 + 73.0 +
112.9) / 4 = 77.55, printed 77.6. Video: TVQA and How2QA accuracy, TVC and
YouCook2 CIDEr x 100.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ACCURACY_TASKS", "CIDER_TASKS", "paper_average", "reported_score"]

ACCURACY_TASKS: frozenset[str] = frozenset({"vqa", "gqa", "nlvr2", "tvqa", "how2qa", "custom_qa"})
CIDER_TASKS: frozenset[str] = frozenset({"caption", "tvc", "yc2c", "custom_caption"})


def reported_score(task: str, metrics: Mapping[str, float | str | None]) -> float:
    """The task's headline number as the paper prints it.

    Args:
        task: A name in :data:`ACCURACY_TASKS` or :data:`CIDER_TASKS`.
        metrics: The task's metrics: ``"accuracy"`` in percent, or the raw
            pycocoevalcap ``"CIDEr"``.

    Returns:
        The accuracy (0-100), or CIDEr x 100.

    Raises:
        ValueError: For an unknown task or a missing metric.
    """
    key, scale = ("accuracy", 1.0) if task in ACCURACY_TASKS else ("CIDEr", 100.0)
    if task not in ACCURACY_TASKS | CIDER_TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(ACCURACY_TASKS | CIDER_TASKS)}.")
    value = metrics.get(key)
    if not isinstance(value, (int, float)):
        raise ValueError(f"task {task!r} is reported by {key!r}, but the metrics hold {dict(metrics)!r}.")
    return float(value) * scale


def paper_average(scores: Mapping[str, float]) -> float:
    """The unweighted mean of reported task scores (the paper's "avg" column).

    Args:
        scores: task -> :func:`reported_score`.

    Raises:
        ValueError: If ``scores`` is empty.
    """
    if not scores:
        raise ValueError("no task scores to average; pass at least one task's reported score.")
    return sum(scores.values()) / len(scores)
