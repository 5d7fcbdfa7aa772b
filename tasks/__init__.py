"""Task data for the search: a seeded synthetic VQA task in the real VQA v2
layout, its loader, the official VQA accuracy and a majority baseline.

Quick start::

    from tasks import generate_vqa, load_vqa_split, vqa_accuracy
    root = generate_vqa(Path("data/vqa_mini"))
    train = load_vqa_split(root, "train")
"""

from tasks.baselines import majority_answer, majority_baseline_accuracy
from tasks.errors import DatasetError
from tasks.metrics import normalize_answer, question_accuracy, vqa_accuracy
from tasks.render import render_scene
from tasks.vqa import SPLITS, VQAExample, load_vqa_split
from tasks.vqa_generate import generate_vqa
from tasks.world import Scene, SceneObject, sample_scene

__all__ = [
    "SPLITS",
    "DatasetError",
    "Scene",
    "SceneObject",
    "VQAExample",
    "generate_vqa",
    "load_vqa_split",
    "majority_answer",
    "majority_baseline_accuracy",
    "normalize_answer",
    "question_accuracy",
    "render_scene",
    "sample_scene",
    "vqa_accuracy",
]
