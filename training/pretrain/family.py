"""Build the embedded tiny backbones: pretrain, measure, save in the real checkpoint formats."""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import open_clip
import torch
from safetensors.torch import save_file

from models.backbones.clip_encoder import tiny_clip_config, write_open_clip_config
from models.backbones.language_model import add_visual_order_tokens, tiny_t5, train_unigram_tokenizer
from models.backbones.tiny_bart import tiny_bart, train_bpe_tokenizer
from training.pretrain.clip_contrastive import chance_recall_at_1, encode_images, pretrain_clip, retrieval_recall_at_1
from training.pretrain.corpus import Corpus
from training.pretrain.seq2seq import perplexity, pretrain
from training.pretrain.span_corruption import corrupt_spans, sentinel_tokens
from training.pretrain.text_infilling import infill

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

STEPS_ENV = "VLPETL_PRETRAIN_STEPS"
TOKENIZER_VOCAB = 1000
N_SENTINELS = 20


def steps_from_env(name: str, what: str) -> int | None:
    """A positive step count from environment variable `name`, or None when it is unset.

    Raises:
        ValueError: the variable is set but not a positive integer.
    """
    raw = os.environ.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r} must be a positive integer number of {what}")
    return int(raw)


@dataclass(frozen=True)
class PretrainSettings:
    """Sizes of the miniature pretraining runs (defaults fit 2 CPU cores in a few minutes)."""

    n_scenes: int = 3000
    held_out: int = 300
    clip_steps: int = 300
    clip_batch: int = 64
    lm_steps: int = 400
    lm_batch: int = 32
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_env(cls) -> "PretrainSettings":
        """Defaults, or a quicker family when VLPETL_PRETRAIN_STEPS is set (smoke tests, CI).

        Raises:
            ValueError: the variable is not a positive integer.
        """
        steps = steps_from_env(STEPS_ENV, "pretraining steps")
        if steps is None:
            return cls()
        return cls(n_scenes=min(cls.n_scenes, max(800, 8 * steps)), clip_steps=steps, lm_steps=steps)


def build_clip(folder: Path, model_name: str, image_size: int, corpus: Corpus, settings: PretrainSettings) -> dict:
    """Pretrain the tiny CLIP contrastively and save `<model_name>.json` + `open_clip_model.safetensors`."""
    config_file = folder / f"{model_name}.json"
    write_open_clip_config(config_file, tiny_clip_config(image_size))
    open_clip.add_model_config(config_file)
    torch.manual_seed(settings.seed)
    # open_clip warns that a model without pretrained weights is random: here that is the point.
    logging.disable(logging.WARNING)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
    finally:
        logging.disable(logging.NOTSET)
    tokenizer = open_clip.get_tokenizer(model_name)
    pixels = encode_images(preprocess, corpus.images)
    train, held = slice(settings.held_out, None), slice(0, settings.held_out)
    held_captions = [refs[0] for refs in corpus.references[held]]
    before = retrieval_recall_at_1(model, tokenizer, pixels[held], held_captions)
    curve = pretrain_clip(
        model, tokenizer, pixels[train], corpus.references[train], settings.clip_steps, settings.clip_batch, seed=settings.seed
    )
    after = retrieval_recall_at_1(model, tokenizer, pixels[held], held_captions)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return {
        "recall_at_1_before": before,
        "recall_at_1_after": after,
        "recall_at_1_chance": chance_recall_at_1(held_captions),
        "held_out_pairs": settings.held_out,
        "loss_curve": curve,
    }


def build_language_model(folder: Path, family: str, corpus: Corpus, settings: PretrainSettings) -> dict:
    """Train a tokenizer, pretrain a tiny T5 (span corruption) or BART (text infilling), save both."""
    held_texts, train_texts = corpus.texts[: settings.held_out], corpus.texts[settings.held_out :]
    model: PreTrainedModel
    if family == "t5":
        tokenizer = train_unigram_tokenizer(train_texts, TOKENIZER_VOCAB)
        tokenizer.add_special_tokens({"additional_special_tokens": sentinel_tokens(N_SENTINELS)})
        model = tiny_t5(vocab_size=len(tokenizer), seed=settings.seed)
        # A list of tokens gives a list of ids (transformers types the str and list cases as one).
        sentinels = cast(list[int], tokenizer.convert_tokens_to_ids(sentinel_tokens(N_SENTINELS)))
        corrupt = functools.partial(_t5_corrupt, sentinels=sentinels, eos=tokenizer.eos_token_id)
    elif family == "bart":
        tokenizer = train_bpe_tokenizer(train_texts, TOKENIZER_VOCAB)
        model = tiny_bart(vocab_size=len(tokenizer), seed=settings.seed)
        corrupt = functools.partial(_bart_corrupt, mask=tokenizer.mask_token_id)
    else:
        raise ValueError(f"unknown language-model family {family!r}; use 't5' or 'bart'")
    before = perplexity(model, tokenizer, held_texts, corrupt)
    curve = pretrain(
        model, tokenizer, train_texts, corrupt, settings.lm_steps, settings.lm_batch, seed=settings.seed, desc=f"pretrain {family}"
    )
    after = perplexity(model, tokenizer, held_texts, corrupt)
    add_visual_order_tokens(model, tokenizer)  # saved with the checkpoint, like a VL-pretrained model
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"perplexity_before": before, "perplexity_after": after, "held_out_texts": len(held_texts), "loss_curve": curve}


def _t5_corrupt(ids: list[int], rng, sentinels: list[int], eos: int) -> tuple[list[int], list[int]]:
    source, target = corrupt_spans(ids[:-1], sentinels, rng)  # ids end with </s>
    return source + [eos], target + [eos]


def _bart_corrupt(ids: list[int], rng, mask: int) -> tuple[list[int], list[int]]:
    # Keep <s> ... </s> in place; infill the words between them; the target is the clean text.
    return [ids[0]] + infill(ids[1:-1], mask, rng) + [ids[-1]], list(ids)


def write_metrics(folder: Path, metrics: dict) -> None:
    (folder / "pretraining_metrics.json").write_text(json.dumps(metrics, indent=2))
