"""The embedded T5's unigram tokenizer: whole words where known, characters elsewhere."""

from __future__ import annotations

from transformers import AutoTokenizer

from models.backbones.language_model import train_unigram_tokenizer

CORPUS = [
    "a small orange circle on the left.",
    "a large purple square and a small yellow triangle.",
    "there is an orange triangle in the image.",
    "how many circles are there?",
] * 20


def test_frequent_words_are_single_pieces_and_text_round_trips():
    tokenizer = train_unigram_tokenizer(CORPUS, vocab_size=1000)
    ids = tokenizer("a small orange triangle on the left.").input_ids
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens == ["▁a", "▁small", "▁orange", "▁triangle", "▁on", "▁the", "▁left", ".", "</s>"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a small orange triangle on the left."


def test_unseen_text_falls_back_to_characters_without_unknowns():
    tokenizer = train_unigram_tokenizer(CORPUS, vocab_size=1000)
    text = "Zebra #42 isn't here"
    ids = tokenizer(text).input_ids
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_vocabulary_size_keeps_the_most_frequent_words(tmp_path):
    small = train_unigram_tokenizer(CORPUS + ["orange"] * 50, vocab_size=3 + 95 + 3)  # specials, ASCII and "▁", 3 words
    assert "▁orange" in small.get_vocab() and "▁purple" not in small.get_vocab()
    small.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded("a purple orange").input_ids == small("a purple orange").input_ids
    assert (loaded.pad_token_id, loaded.eos_token_id, loaded.unk_token_id) == (0, 1, 2)
