"""A user's own backbone files, as they would have them on disk: open_clip checkpoints and
`save_pretrained` language model directories, with tokenizers trained by the project's own code.

The CLIP towers are real open_clip architectures (RN50, ViT-B-32) with random weights; the
language models are small configs of the T5 v1.1 (gated-GELU) and BART families.
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file
from transformers import BartConfig, BartForConditionalGeneration, T5Config, T5ForConditionalGeneration

from models.backbones.language_model import train_unigram_tokenizer
from models.backbones.tiny_bart import train_bpe_tokenizer

# Text the tokenizers learn from: any text will do, the unigram one falls back to characters.
TEXTS = ["what colour is the small cube", "a red sphere left of a blue cylinder", "how many objects are there"] * 20


def save_clip(arch: str, path: Path) -> Path:
    """A randomly initialised open_clip model's full state dict, as `.safetensors` or `.pt`."""
    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def save_t5_v1_1(folder: Path, d_model: int = 64, layers: int = 2) -> Path:
    """A T5 v1.1-style model (gated-GELU FFN, untied LM head) with its unigram tokenizer."""
    tokenizer = train_unigram_tokenizer(TEXTS, vocab_size=120)
    # T5Config's typed signature lacks decoder_start_token_id and tie_word_embeddings, which it takes at run time.
    config = T5Config(  # type: ignore[call-arg]
        vocab_size=128,  # padded past the tokenizer, as the hub's T5s are
        d_model=d_model,
        d_kv=16,
        d_ff=2 * d_model,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_bart(folder: Path, d_model: int = 64, layers: int = 2) -> Path:
    """A BART model with its byte-level BPE tokenizer."""
    tokenizer = train_bpe_tokenizer(TEXTS, vocab_size=300)
    # BartConfig's typed signature lacks forced_bos_token_id, which it takes at run time.
    config = BartConfig(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=0,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
