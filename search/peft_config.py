"""A stored LoRA trial as peft's adapter_config.json, for `search.export --format peft`.

The trial's model is built on the meta device (no weights, no memory) and described by
`models.petl.peft_format.peft_lora_config`, the mapping `export_peft` writes for a trained
model: the target modules are the adapted linears' names in the Hugging Face LM, exactly.
A study holds configurations, not weights: the folder gets the config only, for users who
train with peft themselves. What peft cannot express raises `PeftFormatError` naming it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

from models.petl.peft_format import ADAPTER_CONFIG, PEFT_METHODS, PeftFormatError

__all__ = ["ADAPTER_CONFIG", "BackboneNotBuilt", "PeftFormatError", "adapter_config_text"]


class BackboneNotBuilt(FileNotFoundError):
    """The trial's project-built backbone is not under the data directory (its LM's shape is unknown)."""


def adapter_config_text(config: Mapping[str, Any], data_dir: Path) -> tuple[str, str | None]:
    """peft's adapter_config.json of a trial configuration, as peft's `save_pretrained` writes it.

    Args:
        config: a trial's stored configuration (`TrialConfig.to_dict()`).
        data_dir: where a project-built (embedded) backbone lives; base-size backbones build
            from their preset's config and need nothing there.

    Returns:
        The file's text and the base model it names (None when unknown).

    Raises:
        PeftFormatError: the method is not LoRA, its pairs differ per task, or LM weights other
            than LoRA and biases train.
        BackboneNotBuilt: an embedded backbone is missing under `data_dir`.
        ConfigError: the stored configuration does not rebuild.
    """
    from models.build import build_vl_model
    from models.config import TrialConfig
    from models.location import BackboneLocation
    from models.petl import get_method
    from models.petl.peft_format import peft_lora_config, per_task

    trial = TrialConfig.from_dict(config)
    if trial.method not in PEFT_METHODS:
        raise PeftFormatError(f"method {trial.method!r} is not LoRA or DoRA; peft's LoRA format cannot express it")
    location = BackboneLocation.resolve(trial.backbone, data_dir)
    if location.preset.embedded and not Path(location.language_model).is_dir():
        raise BackboneNotBuilt(
            f"backbone {trial.backbone!r} is not built under {data_dir}; pass the --data-dir the study was launched with"
        )
    model, _ = build_vl_model(trial, location, meta=True)
    if per_task(model):
        raise PeftFormatError(
            f"LoRA with sharing {trial.sharing.value!r} trains one LoRA per task ({', '.join(trial.tasks)}); a peft adapter holds one"
        )
    base_model = location.preset.language_model or location.language_model
    peft_config = peft_lora_config(model, get_method(trial.method).make_config(trial.method_params, trial.sharing), base_model=base_model)
    with tempfile.TemporaryDirectory(prefix="vlpetl-peft-") as folder:
        peft_config.save_pretrained(folder)  # peft's own serialisation (sets as lists, its version fields)
        return (Path(folder) / ADAPTER_CONFIG).read_text(), base_model
