"""The embedded tiny BART and its byte-level BPE tokenizer (the BART/GPT-2 scheme)."""

from __future__ import annotations

from typing import Iterable

import torch
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

BART_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0-4, as in facebook/bart-base


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer; sequences are wrapped as `<s> ... </s>` like BART's."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=BART_SPECIALS, show_progress=False)
    backend = bpe._tokenizer
    backend.post_processor = TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", backend.token_to_id("<s>")), ("</s>", backend.token_to_id("</s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=512,
    )


def tiny_bart(vocab_size: int, seed: int) -> BartForConditionalGeneration:
    """2+2 layers, d_model 128, randomly initialised from `seed`."""
    # BartConfig's typed signature lacks forced_bos_token_id, which it takes at run time.
    config = BartConfig(  # type: ignore[call-arg]
        vocab_size=vocab_size,
        d_model=128,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=512,
        decoder_ffn_dim=512,
        max_position_embeddings=128,
        dropout=0.1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=0,
        scale_embedding=False,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return BartForConditionalGeneration(config)
