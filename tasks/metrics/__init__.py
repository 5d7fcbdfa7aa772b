"""Evaluation metrics for the task datasets."""

from tasks.metrics.vqa_accuracy import (
    CONTRACTIONS,
    normalize_answer,
    question_accuracy,
    vqa_accuracy,
)

__all__ = ["CONTRACTIONS", "normalize_answer", "question_accuracy", "vqa_accuracy"]
