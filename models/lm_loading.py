"""The language model of a backbone and its tokenizer, by one of three routes.

- pretrained: the embedded tiny backbone's directory, or a hub model already on disk;
- config-only: a base-size preset's explicit architecture (models.backbones.presets), built on
  the meta device for exact counting (always, so counts never depend on what is cached), or
  with random initialisation when the weights are absent. No tokenizer exists on this route:
  the 200 visual-order rows are appended to the word embedding, and the model is built with
  `tokenizer=None`.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from models.backbones.language_model import (
    NUM_VISUAL_ORDER_TOKENS,
    add_visual_order_tokens,
    load_language_model,
    visual_order_tokens,
)
from models.location import BackboneLocation


def language_model(location: BackboneLocation, meta: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None, list[int]]:
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
    # A list of tokens gives a list of ids (transformers types the str and list cases as one).
    return lm, tokenizer, cast(list[int], tokenizer.convert_tokens_to_ids(visual_order_tokens()))


def random_init_tokenizer(location: BackboneLocation) -> PreTrainedTokenizerBase:
    """The project-trained tokenizer of the preset's family, for a randomly initialised model.

    Its ids fall inside the base vocabulary and its special ids are the base model's (T5: pad 0,
    eos 1; BART: <s> 0, <pad> 1, </s> 2), so the base architecture and its exact parameter count
    are kept. The visual-order rows are the model's own appended rows, not the tokenizer's.

    Raises:
        FileNotFoundError: the embedded preset that holds the tokenizer is not built.
    """
    config = location.preset.lm_config
    if location.tokenizer_dir is None or config is None:
        raise ValueError(
            f"backbone {location.preset.name!r} is not a random-init location: BackboneLocation.resolve(random_init=True) makes one"
        )
    folder = Path(location.tokenizer_dir)
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"--random-init reads text with the tokenizer of {location.tokenizer_preset!r}, which is not built under "
            f"{folder.parent}; prepare_environment builds it (or run python -m models.pretrain)"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
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
