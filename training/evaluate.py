"""Generate answers for evaluation examples."""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from models.vl_model import VLSeq2Seq
from training.batches import Collator
from training.examples import TextExample


@torch.no_grad()
def generate_answers(
    model: VLSeq2Seq,
    collator: Collator,
    examples: Sequence[TextExample],
    task: str,
    batch_size: int,
    max_new_tokens: int,
    device: torch.device,
    num_beams: int = 1,
    show_progress: bool = True,
) -> dict[int | str, str]:
    """Decode one answer per example, keyed by the example's key."""
    model.eval()
    model.task_context.active = task
    answers: dict[int | str, str] = {}
    starts = range(0, len(examples), batch_size)
    for start in tqdm(starts, desc=f"eval {task}", unit="batch", leave=False, disable=None if show_progress else True):
        chunk = examples[start : start + batch_size]
        batch = collator.inputs(chunk).to(device)
        generated = model.generate(
            batch.input_ids, batch.attention_mask, batch.feats, batch.image_index, max_new_tokens=max_new_tokens, num_beams=num_beams
        )
        texts = collator.tokenizer.batch_decode(generated, skip_special_tokens=True)
        answers.update({example.key: text.strip() for example, text in zip(chunk, texts)})
    return answers
