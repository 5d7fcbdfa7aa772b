"""Answer evaluation examples: free generation, or the most likely of a fixed answer set."""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from models.vl_model import VLSeq2Seq
from training.batches import Collator
from training.text_examples import TextExample
from training.precision import autocast


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
    max_source_tokens: int | None = None,
    precision: str = "fp32",
) -> dict[int | str, str]:
    """One answer per example, keyed by the example's key.

    Examples with `choices` (NLVR2, multiple-choice video QA) are answered by the logits
    scorer: the choice with the highest log-likelihood. Others are decoded greedily
    (`num_beams=1`) or by beam search.
    """
    model.eval()
    model.task_context.active = task
    answers: dict[int | str, str] = {}
    starts = range(0, len(examples), batch_size)
    for start in tqdm(starts, desc=f"eval {task}", unit="batch", leave=False, disable=None if show_progress else True):
        chunk = examples[start : start + batch_size]
        with autocast(precision, device):
            if chunk[0].choices:
                texts = _best_choices(model, collator, chunk, device, max_source_tokens, max_new_tokens)
            else:
                batch = collator.inputs(chunk, max_source_tokens).to(device)
                generated = model.generate(max_new_tokens=max_new_tokens, num_beams=num_beams, **batch.model_inputs())
                texts = collator.tokenizer.batch_decode(generated, skip_special_tokens=True)
        answers.update({example.key: text.strip() for example, text in zip(chunk, texts)})
    return answers


def _best_choices(
    model: VLSeq2Seq,
    collator: Collator,
    chunk: Sequence[TextExample],
    device: torch.device,
    max_source_tokens: int | None,
    max_target_tokens: int,
) -> list[str]:
    batch = collator.choices(chunk, max_source_tokens, max_target_tokens).to(device)
    assert batch.choice_labels is not None and batch.choice_example is not None, "Collator.choices sets the candidates"
    scores = model.score_choices(choice_labels=batch.choice_labels, choice_example=batch.choice_example, **batch.model_inputs()).cpu()
    owners = batch.choice_example.cpu()
    best: list[str] = []
    for n, example in enumerate(chunk):
        mine = scores[owners == n]
        best.append(example.choices[int(mine.argmax())])
    return best
