"""The PETL method registry: one entry per method file; a method is chosen by its key.

A method is one file plus one line in `_BUILTIN_MODULES`: the file defines a config dataclass
(validated in `problems()`), an `apply()` that inserts its modules into a `VLSeq2Seq`, and
registers a `MethodSpec` that holds everything else the project knows of the method: its
sharing modes, its freezing, its learning rates, its block of the default search space and
the paper's runs of it (`RunPreset`). The default search space, the warm starts and
`search.params` are derived from the registry. Modules named in `$VLPETL_EXTRA_METHODS`
(comma-separated import paths) are loaded too, so a method can live outside the project.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from models.config import ConfigError, FreezeConfig, SharingMode, TrainingConfig, TrialConfig

EXTRA_METHODS_ENV = "VLPETL_EXTRA_METHODS"
# The built-in methods, in the order the default search space lists them.
_BUILTIN_MODULES = (
    "models.petl.adapter",
    "models.petl.hyperformer",
    "models.petl.compacter",
    "models.petl.lora",
    "models.petl.dora",
    "models.petl.prompt",
    "models.petl.vl_pet",
    "models.petl.baselines",
    "models.petl.lst",
)
# The freezing flags the default search space searches for a method besides its own block
# (search.space_file gives their choices; visual_encoder only where CLIP is counted). A method
# whose freezing is its definition (the baselines), or whose paper freezing a flag contradicts,
# names fewer in `MethodSpec.searched_freeze`. train_lm_head is left out: it is the word
# embedding in BART-base and T5-base (tied), so train_embeddings already searches it there.
SEARCHED_FREEZE = ("train_layernorm", "train_bias", "train_vl_projection", "train_embeddings", "visual_encoder")


@dataclass(frozen=True)
class RunPreset:
    """One of the paper's runs of a method, backbone and tasks left open.

    Attributes:
        name: the preset key.
        description: what the paper calls it.
        method: PETL registry key.
        method_params: the method's parameters as the paper ran them.
        sharing: sharing mode across tasks.
        freeze: what trains besides the PETL modules.
        learning_rate: the paper's learning rate (PAPER.md §4, image tasks).
        paper_trainable_pct: its published trainable % on `paper_backbone`, image tasks (PAPER.md §6).
        paper_backbone: the backbone preset the published % was measured on (CLIP-BART unless
            the method's paper ran another, e.g. LST's CLIP-T5).
        size_sibling: a preset whose sizes this one ran with (no % of its own published).
        warm_start_rank: its place among a study's warm starts (1 first: the paper's strongest);
            None: not a warm start (full fine-tuning is the reference trial instead).
    """

    name: str
    description: str
    method: str
    method_params: Mapping[str, Any] = field(default_factory=dict)
    sharing: SharingMode = SharingMode.SINGLE
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    learning_rate: float = 1e-3
    paper_trainable_pct: float | None = None
    paper_backbone: str = "clip-rn101+bart-base"
    size_sibling: str | None = None
    warm_start_rank: int | None = None

    def trial_config(self, backbone: str, tasks: tuple[str, ...], training: TrainingConfig | None = None) -> TrialConfig:
        """This run as a `TrialConfig` on `backbone` and `tasks`, with the paper's learning rate."""
        training = dataclasses.replace(training or TrainingConfig(), learning_rate=self.learning_rate)
        return TrialConfig(
            backbone=backbone,
            tasks=tuple(tasks),
            method=self.method,
            method_params=dict(self.method_params),
            sharing=self.sharing,
            freeze=self.freeze,
            training=training,
        )


