"""VL pretraining of any backbone on the user's own image-text data (the paper's VL-T5 / VL-BART stage).

VL-T5 and VL-BART are pretrained on image-text pairs before any downstream task, and
VL-Adapter reports its methods with and without that stage (PAPER.md §6). Here the whole VL
model of a backbone (language model + V->L projection, full fine-tuning; CLIP frozen, its
features cached on the device) trains multi-task on every task of a data file: captions in
COCO's layout or a JSONL file, VQA-style questions, anything `tasks.data_spec` reads. Each
task's prompt and targets are the ones its trials use. The teacher-forced loss on a held-out
sample of each task's validation split is measured before and after.

The result is a folder that a search starts from, named by a backbone spec with the same CLIP:

    OUT/language_model/              the trained language model and its tokenizer (save_pretrained)
    OUT/vl_projection.safetensors    the trained V->L projection (`proj=` of the spec)
    OUT/manifest.json                the backbone, data, settings and digests it came from, the losses
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from safetensors.torch import save_file

from models.build import build_vl_model
from models.config import TrainingConfig, TrialConfig
from models.location import VL_PROJECTION_FILE
from models.petl import get_method
from models.vl_model import VLSeq2Seq
from training.batches import Collator
from training.loop import train
from training.task_readers import PreparedTask
from training.text_examples import TextExample
from training.trial_threads import trial_threads

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LANGUAGE_MODEL_DIR = "language_model"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DataPretrainSettings:
    """The size of a VL-pretraining run on the user's data.

    Attributes:
        steps: optimisation steps, each on one task's batch (tasks in proportion to their size).
        batch_size: examples per step.
        learning_rate: AdamW peak rate; the paper's full fine-tuning rate for base-size models.
        seed: seed of the model's new parts and of the training order.
        held_out: validation examples per task whose loss is measured before and after.
    """

    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 1e-4
    seed: int = 0
    held_out: int = 256

    def problems(self) -> list[str]:
        found = []
        for name in ("steps", "batch_size", "held_out"):
            if getattr(self, name) < 1:
                found.append(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.learning_rate < 1:
            found.append(f"--learning-rate must be in (0, 1), got {self.learning_rate}; the paper's full fine-tuning uses 1e-4")
        if self.seed < 0:
            found.append(f"--seed must be >= 0, got {self.seed}")
        return found


@dataclass(frozen=True)
class PretrainedBackbone:
    """What a run wrote: its folder, the spec that names it, and the held-out loss before and after."""

    folder: Path
    spec: str
    loss_before: float
    loss_after: float


def output_problem(out: Path) -> str | None:
    """Why `out` cannot receive a pretrained backbone (None: it can); checked before anything runs."""
    if out.exists() and not out.is_dir():
        return f"--out {str(out)!r} is a file; give a new folder for the pretrained backbone"
    if out.is_dir() and any(out.iterdir()):
        return f"--out {str(out)!r} is not empty; give a new folder (a run never mixes its files with another's)"
    return None


def pretrain_on_data(env, clip_spec: str, out: Path, settings: DataPretrainSettings) -> PretrainedBackbone:
    """Train the backbone of `env` on its tasks; write the folder atomically and return it.

    Args:
        env: a TrialEnvironment prepared on the data and the backbone (its device, cached features).
        clip_spec: the `clip=ARCH:CHECKPOINT` part the written spec keeps.
        out: a new or empty folder (see `output_problem`).

    Raises:
        OSError: the folder could not be written (nothing is left half-written: it is renamed
            into place only once complete).
    """
    tasks: Mapping[str, PreparedTask] = env.tasks
    config = TrialConfig(
        backbone=env.location.preset.name,
        tasks=tuple(tasks),
        method="full_ft",
        freeze=get_method("full_ft").freeze,  # LM + V->L; CLIP is outside the model (cached features)
        training=TrainingConfig(
            learning_rate=settings.learning_rate, steps=settings.steps, batch_size=settings.batch_size, seed=settings.seed
        ),
    )
    held = {name: held_out_examples(task, settings.held_out) for name, task in tasks.items()}
    with trial_threads(env.device):  # on a CPU: one thread, the same weights on any machine
        torch.manual_seed(settings.seed)
        model, tokenizer = build_vl_model(config, env.location)
        assert tokenizer is not None, "build_vl_model gives a tokenizer off the meta device"
        model.to(env.device)
        collator = Collator(tokenizer, env.features, config.training.max_source_tokens)
        before = held_out_loss(model, collator, held, tasks, env.device)
        log.info("VL pretraining on %s: %d steps, held-out loss %.4f before", ", ".join(tasks), settings.steps, before)
        result = train(
            model,
            collator,
            {name: task.train for name, task in tasks.items()},
            config.training,
            env.device,
            {name: task.max_target_tokens for name, task in tasks.items()},
            show_progress=True,
            max_source_tokens={name: task.max_source_tokens for name, task in tasks.items() if task.max_source_tokens},
            task_weights={name: task.sampling_weight for name, task in tasks.items() if task.sampling_weight != 1.0},
        )
        after = held_out_loss(model, collator, held, tasks, env.device)
    log.info("held-out loss %.4f after VL pretraining", after)
    model.to("cpu")
    out = out.resolve()
    spec = f"{clip_spec},lm={out / LANGUAGE_MODEL_DIR},proj={out / VL_PROJECTION_FILE}"
    manifest = _manifest(env, config, settings, before, after, result.losses, spec)
    _write_atomically(out, model, tokenizer, manifest)
    return PretrainedBackbone(out, spec, before, after)


def held_out_examples(task: PreparedTask, limit: int) -> list[TextExample]:
    """The first `limit` examples of the task's validation split (its search split when it has no val)."""
    split = task.splits.get("val") or task.splits[task.search_split]
    return list(split.examples[:limit])


