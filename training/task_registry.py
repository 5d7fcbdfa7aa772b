"""Every task a trial can train, by name: the four image tasks and the four video tasks."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

from models.config import VIDEO_TASK_NAMES
from training.tasks import PreparedTask, prepare_caption, prepare_gqa, prepare_nlvr2, prepare_vqa
from training.video_tasks import prepare_video_caption, prepare_video_qa

IMAGE_TASKS = ("vqa", "gqa", "nlvr2", "caption")
# The generated benchmark writes tvqa and tvc; how2qa and yc2c read the real VALUE files.
VIDEO_TASKS = VIDEO_TASK_NAMES

PREPARERS: dict[str, Callable[[Path], PreparedTask]] = {
    "vqa": prepare_vqa,
    "gqa": prepare_gqa,
    "nlvr2": prepare_nlvr2,
    "caption": prepare_caption,
    "tvqa": partial(prepare_video_qa, task="tvqa"),
    "how2qa": partial(prepare_video_qa, task="how2qa"),
    "tvc": partial(prepare_video_caption, task="tvc"),
    "yc2c": partial(prepare_video_caption, task="yc2c"),
}
