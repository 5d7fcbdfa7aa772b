"""Pretrain a seq2seq LM on (corrupted input, target) pairs and measure held-out perplexity."""

from __future__ import annotations

import math
import random
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from training.loss_curve import LossCurve
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

Corruptor = Callable[[list[int], random.Random], tuple[list[int], list[int]]]


def _pad(rows: list[list[int]], pad_id: int, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def make_batch(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, corrupt: Corruptor, rng: random.Random, max_len: int = 48):
    """Tokenise (with the tokenizer's own special tokens) and corrupt a list of texts."""
    inputs, targets = [], []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_len)["input_ids"]
        source, target = corrupt(ids, rng)
        inputs.append(source)
        targets.append(target)
    input_ids, attention_mask = _pad(inputs, tokenizer.pad_token_id, tokenizer.pad_token_id)
    labels, _ = _pad(targets, tokenizer.pad_token_id, -100)
    return input_ids, attention_mask, labels


def pretrain(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    corrupt: Corruptor,
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    seed: int = 0,
    desc: str = "pretrain LM",
) -> list[float]:
    """Train `model` in place; returns the loss curve (one point per 25 steps)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, steps // 10, steps)
    model.train()
    curve = LossCurve(window=25, total_steps=steps)
    for step in tqdm(range(steps), desc=desc, unit="step"):
        batch = [texts[rng.randrange(len(texts))] for _ in range(batch_size)]
        input_ids, attention_mask, labels = make_batch(batch, tokenizer, corrupt, rng)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        curve.add(loss.item())
    model.eval()
    return curve.points


@torch.no_grad()
def perplexity(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], corrupt: Corruptor, seed: int = 1
) -> float:
    """exp(mean token cross-entropy) of the objective on held-out texts (fixed corruption seed)."""
    model.eval()
    rng = random.Random(seed)
    total, count = 0.0, 0
    for start in range(0, len(texts), 128):
        input_ids, attention_mask, labels = make_batch(texts[start : start + 128], tokenizer, corrupt, rng)
        logits = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
        total += loss.item()
        count += int((labels != -100).sum())
    return math.exp(total / max(1, count))
