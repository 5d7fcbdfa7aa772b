"""Where a base-size preset's weights are on this machine, and what to say when they are not.

Nothing is downloaded at run time. A language model is found as a local directory or in the
Hugging Face cache; a CLIP checkpoint as a local file or in the cache open_clip reads (the hub's
`timm/...openai` repositories, or the `~/.cache/clip` files of OpenAI's URLs). Where weights
live is a fact of the machine, not of the study, so the overrides are environment variables
(like HF_HOME): every worker of a shared study finds its own copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from models.backbones.presets import BackbonePreset

LANGUAGE_MODEL_ENV = "VLPETL_LANGUAGE_MODEL"  # a local save_pretrained directory
CLIP_CHECKPOINT_ENV = "VLPETL_CLIP_CHECKPOINT"  # a local open_clip checkpoint file
# open_clip's hub checkpoints: the safetensors file it prefers, then the pickle-free .bin it
# loads with weights_only=True.
_OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@dataclass(frozen=True)
class WeightSources:
    """The language model and CLIP weights a base-size preset will load, and what is missing.

    Attributes:
        language_model: hub name or local directory.
        clip_checkpoint: open_clip pretrained tag or local checkpoint file; None without a tower.
        clip_quick_gelu: the CLIP weights were trained with QuickGELU (OpenAI's); open_clip sets
            it from the tag, but a checkpoint file must say so explicitly.
        missing: one line per component whose weights are not on disk.
    """

    language_model: str
    clip_checkpoint: str | None
    clip_quick_gelu: bool
    missing: tuple[str, ...]


def weight_sources(preset: BackbonePreset) -> WeightSources:
    """Resolve a base-size preset's weights on this machine, honouring the overrides."""
    language_model = os.environ.get(LANGUAGE_MODEL_ENV) or str(preset.language_model)
    missing = []
    if not language_model_on_disk(language_model):
        missing.append(
            f"the language model {language_model!r} is neither a local directory nor in the Hugging Face cache "
            f"({_hub_cache()}): download it where there is internet (huggingface-cli download {preset.language_model}) "
            f"and copy the cache here or point HF_HOME at it, or set {LANGUAGE_MODEL_ENV}=DIR to a save_pretrained directory"
        )
    clip_checkpoint = preset.clip_pretrained
    if preset.clip_model is not None and preset.clip_pretrained is not None:
        clip_checkpoint = os.environ.get(CLIP_CHECKPOINT_ENV) or preset.clip_pretrained
        if not clip_weights_on_disk(preset.clip_model, clip_checkpoint):
            missing.append(
                f"the CLIP {preset.clip_model} weights {clip_checkpoint!r} are not on disk: download them where there is "
                f"internet ({_clip_download_hint(preset.clip_model, preset.clip_pretrained)}) and copy the cache here, "
                f"or set {CLIP_CHECKPOINT_ENV}=FILE to an open_clip checkpoint (.safetensors or a state dict)"
            )
    return WeightSources(language_model, clip_checkpoint, clip_quick_gelu(preset), tuple(missing))


def clip_quick_gelu(preset: BackbonePreset) -> bool:
    """Whether the preset's CLIP weights were trained with QuickGELU (OpenAI's were)."""
    if preset.clip_model is None or preset.clip_pretrained is None:
        return False
    return bool(_pretrained_cfg(preset.clip_model, preset.clip_pretrained).get("quick_gelu", False))


def language_model_on_disk(name: str) -> bool:
    """A local directory, or a hub model already in the cache; never a network call."""
    return language_model_dir(name) is not None


def language_model_dir(name: str) -> Path | None:
    """The directory a language model loads from: `name` itself, or its hub cache snapshot."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repository id (e.g. a path that does not exist)
        return None
    return Path(config).parent if isinstance(config, str) else None


def clip_weights_on_disk(model: str, checkpoint: str) -> bool:
    """A local checkpoint file, or the tag's checkpoint already in open_clip's caches."""
    return clip_checkpoint_file(model, checkpoint) is not None


def clip_checkpoint_file(model: str, checkpoint: str) -> Path | None:
    """The file open_clip loads for a checkpoint: `checkpoint` itself, or the tag's cached file."""
    if Path(checkpoint).is_file():
        return Path(checkpoint)
    cfg = _pretrained_cfg(model, checkpoint)
    if not cfg:
        return None
    from huggingface_hub import try_to_load_from_cache

    repo, filename = os.path.split(cfg.get("hf_hub", ""))
    if repo:
        candidates = _OPEN_CLIP_FILES if not filename else (_OPEN_CLIP_FILES[0], filename)
        for name in candidates:
            cached = try_to_load_from_cache(repo, name)
            if isinstance(cached, str):
                return Path(cached)
    url = cfg.get("url", "")
    cached_url = Path("~/.cache/clip").expanduser() / os.path.basename(url)
    return cached_url if url and cached_url.is_file() else None


def _clip_download_hint(model: str, tag: str) -> str:
    repo = os.path.split(_pretrained_cfg(model, tag).get("hf_hub", ""))[0]
    return f"huggingface-cli download {repo}" if repo else f"open_clip.create_model({model!r}, pretrained={tag!r})"


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _pretrained_cfg(model: str, tag: str) -> dict:
    # Imported here, not at the top: open_clip imports torchvision and transformers (seconds),
    # which a command that only checks its flags, or resolves an embedded backbone, never needs.
    import open_clip

    return open_clip.get_pretrained_cfg(model, tag)
