"""Where a backbone preset's weights live on this machine (BackboneLocation), or why they are missing.

An embedded preset lives under `<data>/backbones/<preset>/` (models.embedded); a base-size
preset's weights come from the hub cache or `$VLPETL_*` paths (models.backbones.availability),
or, with `random_init`, from nowhere: the preset's config is built with random weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.backbones.availability import clip_quick_gelu, language_model_dir, weight_sources
from models.backbones.backbone_spec import is_backbone_spec
from models.backbones.presets import PRESETS, BackbonePreset, get_preset
from models.config import ConfigError
from models.embedded import embedded_dir

VL_PROJECTION_FILE = "vl_projection.safetensors"
# The embedded preset whose tokenizer reads text for a random-init language model of a family.
RANDOM_INIT_TOKENIZERS = {"t5": "tiny-clip+tiny-t5", "bart": "tiny-clip+tiny-bart"}


@dataclass(frozen=True)
class BackboneLocation:
    """Where a preset's weights live: open_clip name + checkpoint, LM hub name or directory.

    Attributes:
        weights_available: every weight the preset needs can be loaded without a download.
        vl_projection: a trained V->L projection (safetensors state dict of `visual_embedding`)
            to start from instead of a fresh one; None for a fresh one.
        missing_weights: for a base-size preset, one line per component whose weights are not
            on this machine, saying how to provide them.
        clip_quick_gelu: the CLIP weights use QuickGELU (OpenAI's), which open_clip must be told
            when they come from a checkpoint file.
        random_init: build a base-size preset from its config with random weights (smoke tests):
            the language model from `preset.lm_config`, CLIP with no weights, seeded.
        tokenizer_preset: with `random_init`, the embedded preset whose project-trained tokenizer
            of the same family reads the text (the hub tokenizer is not on disk either), and
            `tokenizer_dir` the folder it is in.
    """

    preset: BackbonePreset
    clip_model: str | None
    clip_checkpoint: str | None
    language_model: str
    weights_available: bool = True
    vl_projection: str | None = None
    missing_weights: tuple[str, ...] = ()
    clip_quick_gelu: bool = False
    random_init: bool = False
    tokenizer_preset: str | None = None
    tokenizer_dir: str | None = None

    @classmethod
    def resolve(cls, name: str, data_dir: Path, random_init: bool = False) -> "BackboneLocation":
        """Raises ConfigError: unknown preset, or `random_init` for an embedded preset."""
        preset = get_preset(name)
        if is_backbone_spec(name):
            return cls._of_spec(preset, random_init)
        if not preset.embedded:
            if random_init:
                assert preset.lm_config is not None, f"base-size preset {name!r} declares no lm_config"
                tokenizer_preset = RANDOM_INIT_TOKENIZERS[preset.lm_config["model_type"]]
                return cls(
                    preset,
                    preset.clip_model,
                    None,
                    str(preset.language_model),
                    weights_available=False,
                    clip_quick_gelu=clip_quick_gelu(preset),
                    random_init=True,
                    tokenizer_preset=tokenizer_preset,
                    tokenizer_dir=str(embedded_dir(data_dir, get_preset(tokenizer_preset)) / "language_model"),
                )
            sources = weight_sources(preset)
            return cls(
                preset,
                preset.clip_model,
                sources.clip_checkpoint,
                sources.language_model,
                not sources.missing,
                missing_weights=sources.missing,
                clip_quick_gelu=sources.clip_quick_gelu,
            )
        if random_init:
            raise ConfigError(
                [
                    f"--random-init builds a base-size preset from its config; {name!r} is pretrained by the project "
                    "on first use: drop --random-init, or pick one of " + ", ".join(sorted(p for p in PRESETS if not PRESETS[p].embedded))
                ]
            )
        root = embedded_dir(data_dir, preset)
        config_file = root / "clip" / f"{preset.clip_model}.json"
        if config_file.exists():
            import open_clip  # here, not at the top: it imports torchvision and transformers (seconds)

            open_clip.add_model_config(config_file)
        # A VL-pretrained preset must have its projection (a missing file fails the build loudly).
        projection = root / VL_PROJECTION_FILE
        vl_projection = str(projection) if preset.vl_pretrained_from is not None or projection.exists() else None
        return cls(
            preset,
            preset.clip_model,
            str(root / "clip" / "open_clip_model.safetensors"),
            str(root / "language_model"),
            vl_projection=vl_projection,
        )

    @classmethod
    def _of_spec(cls, preset: BackbonePreset, random_init: bool) -> "BackboneLocation":
        # A spec names its weights (checked when it was described): no environment override
        # applies, and a hub id loads from its cached snapshot, never from the network.
        if random_init:
            raise ConfigError(
                [
                    f"--random-init builds a preset from its config; the backbone spec {preset.name!r} names its own weights: drop --random-init"
                ]
            )
        assert preset.clip_model is not None and preset.clip_pretrained is not None and preset.language_model is not None
        folder = language_model_dir(preset.language_model)
        assert folder is not None, f"{preset.language_model!r} was found when the spec was described"
        return cls(
            preset,
            preset.clip_model,
            preset.clip_pretrained,
            str(folder),
            vl_projection=preset.vl_projection,
            clip_quick_gelu=clip_quick_gelu(preset),
        )

    def require_weights(self) -> None:
        """Raises WeightsUnavailable when a component's weights are missing (and not random_init)."""
        if self.missing_weights and not self.random_init:
            raise WeightsUnavailable(self.preset.name, self.missing_weights)


class WeightsUnavailable(ConfigError):
    """A base-size preset's weights are not on this machine; the message says how to provide them."""

    def __init__(self, backbone: str, missing: tuple[str, ...]):
        super().__init__(
            [f"backbone {backbone!r} needs weights that are not on this machine (nothing is downloaded at run time)"]
            + list(missing)
            + [f"or build {backbone!r} from its config with random weights, for smoke tests and parameter counting: --random-init"]
        )
