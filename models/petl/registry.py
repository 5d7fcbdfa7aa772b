"""The PETL method registry: one entry per method file; a method is chosen by its key.

Each method module defines a config dataclass (validated in `problems()`), an `apply()` that
inserts its modules into a `VLSeq2Seq`, and a `suggest()` that samples its hyperparameters
from any object with Optuna's `suggest_*` interface (so `models` never imports Optuna).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from models.config import ConfigError, FreezeConfig, SharingMode


@dataclass(frozen=True)
class MethodSpec:
    """How to configure, insert and search one PETL method.

    Attributes:
        name: the registry key stored in `TrialConfig.method`.
        paper: where the method comes from.
        config_cls: dataclass of the method's hyperparameters, with `problems() -> list[str]`.
        apply: inserts the method's modules: `apply(model, config, sharing)`.
        suggest: samples `method_params` from a trial: `suggest(trial) -> dict`.
        freeze: what else trains by default (the paper's choice for this method).
        sharing_modes: the sharing modes that make sense for this method.
        learning_rate: the paper's learning rate for this method (PAPER.md §4).
        identity_at_init: the adapted model computes exactly what the backbone does until trained.
        sharing_note: why only `sharing_modes` make sense, shown when another mode is asked for.
    """

    name: str
    paper: str
    config_cls: type
    apply: Callable[..., None]
    suggest: Callable[[Any], dict]
    freeze: FreezeConfig
    sharing_modes: tuple[SharingMode, ...]
    learning_rate: float
    identity_at_init: bool = False
    sharing_note: str = ""

    def make_config(self, params: Mapping[str, Any], sharing: SharingMode) -> Any:
        """Build and validate the method's config, reporting every problem at once.

        Raises:
            ConfigError: unknown parameter names, bad values, or an unsupported sharing mode.
        """
        import dataclasses

        problems = []
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            problems.append(f"method {self.name!r} has no parameters {unknown}; accepted: {sorted(names)}")
        if sharing not in self.sharing_modes:
            accepted = [m.value for m in self.sharing_modes]
            note = f" ({self.sharing_note})" if self.sharing_note else ""
            problems.append(
                f"method {self.name!r} does not support sharing {sharing.value!r}; use one of {accepted}{note}"
            )
        # JSON turns tuples into lists; configs are frozen and compare by value, so normalise.
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if k in names}
        config = self.config_cls(**values)
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


def _load_builtin_methods() -> None:
    # Importing a method module registers it; the list lives in one place.
    from models.petl import adapter, baselines, compacter, hyperformer, lora, prompt  # noqa: F401
