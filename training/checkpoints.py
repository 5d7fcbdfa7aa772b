"""Checkpoints of a production training run, so that a killed run continues bit-exactly.

    OUT/checkpoints/latest.safetensors   the run every `every` steps (and after its last step)
    OUT/checkpoints/best.safetensors     the weights of the best scheduled evaluation so far

Each checkpoint is one safetensors file, written atomically (temp file, fsync, rename), so a kill
at any moment leaves either the previous checkpoint or the new one, never half of one. Tensors
go in the file's tensors, everything else as JSON in its metadata (never pickle):

    weights/<param>              the trainable weights
    optimizer/<param>/<key>      AdamW's state per parameter, by parameter name (step, exp_avg, exp_avg_sq)
    rng/torch_cpu, rng/cuda/<i>  torch's random generators (dropout)
    metadata "vlpetl_checkpoint" JSON: format version, the trial config (a resume must train the same
                                 one), the step, the Python random state (task choice, epoch shuffles,
                                 target sampling), each task's epoch order and position, the LR
                                 scheduler's and AdamW's hyperparameter state, the loss curve, the
                                 scheduled evaluations and the best one so far.

Search trials take no checkpoints (they are short and a failed trial is retried whole).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from models.weights import save_atomically
from training.epoch_order import EpochOrder
from training.loss_curve import LossCurve

CHECKPOINTS_DIR = "checkpoints"
LATEST = "latest.safetensors"
BEST = "best.safetensors"
FORMAT_VERSION = 1
_METADATA_KEY = "vlpetl_checkpoint"


class CheckpointError(ValueError):
    """A checkpoint cannot be used as asked: none to resume, another config's, or an unreadable file."""


@dataclass(frozen=True)
class CheckpointPlan:
    """How a production run checkpoints (search.train; search trials pass none).

    Attributes:
        folder: where the checkpoints go (`OUT/checkpoints`).
        config: the trial config's `to_dict()`, stored in each checkpoint; a resume must match it.
        every: write `latest` every this many steps and after the last one (0: never).
        keep_best: end the run with the weights of the best scheduled evaluation (the final
            model is evaluated too, to compete) rather than the last weights.
        resume: continue from `latest` (checked by `plan_checkpoints` before anything runs).
    """

    folder: Path
    config: Mapping[str, Any] = field(default_factory=dict)
    every: int = 0
    keep_best: bool = False
    resume: bool = False

    @property
    def latest(self) -> Path:
        return self.folder / LATEST

    @property
    def best(self) -> Path:
        return self.folder / BEST


def plan_checkpoints(out: Path, config: Mapping[str, Any], every: int = 0, keep_best: bool = False, resume: bool = False) -> CheckpointPlan:
    """The plan for a run writing to `out`, checked before anything is trained or written.

    Raises:
        CheckpointError: `resume` without a checkpoint, a checkpoint of another config, or (without
            `resume`) an `out` that already holds checkpoints, which a fresh run would overwrite.
    """
    plan = CheckpointPlan(out / CHECKPOINTS_DIR, dict(config), every, keep_best, resume)
    if resume:
        if not plan.latest.is_file():
            raise CheckpointError(
                f"--resume: {str(plan.latest)!r} does not exist (no checkpoint to continue from); "
                "run without --resume, with --checkpoint-every N to take checkpoints"
            )
        saved = read_state(plan.latest)["config"]
        if differences := _differences(saved, plan.config):
            shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
            raise CheckpointError(
                f"--resume: the checkpoint in {str(plan.folder)!r} trained another configuration ({shown}); "
                "resume with the recipe and flags of the interrupted run, or choose another --out"
            )
    elif plan.latest.exists() or plan.best.exists():
        raise CheckpointError(
            f"{str(plan.folder)!r} already holds checkpoints of an earlier run; pass --resume to continue it, or choose another --out"
        )
    return plan


def write_checkpoint(path: Path, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> None:
    """Write `tensors` and the JSON `state` to `path` atomically (one file: they are replaced together)."""
    save_atomically(tensors, path, {_METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION, **state})})


