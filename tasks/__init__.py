"""Task data for the search: loaders for the paper's datasets in their authors'
layouts, the generated mini-VL benchmark written in those same layouts, the
official metrics and majority baselines.

Quick start::

    from tasks import generate_benchmark, load_gqa_split, gqa_accuracy
    root = generate_benchmark(Path("data/mini-vl"))      # or python -m tasks generate ROOT
    train = load_gqa_split(root, "train")

See tasks/README.md for the layouts, the generic JSONL format and the metrics.
"""

from tasks.baselines import (
    caption_majority_baseline,
    gqa_majority_baseline,
    majority_answer,
    majority_baseline_accuracy,
    nlvr2_majority_baseline,
    video_qa_majority_baseline,
)
from tasks.benchmark import BenchmarkSizes, generate_benchmark
from tasks.coco_captions import CAPTION_SPLITS, load_caption_split
from tasks.custom import CustomDataset, load_custom_jsonl
from tasks.errors import DatasetError
from tasks.examples import (
    CaptionExample,
    PairExample,
    QAExample,
    Subtitle,
    VideoCaptionExample,
    VideoQAExample,
    VideoSource,
)
from tasks.gqa import GQA_SPLITS, load_gqa_split
from tasks.metrics import (
    caption_metrics,
    gqa_accuracy,
    nlvr2_accuracy,
    nlvr2_consistency,
    normalize_answer,
    paper_average,
    question_accuracy,
    reported_score,
    video_qa_accuracy,
    vqa_accuracy,
)
from tasks.nlvr2 import NLVR2_SPLITS, load_nlvr2_split
from tasks.pretraining import PretrainingPair, pretraining_corpus
from tasks.render import render_scene
from tasks.video import VIDEO_SPLITS, load_video_caption_split, load_video_features, load_video_qa_split
from tasks.vqa import SPLITS, VQAExample, load_vqa_split
from tasks.vqa_generate import generate_vqa
from tasks.world import HELD_OUT_PAIRS, Scene, SceneObject, sample_scene

__all__ = [
    "CAPTION_SPLITS",
    "GQA_SPLITS",
    "HELD_OUT_PAIRS",
    "NLVR2_SPLITS",
    "SPLITS",
    "VIDEO_SPLITS",
    "BenchmarkSizes",
    "CaptionExample",
    "CustomDataset",
    "DatasetError",
    "PairExample",
    "PretrainingPair",
    "QAExample",
    "Scene",
    "SceneObject",
    "Subtitle",
    "VQAExample",
    "VideoCaptionExample",
    "VideoQAExample",
    "VideoSource",
    "caption_majority_baseline",
    "caption_metrics",
    "generate_benchmark",
    "generate_vqa",
    "gqa_accuracy",
    "gqa_majority_baseline",
    "load_caption_split",
    "load_custom_jsonl",
    "load_gqa_split",
    "load_nlvr2_split",
    "load_video_caption_split",
    "load_video_features",
    "load_video_qa_split",
    "load_vqa_split",
    "majority_answer",
    "majority_baseline_accuracy",
    "nlvr2_accuracy",
    "nlvr2_consistency",
    "nlvr2_majority_baseline",
    "normalize_answer",
    "paper_average",
    "pretraining_corpus",
    "question_accuracy",
    "render_scene",
    "reported_score",
    "sample_scene",
    "video_qa_accuracy",
    "video_qa_majority_baseline",
    "vqa_accuracy",
]
