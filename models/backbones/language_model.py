"""Seq2seq language models (T5, BART) and their tokenizers, through transformers.

A model comes from a hub name, a local directory (both via `from_pretrained`, the same code
path) or a config for random initialisation. The 200 `<vis_extra_id_i>` tokens of VL-T5 are
added to every tokenizer: their embedding rows give the visual tokens' order embedding
(PAPER.md §1) and count towards the total parameters (§3).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, cast

from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

if TYPE_CHECKING:
    from torch import nn

NUM_VISUAL_ORDER_TOKENS = 200


def visual_order_tokens(n: int = NUM_VISUAL_ORDER_TOKENS) -> list[str]:
    return [f"<vis_extra_id_{i}>" for i in range(n)]


def load_language_model(name_or_path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a seq2seq LM and its tokenizer, with the visual-order tokens added.

    Raises:
        OSError: from transformers when neither a local directory nor a cached hub model exists.
    """
    tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(name_or_path))
    add_visual_order_tokens(model, tokenizer)
    return model, tokenizer


def add_visual_order_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Add the 200 visual-order tokens if missing and grow the embedding to match."""
    vocabulary = tokenizer.get_vocab()  # a fresh dict per call: build it once, not once per token
    missing = [t for t in visual_order_tokens() if t not in vocabulary]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    old_rows = word_embedding(model).num_embeddings
    if old_rows < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        _init_new_rows(word_embedding(model).weight, old_rows)


def word_embedding(model: PreTrainedModel) -> nn.Embedding:
    """The model's input word embedding (T5's and BART's are `nn.Embedding`s; transformers types it `nn.Module`)."""
    return cast("nn.Embedding", model.get_input_embeddings())


def _init_new_rows(weight, start: int) -> None:
    # A fixed generator: every build of the same checkpoint gets the same new rows, so a
    # trial rebuilt from its config (or its saved trainable weights) is the same model.
    import torch

    if weight.device.type == "meta":
        return
    with torch.no_grad():
        std = float(weight[:start].std()) if start > 1 else 1.0
        rows = torch.randn(weight.shape[0] - start, weight.shape[1], generator=torch.Generator().manual_seed(0))
        weight[start:] = (rows * std).to(weight.dtype)


def train_unigram_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a T5-style unigram tokenizer (pad=0, eos=1, unk=2) on `texts`.

    The model is the maximum-likelihood unigram language model over a word-or-character
    segmentation: its pieces are the corpus' most frequent words (`▁word`, as sentencepiece
    writes them) and every printable ASCII character, each scored by its log relative
    frequency; Viterbi decoding then picks whole words where it knows them and characters
    elsewhere, so text the corpus never showed still tokenises without `<unk>`.

    Why not sentencepiece's (or `tokenizers`') EM trainer: both seed candidate pieces from
    substrings shared by at least two *distinct* words. The generated world has a closed
    vocabulary of about a hundred words, so most words never became pieces (measured: 157 pieces
    for 1,000 asked, "small" split into five characters), and captions turned into long
    character sequences that a tiny decoder cannot generate. The result loads and behaves like
    `T5TokenizerFast` (NFKC normalisation, Metaspace pre-tokenisation, `</s>` appended).
    """
    import math
    import re
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    special = ["<pad>", "</s>", "<unk>"]
    words: Counter[str] = Counter()
    chars: Counter[str] = Counter({chr(c): 1 for c in range(33, 127)})  # printable ASCII, always present
    for text in texts:
        for chunk in text.split():
            for n, piece in enumerate(re.findall(r"\w+|[^\w\s]", chunk)):
                if n == 0 and piece[0].isalnum():
                    words["\u2581" + piece] += 1
                chars.update(piece)
            chars["\u2581"] += 1
    n_words = max(0, vocab_size - len(special) - len(chars))
    pieces = dict(words.most_common(n_words))
    pieces.update({c: n for c, n in chars.items() if c not in pieces})
    total = sum(pieces.values())
    vocab = [(token, 0.0) for token in special] + [(piece, math.log(n / total)) for piece, n in pieces.items()]
    backend = Tokenizer(models.Unigram(vocab, unk_id=special.index("<unk>"), byte_fallback=False))
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(r" {2,}", " ")])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", backend.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512)


def tiny_t5(vocab_size: int, seed: int) -> T5ForConditionalGeneration:
    """The embedded tiny T5: 2+2 layers, d_model 128, randomly initialised from `seed`."""
    import torch

    # T5Config's typed signature lacks decoder_start_token_id and tie_word_embeddings, which it takes at run time.
    config = T5Config(  # type: ignore[call-arg]
        vocab_size=vocab_size,
        d_model=128,
        d_kv=32,
        d_ff=512,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        dropout_rate=0.1,
        feed_forward_proj="relu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(config)