def read_state(path: Path) -> dict[str, Any]:
    """The JSON part of a checkpoint (without reading its tensors).

    Raises:
        CheckpointError: not a checkpoint this code wrote, or of another format version.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = json.loads(metadata[_METADATA_KEY])
    except Exception as error:  # missing file, no metadata, bad JSON; safetensors raises its own error types
        raise CheckpointError(f"{str(path)!r} is not a readable checkpoint ({error}); delete it and start the run again") from error
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {state.get('format_version')!r}, this code reads {FORMAT_VERSION}; "
            "start the run again in another --out"
        )
    return state


def trainable_names(model: torch.nn.Module) -> list[str]:
    """The trainable parameters' names, in the order the loop hands them to AdamW."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def capture(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng: random.Random,
    orders: Mapping[str, EpochOrder],
    curve: LossCurve,
    progress: Mapping[str, Any],
    config: Mapping[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The loop's whole state after a step: tensors and JSON, for `write_checkpoint`.

    Args:
        progress: the loop's own values (step, evaluations, best), stored as they are.
    """
    names = trainable_names(model)
    parameters = dict(model.named_parameters())
    tensors: dict[str, torch.Tensor] = {f"weights/{name}": parameters[name] for name in names}
    saved = optimizer.state_dict()
    for index, per_parameter in saved["state"].items():
        for key, value in per_parameter.items():
            tensors[f"optimizer/{names[index]}/{key}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    groups = [{**group, "params": [names[i] for i in group["params"]]} for group in saved["param_groups"]]
    tensors["rng/torch_cpu"] = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    for i, generator in enumerate(cuda):
        tensors[f"rng/cuda/{i}"] = generator
    version, internal, gauss = rng.getstate()
    state = {
        **progress,
        "config": dict(config),
        "python_rng": [version, list(internal), gauss],
        "orders": {task: order.state() for task, order in orders.items()},
        "loss_curve": curve.state(),
        "scheduler": scheduler.state_dict(),
        "optimizer_param_groups": groups,
        "cuda_generators": len(cuda),
    }
    return tensors, state


def restore(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng: random.Random,
    orders: Mapping[str, EpochOrder],
    curve: LossCurve,
) -> dict[str, Any]:
    """Put the state `capture` saved in `path` back into the loop's objects; returns the whole JSON
    state (step, evaluations, best and the rest).

    Raises:
        CheckpointError: the checkpoint's parameters or tasks are not this run's.
    """
    state = read_state(path)
    tensors = load_file(str(path))
    names = trainable_names(model)
    weights = {key.removeprefix("weights/"): t for key, t in tensors.items() if key.startswith("weights/")}
    if sorted(weights) != sorted(names) or sorted(state["orders"]) != sorted(orders):
        raise CheckpointError(
            f"{str(path)!r} holds other trainable parameters or tasks than this run builds "
            f"({len(weights)} tensors for {len(names)} parameters, tasks {sorted(state['orders'])} for {sorted(orders)}); "
            "resume with the recipe of the interrupted run, or choose another --out"
        )
    with torch.no_grad():
        parameters = dict(model.named_parameters())
        for name, value in weights.items():
            parameters[name].copy_(value)
    index = {name: i for i, name in enumerate(names)}
    per_parameter: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            name, _, entry = key.removeprefix("optimizer/").rpartition("/")
            per_parameter.setdefault(index[name], {})[entry] = value
    groups = [
        {**group, "params": [index[name] for name in group["params"]], "betas": tuple(group["betas"])}
        for group in state["optimizer_param_groups"]
    ]
    optimizer.load_state_dict({"state": per_parameter, "param_groups": groups})
    scheduler.load_state_dict(state["scheduler"])
    version, internal, gauss = state["python_rng"]
    rng.setstate((version, tuple(internal), gauss))
    for task, order in orders.items():
        order.restore(state["orders"][task])
    curve.restore(state["loss_curve"])
    torch.set_rng_state(tensors["rng/torch_cpu"])
    if state["cuda_generators"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[f"rng/cuda/{i}"] for i in range(state["cuda_generators"])])
    return state


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Copy a checkpoint's trainable weights into `model` (the best checkpoint, for --keep-best)."""
    tensors = load_file(str(path))
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in tensors.items():
            if key.startswith("weights/"):
                parameters[key.removeprefix("weights/")].copy_(value)


def _differences(saved: Mapping[str, Any], wanted: Mapping[str, Any], where: str = "") -> list[str]:
    """'key: checkpoint X, now Y' for every leaf that differs between two config dicts."""
    found = []
    for key in sorted(set(saved) | set(wanted), key=str):
        name = f"{where}{key}"
        a, b = saved.get(key, "<unset>"), wanted.get(key, "<unset>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found.extend(_differences(a, b, name + "."))
        elif a != b:
            found.append(f"{name}: checkpoint {a!r}, now {b!r}")
    return found
