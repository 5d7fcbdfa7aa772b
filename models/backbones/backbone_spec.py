"""A backbone named by its parts: `clip=ARCH:CHECKPOINT,lm=DIR_OR_HUB_ID[,proj=FILE]`.

ARCH is an open_clip architecture (`open_clip.list_models()`) whose tower has a spatial grid
(open_clip's own ViTs and ModifiedResNets); CHECKPOINT a `.safetensors` file, a `.pt`/`.bin`
state dict (read with `torch.load(weights_only=True)`: no code is unpickled) or an open_clip
pretrained tag already in the local cache; `lm` a `save_pretrained` directory or a hub id
already in the Hugging Face cache, of the T5 (T5, T5 v1.1, Flan-T5, mT5) or BART families;
`proj`, optional, a trained V->L projection (the `vl_projection.safetensors` that
`python -m training.vl_pretrain --data ... --out DIR` writes beside the language model it
trained): without it, trials start the projection from random weights, as the paper does
without VL pretraining.

A spec is described from the files themselves, so parameter counts are the user's model's:
the tower's grid, width and image size from its open_clip config, the language model from its
`config.json` and tokenizer (counted on the meta device by `models.lm_loading`). Its canonical
text (absolute paths) is the backbone's name, stored with the study and the recipe.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from models.backbones.presets import PRESETS, BackbonePreset
from models.config import ConfigError

SPEC_KEYS = ("clip", "lm", "proj")
REQUIRED_KEYS = ("clip", "lm")
SPEC_SYNTAX = "clip=ARCH:CHECKPOINT,lm=DIR_OR_HUB_ID[,proj=FILE] (e.g. clip=ViT-B-32:/weights/clip.safetensors,lm=/weights/flan-t5-base)"
LM_FAMILIES = ("t5", "mt5", "bart", "mbart")  # models.backbones.sites maps their PETL sites
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".bin", ".pth")
# Any one of these makes a folder's tokenizer loadable (fast, sentencepiece or byte-level BPE).
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "sentencepiece.bpe.model", "vocab.json")
# The paper pools RN101's 7x7 grid to 6x6 = 36 visual tokens (PAPER.md §1); a finer grid is
# pooled to the same, a coarser one kept.
PAPER_GRID = 6


def is_backbone_spec(name: str) -> bool:
    """A spec, not a preset name: preset names never contain '='."""
    return "=" in name


@dataclass(frozen=True)
class BackboneSpec:
    """The parts of a backbone; `text` is the canonical spec (absolute paths)."""

    clip_arch: str
    clip_checkpoint: str
    language_model: str
    vl_projection: str | None = None

    @property
    def text(self) -> str:
        text = f"clip={self.clip_arch}:{self.clip_checkpoint},lm={self.language_model}"
        return text if self.vl_projection is None else f"{text},proj={self.vl_projection}"


def parse_backbone_spec(text: str) -> BackboneSpec:
    """Parse the syntax only; paths become absolute (relative ones start at the working directory).

    Raises:
        ConfigError: missing or unknown keys, empty parts, a repeated key.
    """
    parts: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            _syntax(text, f"{item.strip()!r} is not KEY=VALUE")
        if key not in SPEC_KEYS:
            _syntax(text, f"unknown key {key!r} (keys: clip, lm, proj)")
        if key in parts:
            _syntax(text, f"{key}= is given twice")
        parts[key] = value
    missing = [key for key in REQUIRED_KEYS if key not in parts]
    if missing:
        _syntax(text, f"{' and '.join(k + '=' for k in missing)} missing")
    arch, sep, checkpoint = parts["clip"].partition(":")
    if not sep or not arch.strip() or not checkpoint.strip():
        _syntax(text, f"clip={parts['clip']!r} is not ARCH:CHECKPOINT")
    projection = str(Path(parts["proj"]).expanduser().resolve()) if "proj" in parts else None
    return BackboneSpec(arch.strip(), _absolute_if_path(checkpoint.strip()), _absolute_if_path(parts["lm"]), projection)


def _syntax(text: str, problem: str) -> None:
    raise ConfigError([f"spec {text!r}: {problem}; write {SPEC_SYNTAX}, or name a preset"])


def _absolute_if_path(value: str) -> str:
    # A hub id ("google/flan-t5-base") or an open_clip tag ("openai") stays as written; a value
    # that names something on disk, or looks like a path, is made absolute so the stored spec
    # means the same from any working directory.
    path = Path(value).expanduser()
    if path.exists() or path.is_absolute() or value.startswith(".") or value.endswith(CHECKPOINT_SUFFIXES):
        return str(path.resolve())
    return value


def canonical_backbone(name: str) -> str:
    """What a study or recipe stores: a known preset's name as given, or a spec's canonical text
    once every part checks out.

    Raises:
        ConfigError: one problem, worded to follow "backbone " or "--backbone ": an unknown
            preset, bad spec syntax or a part that does not check out.
    """
    if is_backbone_spec(name):
        return spec_preset(name).name
    if name not in PRESETS:
        raise ConfigError([f"{name!r} is unknown; known backbones: {', '.join(sorted(PRESETS))}; or a spec {SPEC_SYNTAX}"])
    return name


def spec_preset(text: str) -> BackbonePreset:
    """The backbone a spec names, described from its files (cached per canonical text).

    Raises:
        ConfigError: bad syntax, an unknown architecture, a tower without a grid, a checkpoint
            that is missing, a directory or does not fit the architecture, a language model that
            is missing, has no tokenizer or is of an unsupported family.
    """
    return _describe(parse_backbone_spec(text))


@functools.lru_cache(maxsize=16)
def _describe(spec: BackboneSpec) -> BackbonePreset:
    from models.backbones.availability import language_model_dir
    from models.backbones.spec_checks import check_checkpoint, tower_grid

    grid, image_size = tower_grid(spec.clip_arch)
    check_checkpoint(spec.clip_arch, spec.clip_checkpoint)
    folder = language_model_dir(spec.language_model)
    if folder is None:
        raise ConfigError(
            [
                f"lm={spec.language_model!r} is neither a directory nor a hub model in the Hugging Face cache "
                "(nothing is downloaded): give a save_pretrained directory or a cached hub id"
            ]
        )
    d_model = _check_language_model(spec.language_model, folder)
    if spec.vl_projection is not None:
        _check_projection(spec.vl_projection, d_model)
    return BackbonePreset(
        name=spec.text,
        clip_model=spec.clip_arch,
        clip_pretrained=spec.clip_checkpoint,
        grid=min(grid, PAPER_GRID),
        language_model=spec.language_model,
        embedded=False,
        image_size=image_size,
        vl_projection=spec.vl_projection,
    )


def _check_language_model(name: str, folder: Path) -> int | None:
    """Refuse what cannot be this project's language model; returns its width (d_model)."""
    config_file = folder / "config.json"
    try:
        config = json.loads(config_file.read_text())
        model_type = config.get("model_type")
    except (OSError, ValueError) as error:
        raise ConfigError(
            [f"lm={name!r}: {config_file} is not a readable config.json ({error}); give a save_pretrained directory"]
        ) from None
    if model_type not in LM_FAMILIES:
        raise ConfigError(
            [
                f"lm={name!r} is a {model_type!r} model; accepted: encoder-decoder models of the T5 family (t5, mt5: T5, "
                f"T5 v1.1, Flan-T5, mT5) or the BART family (bart, mbart)"
            ]
        )
    if not any((folder / file).is_file() for file in TOKENIZER_FILES):
        raise ConfigError(
            [
                f"lm={name!r} has no tokenizer in {folder} (none of {', '.join(TOKENIZER_FILES)}); "
                "save it beside the model: tokenizer.save_pretrained(DIR)"
            ]
        )
    width = config.get("d_model")
    return int(width) if isinstance(width, int) else None


# The projection's first layer maps a visual feature to the LM's width (models.vl_model).
PROJECTION_WEIGHT = "feat_proj.0.weight"


def _check_projection(path: str, d_model: int | None) -> None:
    """A V->L projection file that a trial can load into this language model's width."""
    from safetensors import SafetensorError, safe_open

    file = Path(path)
    rerun = "write it with python -m training.vl_pretrain --backbone SPEC --data DATA --out DIR, or drop proj="
    if not file.is_file():
        raise ConfigError([f"proj={path!r} {'is a directory' if file.is_dir() else 'does not exist'}; {rerun}"])
    try:
        with safe_open(str(file), "pt") as handle:
            shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigError([f"proj={path!r} is not a readable safetensors file ({error}); {rerun}"]) from None
    weight = shapes.get(PROJECTION_WEIGHT)
    if weight is None or len(weight) != 2:
        raise ConfigError([f"proj={path!r} holds no V->L projection ({PROJECTION_WEIGHT} missing); {rerun}"])
    if d_model is not None and weight[0] != d_model:
        raise ConfigError(
            [f"proj={path!r} projects to width {weight[0]}, but the language model's d_model is {d_model}; "
             "give the projection trained with this language model"]
        )  # fmt: skip
