"""Named configurations reproducing the paper's runs (PAPER.md §2, §4, §6).

A run preset fixes the method, its parameters, the sharing mode, the freezing and the paper's
learning rate; the backbone and the tasks stay free, so `single-adapter` on
`clip-rn101+bart-base` with the four image tasks is the paper's 4.18% run, and on
`video-clip512+bart-base` with the four video tasks its 3.39% run. Each method's file declares
its runs (`MethodSpec.presets`); this module looks them up by name.
"""

from __future__ import annotations

from typing import Iterator, Mapping

from models.config import ConfigError
from models.petl.registry import RunPreset, run_presets

__all__ = ["IMAGE_TASKS", "RUN_PRESETS", "VIDEO_TASKS", "RunPreset", "get_run_preset", "run_preset_names"]

IMAGE_TASKS = ("vqa", "gqa", "nlvr2", "caption")
VIDEO_TASKS = ("tvqa", "how2qa", "tvc", "yc2c")


class _RunPresets(Mapping[str, RunPreset]):
    """Every registered method's runs, read from the registry at each use (so that a method
    registered later, from $VLPETL_EXTRA_METHODS, is found too)."""

    def __getitem__(self, name: str) -> RunPreset:
        return run_presets()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(run_presets())

    def __len__(self) -> int:
        return len(run_presets())


RUN_PRESETS: Mapping[str, RunPreset] = _RunPresets()


def get_run_preset(name: str) -> RunPreset:
    """Look a run preset up by name.

    Raises:
        ConfigError: unknown name; the message lists the known presets.
    """
    if name not in RUN_PRESETS:
        raise ConfigError([f"unknown run preset {name!r}; known presets: {sorted(RUN_PRESETS)}"])
    return RUN_PRESETS[name]


def run_preset_names() -> list[str]:
    return sorted(RUN_PRESETS)
