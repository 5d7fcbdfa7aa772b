"""Typed, serialisable configuration of one trial: what to build and how to train it.

A `TrialConfig` is the single object that flows from the search space to the model
builder, the trainer, the results table and the exported recipe, so any trial can be
rebuilt and rerun from its stored dict without Optuna.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


class ConfigError(ValueError):
    """A configuration broke one or more rules; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


class SharingMode(str, enum.Enum):
    """How PETL modules are shared across tasks (PAPER.md §2)."""

    MULTIPLE = "multiple"  # one module per task at each site
    HALF_SHARED = "half-shared"  # one projection shared, the other per task
    SINGLE = "single"  # one module for all tasks


VISUAL_ENCODER_POLICIES = ("frozen", "last_block", "trainable")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# proportional: a task per step in proportion to its training-set size (the paper);
# round_robin: tasks in turn, so a small task (NLVR2) gets as many steps as a large one.
TASK_SAMPLING = ("proportional", "round_robin")
# adamw: the paper; sam: sharpness-aware minimisation around AdamW (beyond the paper).
OPTIMIZERS = ("adamw", "sam")
# How the learning rate moves after its linear warm-up (transformers' schedules): linear decay to
# 0 (the paper, and every search trial), half a cosine down to 0, or held constant.
LR_SCHEDULES = ("linear", "cosine", "constant")
# What a scheduled evaluation measures: each task's official metric on generated answers, or the
# held-out (teacher-forced) loss of its reference answers (training.validation_loss), which ranks
# trials from the first rungs on where generated answers do not (search.fidelity).
EVAL_MEASURES = ("score", "loss")
# Production options (search.train) whose default is left out of `TrialConfig.to_dict()`, so the
# configs stored by studies before these options existed stay equal to today's for the same trial.
_OMITTED_WHEN_DEFAULT = {"grad_accumulation": 1, "lr_schedule": "linear", "eval_at": (), "eval_measure": "score"}
# Freezing options left out of `TrialConfig.to_dict()` at their default, for the same reason.
_FREEZE_OMITTED_WHEN_DEFAULT = {"train_decoder_layernorm": True}
# Video tasks read per-frame features (PAPER.md §4); the other tasks read images.
VIDEO_TASK_NAMES = ("tvqa", "how2qa", "tvc", "yc2c")


@dataclass(frozen=True)
class FreezeConfig:
    """Which parts of the backbone train besides the PETL modules.

    Embeddings and LM head are one tensor in BART-base and T5-base (tied), so either flag
    trains both there; they differ only for untied models.

    Attributes:
        train_language_model: every weight of the LM trains (full fine-tuning).
        train_layernorm: LayerNorm parameters of the LM train.
        train_vl_projection: the V->L projection trains (always on in the paper).
        train_embeddings: the LM's token embedding (with the visual-order rows) and learned
            position embeddings train.
        train_lm_head: the LM head trains.
        train_bias: every bias of the LM trains, LayerNorm biases included (the paper's LoRA run).
        train_decoder_layernorm: with `train_layernorm`, the decoder's LayerNorms train too; False
            trains the encoder's only (VL-PET's runs: `--unfreeze_encoder_layer_norms`).
        visual_encoder: the CLIP encoder's policy, one of VISUAL_ENCODER_POLICIES: "frozen" reads
            the cached features; "last_block" and "trainable" put the CLIP grid encoder inside
            the model (models.freezing.attach_trainable_clip), which then reads pixels at every
            step (image tasks on a backbone with a CLIP tower only: models.validation). Its
            parameters count only with CLIP counted (models.params, `search.launch --count-clip`).
    """

    train_language_model: bool = False
    train_layernorm: bool = True
    train_vl_projection: bool = True
    train_embeddings: bool = False
    train_lm_head: bool = False
    train_bias: bool = False
    train_decoder_layernorm: bool = True
    visual_encoder: str = "frozen"

    def problems(self) -> list[str]:
        found = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", bool) and not isinstance(value, bool):
                found.append(f"freeze.{f.name} must be true or false, got {value!r}")
        if self.visual_encoder not in VISUAL_ENCODER_POLICIES:
            found.append(f"freeze.visual_encoder must be one of {list(VISUAL_ENCODER_POLICIES)}, got {self.visual_encoder!r}")
        return found