@torch.no_grad()
def held_out_loss(
    model: VLSeq2Seq,
    collator: Collator,
    examples: Mapping[str, Sequence[TextExample]],
    tasks: Mapping[str, PreparedTask],
    device: torch.device,
    batch_size: int = 64,
) -> float:
    """Mean per-example teacher-forced loss over every task's held-out examples (dropout off).

    An example with several targets is scored on one drawn with a fixed seed, so that the
    measure before and after training reads the same targets.
    """
    model.eval()
    total, count = 0.0, 0
    for name, items in examples.items():
        model.task_context.active = name
        rng = random.Random(0)
        task = tasks[name]
        for start in range(0, len(items), batch_size):
            chunk = list(items[start : start + batch_size])
            batch = collator.training(chunk, rng, task.max_target_tokens, task.max_source_tokens).to(device)
            total += float(model(labels=batch.labels, **batch.model_inputs()).sum())
            count += len(chunk)
    model.train()
    return total / max(count, 1)


def _manifest(env, config: TrialConfig, settings: DataPretrainSettings, before: float, after: float, curve, spec: str) -> dict:
    from core.software import run_environment
    from models.backbone_pin import backbone_digests
    from tasks.digests import summary

    return {
        "format_version": FORMAT_VERSION,
        "spec": spec,
        "started_from": {"backbone": config.backbone, "files": backbone_digests(env.location)},
        "data": env.data.to_dict() if env.data is not None else None,
        "data_files": summary(env.inputs),
        "tasks": list(config.tasks),
        "settings": asdict(settings),
        "held_out_loss": {"before": before, "after": after},
        "loss_curve": list(curve),
        "environment": run_environment(str(env.device)),
    }


def _write_atomically(out: Path, model: VLSeq2Seq, tokenizer, manifest: dict) -> None:
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model.lm.save_pretrained(staging / LANGUAGE_MODEL_DIR)
        tokenizer.save_pretrained(staging / LANGUAGE_MODEL_DIR)
        state = {name: tensor.contiguous() for name, tensor in model.visual_embedding.state_dict().items()}
        save_file(state, str(staging / VL_PROJECTION_FILE))
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if out.is_dir():
            out.rmdir()  # empty (output_problem): replaced whole
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
