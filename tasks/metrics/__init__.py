"""Evaluation metrics for the task datasets, as the official tools compute them."""

from tasks.metrics.aggregate import ACCURACY_TASKS, CIDER_TASKS, paper_average, reported_score
from tasks.metrics.captioning import CAPTION_METRICS, SPICE_REASON, CaptionMetricError, caption_metrics
from tasks.metrics.exact_match import (
    gqa_accuracy,
    nlvr2_accuracy,
    nlvr2_consistency,
    normalize_gqa_answer,
    video_qa_accuracy,
)
from tasks.metrics.vqa_accuracy import (
    CONTRACTIONS,
    normalize_answer,
    process_punctuation,
    question_accuracy,
    vqa_accuracy,
)

__all__ = [
    "ACCURACY_TASKS",
    "CAPTION_METRICS",
    "CIDER_TASKS",
    "CONTRACTIONS",
    "SPICE_REASON",
    "CaptionMetricError",
    "caption_metrics",
    "gqa_accuracy",
    "nlvr2_accuracy",
    "nlvr2_consistency",
    "normalize_answer",
    "normalize_gqa_answer",
    "paper_average",
    "process_punctuation",
    "question_accuracy",
    "reported_score",
    "video_qa_accuracy",
    "vqa_accuracy",
]