@dataclass(frozen=True)
class TrainingConfig:
    """The optimisation recipe of one trial (PAPER.md §4, scaled to the backbone)."""

    learning_rate: float = 1e-3
    # A search trial's length: on the embedded VL-pretrained backbone, 225 steps rank the methods
    # as 400 do (the best under 5% beat full fine-tuning at both) and let the default study's
    # 12 trials finish in about 11 minutes on 2 CPU cores. Production training sets its own.
    steps: int = 225
    batch_size: int = 32
    eval_batch_size: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    adam_eps: float = 1e-6
    grad_clip: float = 5.0
    seed: int = 0
    max_source_tokens: int = 24  # task prefix + the paper's 20 question tokens
    precision: str = "auto"  # one of PRECISIONS; "auto" = bf16 on a CUDA device that has it, fp16 on one without, else fp32
    eval_every: int = 0  # score a validation sample every this many steps (0: only after training)
    eval_sample: int = 128  # examples per task in those scheduled evaluations (the final one scores all)
    # Also score a validation sample after each of these steps: the multi-fidelity rungs
    # (search.fidelity), which are not evenly spaced.
    eval_at: tuple[int, ...] = ()
    eval_measure: str = "score"  # one of EVAL_MEASURES: what the scheduled evaluations measure
    task_sampling: str = "proportional"  # one of TASK_SAMPLING: how each step picks its task
    optimizer: str = "adamw"  # one of OPTIMIZERS; "sam" wraps AdamW in sharpness-aware minimisation
    sam_rho: float = 0.05  # SAM's neighbourhood radius (Foret et al. 2021's default)
    # Production options (search.train): micro-batches of `batch_size` per optimizer step, each
    # step's loss the mean of theirs; and the schedule after warm-up, one of LR_SCHEDULES.
    grad_accumulation: int = 1
    lr_schedule: str = "linear"

    def __post_init__(self) -> None:
        if isinstance(self.eval_at, list):  # read back from JSON
            object.__setattr__(self, "eval_at", tuple(self.eval_at))

    def problems(self) -> list[str]:
        found = []
        if not self.learning_rate > 0:
            found.append(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if self.steps < 1:
            found.append(f"training.steps must be >= 1, got {self.steps}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            found.append(f"training batch sizes must be >= 1, got batch_size={self.batch_size}, eval_batch_size={self.eval_batch_size}")
        if not 0 <= self.warmup_ratio < 1:
            found.append(f"training.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.grad_clip <= 0:
            found.append(f"training.grad_clip must be > 0, got {self.grad_clip}")
        if self.optimizer not in OPTIMIZERS:
            found.append(f"training.optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if not self.sam_rho > 0:
            found.append(f"training.sam_rho must be > 0, got {self.sam_rho}")
        if self.task_sampling not in TASK_SAMPLING:
            found.append(f"training.task_sampling must be one of {list(TASK_SAMPLING)}, got {self.task_sampling!r}")
        if self.precision not in PRECISIONS:
            found.append(f"training.precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if isinstance(self.grad_accumulation, bool) or not isinstance(self.grad_accumulation, int) or self.grad_accumulation < 1:
            found.append(f"training.grad_accumulation must be an integer >= 1 (micro-batches per step), got {self.grad_accumulation!r}")
        elif self.grad_accumulation > 1 and self.optimizer == "sam":
            found.append(
                f"training.grad_accumulation={self.grad_accumulation} cannot be combined with optimizer 'sam' "
                "(its second pass needs the whole batch); use grad_accumulation 1 or optimizer 'adamw'"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            found.append(f"training.lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.eval_every < 0 or self.eval_sample < 1:
            found.append(
                f"training.eval_every must be >= 0 and training.eval_sample >= 1, got eval_every={self.eval_every}, "
                f"eval_sample={self.eval_sample}"
            )
        if self.eval_measure not in EVAL_MEASURES:
            found.append(f"training.eval_measure must be one of {list(EVAL_MEASURES)}, got {self.eval_measure!r}")
        elif self.eval_measure == "loss" and self.eval_every:
            found.append(
                f"training.eval_measure 'loss' cannot be combined with eval_every={self.eval_every}: those evaluations keep the "
                "best checkpoint by its score; use eval_measure 'score' (the held-out loss is for the search's rungs, eval_at)"
            )
        at = self.eval_at
        steps_ok = isinstance(at, tuple) and all(isinstance(n, int) and not isinstance(n, bool) and 0 < n < self.steps for n in at)
        if not steps_ok or list(at) != sorted(set(at)):
            found.append(f"training.eval_at must list increasing steps between 1 and steps - 1 = {self.steps - 1}, got {at!r}")
        return found


@dataclass(frozen=True)
class TrialConfig:
    """Everything needed to build, train and evaluate one configuration.

    Attributes:
        backbone: backbone preset name (see `models.backbones.presets`).
        tasks: task names trained jointly.
        method: PETL registry key (see `models.petl.registry`).
        method_params: the method's own hyperparameters, validated by its config class.
        sharing: how PETL modules are shared across tasks.
        freeze: what trains besides the PETL modules.
        training: the optimisation recipe.
    """

    backbone: str
    tasks: tuple[str, ...]
    method: str
    method_params: Mapping[str, Any] = field(default_factory=dict)
    sharing: SharingMode = SharingMode.SINGLE
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict(to_dict())` gives back an equal config.

        The production-only training options are left out at their defaults (`_OMITTED_WHEN_DEFAULT`,
        and `_FREEZE_OMITTED_WHEN_DEFAULT` for freezing):
        a search trial's dict is the same as before they existed, so stored configs still compare equal.
        """
        return {
            "backbone": self.backbone,
            "tasks": list(self.tasks),
            "method": self.method,
            "method_params": dict(self.method_params),
            "sharing": self.sharing.value,
            "freeze": {
                key: value
                for key, value in dataclasses.asdict(self.freeze).items()
                if key not in _FREEZE_OMITTED_WHEN_DEFAULT or value != _FREEZE_OMITTED_WHEN_DEFAULT[key]
            },
            "training": {
                key: value
                for key, value in dataclasses.asdict(self.training).items()
                if key not in _OMITTED_WHEN_DEFAULT or value != _OMITTED_WHEN_DEFAULT[key]
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrialConfig":
        """Rebuild a config from `to_dict()` output, reporting every problem at once.

        Raises:
            ConfigError: unknown or missing keys, or values of the wrong kind.
        """
        problems: list[str] = []
        known = {"backbone", "tasks", "method", "method_params", "sharing", "freeze", "training"}
        unknown = sorted(set(data) - known)
        if unknown:
            problems.append(f"unknown keys {unknown}; accepted keys are {sorted(known)}")
        for key in ("backbone", "tasks", "method"):
            if key not in data:
                problems.append(f"missing key {key!r}")
        method_params = data.get("method_params", {})
        if not isinstance(method_params, Mapping):
            # dict() of a list fails with "dictionary update sequence element #0 ...", naming nothing.
            problems.append(
                f"method_params must be a mapping of name: value (such as {{rank: 8}}), got a {type(method_params).__name__} "
                f"{method_params!r}; write one 'name: value' per line under method_params"
            )
            method_params = {}
        sharing_value = data.get("sharing", SharingMode.SINGLE.value)
        try:
            sharing = SharingMode(sharing_value)
        except ValueError:
            accepted = [mode.value for mode in SharingMode]
            problems.append(f"sharing must be one of {accepted}, got {sharing_value!r}")
            sharing = SharingMode.SINGLE
        freeze = _dataclass_from(FreezeConfig, data.get("freeze", {}), "freeze", problems)
        training = _dataclass_from(TrainingConfig, data.get("training", {}), "training", problems)
        problems.extend(freeze.problems())
        problems.extend(training.problems())
        if problems:
            raise ConfigError(problems)
        return cls(
            backbone=str(data["backbone"]),
            tasks=tuple(data["tasks"]),
            method=str(data["method"]),
            method_params=dict(method_params),
            sharing=sharing,
            freeze=freeze,
            training=training,
        )


def _dataclass_from(cls: type, values: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(values, Mapping):
        problems.append(f"{where} must be a mapping, got {type(values).__name__}")
        return cls()
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        problems.append(f"unknown {where} keys {unknown}; accepted keys are {sorted(names)}")
        return cls()
    return cls(**values)