@dataclass(frozen=True)
class MethodSpec:
    """How to configure, insert and search one PETL method.

    Attributes:
        name: the registry key stored in `TrialConfig.method`.
        paper: where the method comes from.
        config_cls: dataclass of the method's hyperparameters, with `problems() -> list[str]`.
        apply: inserts the method's modules: `apply(model, config, sharing)`.
        freeze: what else trains by default (the paper's choice for this method).
        sharing_modes: the sharing modes that make sense for this method.
        learning_rate: the paper's learning rate for this method (PAPER.md §4).
        identity_at_init: the adapted model computes exactly what the backbone does until trained.
        sharing_note: why only `sharing_modes` make sense, shown when another mode is asked for.
        search: the method's block of the default search space, in the space-file syntax
            (search.space_file): each parameter a list of choices or a {low, high, log, step}
            range, and optionally `sharing`, `learning_rate_scale`, `freeze.<flag>`.
        tiny_learning_rate: the base rate on the embedded tiny backbone, when not the paper's
            (tuned for 20 epochs at base size; a few hundred CPU steps on a tiny model need more).
        presets: the paper's runs of this method.
        backbone_problems: checks that need the backbone, `(method config, LM config or None,
            FreezeConfig or None) -> list[str]`: run with the other checks before anything is
            built (models.validation), also on a config with invalid values (skip those).
        lm_problems: checks of the method's config against the loaded language model's weights
            (`lm_problems(config, lm) -> list[str]`, shapes only, so the meta-device build used
            for counting runs them too), for what the LM config cannot tell (PiSSA's rank
            against each targeted weight's shape).
        searched_freeze: the `FreezeConfig` flags the default space searches for this method
            (`SEARCHED_FREEZE` unless the method says otherwise); its block may still name others.
    """

    name: str
    paper: str
    config_cls: type
    apply: Callable[..., None]
    freeze: FreezeConfig
    sharing_modes: tuple[SharingMode, ...]
    learning_rate: float
    identity_at_init: bool = False
    sharing_note: str = ""
    search: Mapping[str, Any] = field(default_factory=dict)
    tiny_learning_rate: float | None = None
    presets: tuple[RunPreset, ...] = ()
    backbone_problems: Callable[[Any, Any, FreezeConfig | None], list[str]] | None = None
    lm_problems: Callable[[Any, Any], list[str]] | None = None
    searched_freeze: tuple[str, ...] = SEARCHED_FREEZE

    def unchecked_config(self, params: Mapping[str, Any]) -> Any:
        """The method's config from `params`, unknown names dropped and nothing validated."""
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        # JSON turns tuples into lists; configs are frozen and compare by value, so normalise.
        return self.config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if k in names})

    def make_config(self, params: Mapping[str, Any], sharing: SharingMode) -> Any:
        """Build and validate the method's config, reporting every problem at once.

        Raises:
            ConfigError: unknown parameter names, bad values, or an unsupported sharing mode.
        """
        problems = []
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            problems.append(f"method {self.name!r} has no parameters {unknown}; accepted: {sorted(names)}")
        if sharing not in self.sharing_modes:
            accepted = [m.value for m in self.sharing_modes]
            note = f" ({self.sharing_note})" if self.sharing_note else ""
            problems.append(f"method {self.name!r} does not support sharing {sharing.value!r}; use one of {accepted}{note}")
        config = self.unchecked_config(params)
        problems.extend(config.problems())
        if problems:
            raise ConfigError(problems)
        return config


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"PETL method {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    """Look a method up by key.

    Raises:
        ConfigError: the key is unknown; the message lists the known keys.
    """
    _load_builtin_methods()
    if name not in _REGISTRY:
        raise ConfigError([f"unknown PETL method {name!r}; known methods: {sorted(_REGISTRY)}"])
    return _REGISTRY[name]


def method_names() -> list[str]:
    _load_builtin_methods()
    return sorted(_REGISTRY)


def methods() -> list[MethodSpec]:
    """Every registered method, built-in ones first in the default space's order."""
    _load_builtin_methods()
    return list(_REGISTRY.values())


def run_presets() -> dict[str, RunPreset]:
    """Every method's paper runs by preset name."""
    return {preset.name: preset for spec in methods() for preset in spec.presets}


def _load_builtin_methods() -> None:
    # Importing a method module registers it.
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    for module in (name.strip() for name in os.environ.get(EXTRA_METHODS_ENV, "").split(",")):
        if not module:
            continue
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConfigError([f"${EXTRA_METHODS_ENV} names {module!r}, which cannot be imported ({error}); fix the module path"]) from None
