"""Exact parameter counts of a named run preset on a backbone, built on the meta device.

Counts by the paper's definition (PAPER.md §3: CLIP excluded) and with the CLIP image tower,
with a breakdown by component (`models.params`). Nothing is downloaded or allocated; task
names only set how many per-task modules exist. `python -m search.params` prints these.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

__all__ = ["counts_table", "default_tasks", "preset_catalogue", "preset_counts"]


def default_tasks(backbone: str) -> tuple[str, ...]:
    """The paper's four image tasks (vqa, gqa, nlvr2, caption), or its four video tasks for a
    video backbone."""
    from models.backbones.presets import get_preset
    from models.petl.presets import IMAGE_TASKS, VIDEO_TASKS

    return VIDEO_TASKS if get_preset(backbone).modality == "video" else IMAGE_TASKS


def preset_counts(backbone: str, preset: str, tasks: tuple[str, ...], data_dir: Path) -> dict[str, Any]:
    """The run preset's configuration on `backbone` and its parameter counts, as one mapping.

    Args:
        backbone: a known backbone preset (`models.backbones.presets.PRESETS`) or a backbone spec.
        preset: a known run preset (`models.petl.presets.RUN_PRESETS`).
        tasks: task names (they set how many per-task modules exist).
        data_dir: where an embedded tiny backbone lives.

    Raises:
        ConfigError: the preset's configuration is invalid on this backbone.
        OSError: an embedded backbone is not built under `data_dir`.
    """
    from models.petl.presets import RUN_PRESETS

    config = RUN_PRESETS[preset].trial_config(backbone, tasks)
    from models.location import BackboneLocation  # torch, transformers, open_clip: only once the input is valid
    from models.params import parameter_report

    report = parameter_report(config, BackboneLocation.resolve(backbone, data_dir))
    return {
        "backbone": backbone,
        "preset": preset,
        "tasks": list(tasks),
        "method": config.method,
        "method_params": dict(config.method_params),
        "sharing": config.sharing.value,
        "freeze": dataclasses.asdict(config.freeze),
        **report.to_dict(),
    }


def counts_table(result: dict[str, Any]) -> str:
    """`preset_counts`'s result as a table: a row per component, then both definitions' totals."""
    lines = [
        f"{result['preset']} on {result['backbone']} ({result['method']}, sharing {result['sharing']}; tasks {', '.join(result['tasks'])})",
        "",
        f"{'component':<22}{'trainable':>16}{'total':>16}",
    ]
    for name, counts in result["breakdown"].items():
        lines.append(f"{name:<22}{counts['trainable']:>16,}{counts['total']:>16,}")
    lines += [
        "",
        f"paper's definition (CLIP excluded): {result['trainable']:,} / {result['total']:,} = {result['trainable_pct']:.2f}%",
        f"with CLIP's image tower:            {result['trainable_with_clip']:,} / {result['total_with_clip']:,} "
        f"= {result['trainable_pct_with_clip']:.2f}%",
    ]
    return "\n".join(lines)


CATALOGUE_BACKBONE = "clip-rn101+bart-base"  # the paper's image setting, where its percentages were published


def preset_catalogue(data_dir: Path) -> str:
    """The run presets with their trainable % on `CATALOGUE_BACKBONE` (image tasks, the paper's
    definition, counted on the meta device) beside the published one, then the backbones.

    A preset with no published % of its own shows the preset whose sizes it ran with, or "-".
    """
    from models.backbones.presets import PRESETS
    from models.petl.presets import IMAGE_TASKS, RUN_PRESETS

    lines = [f"run presets: trainable % on {CATALOGUE_BACKBONE} ({', '.join(IMAGE_TASKS)}; paper's definition), published beside it"]
    lines.append(f"  {'preset':<22}{'counted':>9}{'published':>22}  description")
    for name, run in sorted(RUN_PRESETS.items()):
        counted = preset_counts(CATALOGUE_BACKBONE, name, IMAGE_TASKS, data_dir)["trainable_pct"]
        published, note = published_column(name, data_dir)
        lines.append(f"  {name:<22}{counted:>8.2f}%{published:>22}  {run.description}{note}")
    lines.append("backbones:")
    lines += [f"  {name}" for name in sorted(PRESETS)]
    return "\n".join(lines)


def published_column(preset: str, data_dir: Path) -> tuple[str, str]:
    """(the catalogue's published cell, a note after the description) of a run preset.

    A % published on another backbone than `CATALOGUE_BACKBONE` (LST's CLIP-T5) is marked and
    the note names that backbone with our count there.
    """
    from models.petl.presets import IMAGE_TASKS, RUN_PRESETS

    run = RUN_PRESETS[preset]
    if run.paper_trainable_pct is None:
        return (f"as {run.size_sibling}" if run.size_sibling else "-"), ""
    if run.paper_backbone == CATALOGUE_BACKBONE:
        return f"{run.paper_trainable_pct:.2f}%", ""
    there = preset_counts(run.paper_backbone, preset, IMAGE_TASKS, data_dir)["trainable_pct"]
    return f"{run.paper_trainable_pct:.2f}%*", f" (* published on {run.paper_backbone}, where it counts {there:.2f}%)"
