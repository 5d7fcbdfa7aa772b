"""TrialConfig -> model: backbone, V->L projection, PETL modules and freezing policy.

A language model comes from one of three routes:

- pretrained: the embedded tiny backbone's directory, or a hub model already on disk;
- config-only: a base-size preset's explicit architecture (models.backbones.presets), built on
  the meta device for exact counting (always, so counts never depend on what is cached), or
  with random initialisation when the weights are absent. No tokenizer exists on this route:
  the 200 visual-order rows are appended to the word embedding, and the model is built with
  `tokenizer=None`.

A VL-pretrained preset's folder also holds the trained V->L projection
(`vl_projection.safetensors`), loaded strictly into `model.visual_embedding` (not on meta).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import open_clip
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from models.backbones.clip_encoder import GridEncoder, build_grid_encoder, grid_path_parameters
from models.backbones.language_model import (
    NUM_VISUAL_ORDER_TOKENS,
    add_visual_order_tokens,
    load_language_model,
    visual_order_tokens,
)
from models.backbones.availability import clip_quick_gelu, weight_sources
from models.backbones.presets import PRESETS, BackbonePreset, get_preset
from models.backbones.sites import is_layernorm, word_embedding_modules
from models.config import VIDEO_TASK_NAMES, VISUAL_ENCODER_POLICIES, ConfigError, TrialConfig
from models.embedded import embedded_dir
from models.petl.registry import get_method
from models.vl_model import VisualEmbedding, VLSeq2Seq

log = logging.getLogger(__name__)

VL_PROJECTION_FILE = "vl_projection.safetensors"
RANDOM_INIT_SEED = 0  # of a random-init CLIP tower, fixed so that its cached features stay valid
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
        if not preset.embedded:
            if random_init:
                tokenizer_preset = RANDOM_INIT_TOKENIZERS[preset.lm_config["model_type"]]
                return cls(
                    preset, preset.clip_model, None, str(preset.language_model), weights_available=False,
                    clip_quick_gelu=clip_quick_gelu(preset), random_init=True,
                    tokenizer_preset=tokenizer_preset,
                    tokenizer_dir=str(embedded_dir(data_dir, get_preset(tokenizer_preset)) / "language_model"),
                )
            sources = weight_sources(preset)
            return cls(
                preset, preset.clip_model, sources.clip_checkpoint, sources.language_model, not sources.missing,
                missing_weights=sources.missing, clip_quick_gelu=sources.clip_quick_gelu,
            )
        if random_init:
            raise ConfigError(
                [f"--random-init builds a base-size preset from its config; {name!r} is pretrained by the project "
                 "on first use: drop --random-init, or pick one of " + ", ".join(sorted(p for p in PRESETS if not PRESETS[p].embedded))]
            )
        root = embedded_dir(data_dir, preset)
        config_file = root / "clip" / f"{preset.clip_model}.json"
        if config_file.exists():
            open_clip.add_model_config(config_file)
        # A VL-pretrained preset must have its projection (a missing file fails the build loudly).
        projection = root / VL_PROJECTION_FILE
        vl_projection = str(projection) if preset.vl_pretrained_from is not None or projection.exists() else None
        return cls(
            preset, preset.clip_model, str(root / "clip" / "open_clip_model.safetensors"), str(root / "language_model"),
            vl_projection=vl_projection,
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


def build_visual_encoder(location: BackboneLocation) -> tuple[GridEncoder, object]:
    """The frozen CLIP grid encoder and its image transform."""
    if location.clip_model is None:
        raise ValueError(f"backbone {location.preset.name!r} reads precomputed features and has no image encoder")
    location.require_weights()
    if location.random_init:
        # Seeded, so every worker extracts the same features and the cache key holds.
        with torch.random.fork_rng():
            torch.manual_seed(RANDOM_INIT_SEED)
            encoder, preprocess = build_grid_encoder(location.clip_model, None, location.preset.grid, location.clip_quick_gelu)
    else:
        encoder, preprocess = build_grid_encoder(
            location.clip_model, location.clip_checkpoint, location.preset.grid, location.clip_quick_gelu
        )
    encoder.requires_grad_(False)
    return encoder, preprocess


def build_vl_model(
    config: TrialConfig, location: BackboneLocation, meta: bool = False
) -> tuple[VLSeq2Seq, PreTrainedTokenizerBase | None]:
    """Build the VL model of a trial with its PETL modules inserted and its freezing applied.

    Args:
        config: the trial.
        location: where the backbone's weights live.
        meta: build on the meta device (no memory, no weight loading) for parameter counting.

    Returns:
        The model and its tokenizer; the tokenizer is None on the config-only route.

    Raises:
        ConfigError: the method, its parameters, its sharing mode or the freezing are invalid
            (every problem listed).
    """
    spec = get_method(config.method)
    problems = list(config.freeze.problems())
    try:
        method_config = spec.make_config(config.method_params, config.sharing)
    except ConfigError as error:
        problems = error.problems + problems
    problems.extend(config.training.problems())
    trains_clip = config.freeze.visual_encoder in VISUAL_ENCODER_POLICIES and config.freeze.visual_encoder != "frozen"
    if trains_clip and location.clip_model is None:
        problems.append(
            f"freeze.visual_encoder={config.freeze.visual_encoder!r}: backbone {location.preset.name!r} reads "
            "precomputed features and has no CLIP image tower to train; use 'frozen'"
        )
    if trains_clip and set(config.tasks) & set(VIDEO_TASK_NAMES):
        problems.append(
            f"freeze.visual_encoder={config.freeze.visual_encoder!r} with video tasks "
            f"{sorted(set(config.tasks) & set(VIDEO_TASK_NAMES))}: video tasks read cached per-frame features; "
            "train CLIP on image tasks only, or use 'frozen'"
        )
    if problems:
        raise ConfigError(problems)
    device_scope = torch.device("meta") if meta else contextlib.nullcontext()
    # Counting needs the architecture only: a trained projection has the fresh one's shapes.
    visual_state = None if meta else _trained_projection(location)
    torch.manual_seed(config.training.seed)  # new modules (V->L, PETL) start the same on every rebuild
    with device_scope:
        lm, tokenizer, order_ids = _language_model(location, meta)
        model = assemble_vl_model(config, lm, visual_feature_dim(location), order_ids, visual_state)
    if trains_clip and not meta:  # counting needs no tower: clip_visual_count counts it from its config
        encoder, _ = build_visual_encoder(location)
        attach_trainable_clip(model, encoder, config.freeze.visual_encoder)
    return model, tokenizer


def attach_trainable_clip(model: VLSeq2Seq, encoder: GridEncoder, policy: str) -> None:
    """Put the CLIP grid encoder inside the model, training what `policy` names (images then
    go through it at every step instead of coming from the feature cache)."""
    trains = grid_path_parameters(encoder.visual, policy)
    for name, parameter in encoder.visual.named_parameters():
        parameter.requires_grad_(trains.get(name, (0, False))[1])
    model.set_visual_encoder(encoder)


def assemble_vl_model(
    config: TrialConfig,
    lm: PreTrainedModel,
    feat_dim: int,
    order_token_ids: list[int],
    visual_state: Mapping[str, torch.Tensor] | None = None,
) -> VLSeq2Seq:
    """Wrap a language model into the VL layout, insert the trial's PETL modules, apply freezing.

    Args:
        config: the trial (method, parameters, sharing, freezing, tasks).
        lm: a T5 or BART model whose word embedding already holds the visual-order rows.
        feat_dim: dimension of one visual feature.
        order_token_ids: the rows of the visual-order tokens in the word embedding.
        visual_state: a trained V->L projection's state dict (VL pretraining), loaded strictly
            before PETL modules are inserted; None keeps the fresh projection.

    Raises:
        ConfigError: invalid method parameters or sharing mode.
        RuntimeError: `visual_state` does not fit the projection (missing, extra or
            mis-shaped tensors).
    """
    spec = get_method(config.method)
    method_config = spec.make_config(config.method_params, config.sharing)
    layernorm = _layernorm_factory(lm)
    visual = VisualEmbedding(feat_dim, lm.config.d_model, layernorm, lm.get_input_embeddings(), order_token_ids)
    if visual_state is not None:
        visual.load_state_dict(visual_state, strict=True)
    model = VLSeq2Seq(lm, visual, config.tasks)
    spec.apply(model, method_config, config.sharing)
    apply_freezing(model, config)
    return model


def _trained_projection(location: BackboneLocation) -> dict[str, torch.Tensor] | None:
    if location.vl_projection is None:
        return None
    if not Path(location.vl_projection).is_file():
        base = location.preset.vl_pretrained_from or location.preset.name
        raise FileNotFoundError(
            f"backbone {location.preset.name!r} has no trained V->L projection at {location.vl_projection}; "
            f"build it with python -m training.vl_pretrain --backbone {base}"
        )
    return load_file(location.vl_projection)


def apply_freezing(model: VLSeq2Seq, config: TrialConfig) -> None:
    """Only PETL modules and what `config.freeze` names receive gradients."""
    freeze = config.freeze
    model.requires_grad_(False)
    lm = model.lm
    if freeze.train_language_model:
        lm.requires_grad_(True)
    if freeze.train_layernorm:
        for module in lm.modules():
            if is_layernorm(module):
                module.requires_grad_(True)
    if freeze.train_embeddings:
        for module in word_embedding_modules(lm):
            module.requires_grad_(True)
    if freeze.train_lm_head and lm.get_output_embeddings() is not None:
        lm.get_output_embeddings().requires_grad_(True)
    if freeze.train_bias:
        for name, parameter in lm.named_parameters():
            if name.endswith(".bias"):
                parameter.requires_grad_(True)
    if freeze.train_vl_projection:
        model.visual_embedding.requires_grad_(True)
    petl = getattr(model, "petl", None)
    if petl is not None:
        petl.requires_grad_(True)


def _language_model(location: BackboneLocation, meta: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None, list[int]]:
    lm_config = location.preset.lm_config
    if lm_config is not None and (meta or location.random_init):
        lm, order_ids = language_model_from_config(lm_config)
        return lm, (None if meta else random_init_tokenizer(location)), order_ids
    location.require_weights()
    if not meta:
        lm, tokenizer = load_language_model(location.language_model)
    else:
        tokenizer = AutoTokenizer.from_pretrained(location.language_model)
        lm = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(location.language_model))
        add_visual_order_tokens(lm, tokenizer)
    return lm, tokenizer, tokenizer.convert_tokens_to_ids(visual_order_tokens())


def random_init_tokenizer(location: BackboneLocation) -> PreTrainedTokenizerBase:
    """The project-trained tokenizer of the preset's family, for a randomly initialised model.

    Its ids fall inside the base vocabulary and its special ids are the base model's (T5: pad 0,
    eos 1; BART: <s> 0, <pad> 1, </s> 2), so the base architecture and its exact parameter count
    are kept. The visual-order rows are the model's own appended rows, not the tokenizer's.

    Raises:
        FileNotFoundError: the embedded preset that holds the tokenizer is not built.
    """
    folder = Path(location.tokenizer_dir)
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"--random-init reads text with the tokenizer of {location.tokenizer_preset!r}, which is not built under "
            f"{folder.parent}; prepare_environment builds it (or run python -m models.pretrain)"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = location.preset.lm_config
    if (tokenizer.pad_token_id, tokenizer.eos_token_id) != (config["pad_token_id"], config["eos_token_id"]):
        raise ValueError(
            f"tokenizer in {folder} has pad/eos ids {(tokenizer.pad_token_id, tokenizer.eos_token_id)}, but "
            f"{location.preset.name!r} expects {(config['pad_token_id'], config['eos_token_id'])}"
        )
    return tokenizer


def language_model_from_config(values) -> tuple[PreTrainedModel, list[int]]:
    """A randomly initialised T5/BART from a config dict, with the visual-order rows appended.

    Builds on the current default device (wrap in `torch.device("meta")` to count only).

    Args:
        values: a transformers config as a dict, with `model_type`.

    Returns:
        The model and the ids of its 200 visual-order rows (the last rows of the embedding).
    """
    values = dict(values)
    lm_config = AutoConfig.for_model(values.pop("model_type"), **values)
    lm = AutoModelForSeq2SeqLM.from_config(lm_config)
    rows = lm.get_input_embeddings().num_embeddings
    lm.resize_token_embeddings(rows + NUM_VISUAL_ORDER_TOKENS, mean_resizing=False)
    return lm, list(range(rows, rows + NUM_VISUAL_ORDER_TOKENS))


def visual_feature_dim(location: BackboneLocation) -> int:
    """Dimension of one visual feature: the preset's, or read from the open_clip config."""
    if location.preset.feature_dim is not None:
        return location.preset.feature_dim
    # ViT grids carry the transformer width, ResNet grids the channels of layer4 (32x the
    # stem width: 2048 for RN101).
    config = open_clip.get_model_config(location.clip_model)
    if config is None:
        raise ValueError(f"open_clip knows no model {location.clip_model!r}; see open_clip.list_models()")
    vision = config["vision_cfg"]
    return int(vision["width"]) * (32 if isinstance(vision["layers"], (list, tuple)) else 1)


def _layernorm_factory(lm):
    # The V->L projection uses the LM family's own LayerNorm, as VL-T5/VL-BART do.
    for module in lm.modules():
        if is_layernorm(module) and not isinstance(module, nn.LayerNorm):
            norm_cls = type(module)
            return lambda d: norm_cls(d, eps=lm.config.layer_norm_epsilon)
    return nn.LayerNorm
