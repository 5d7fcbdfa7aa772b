"""The VL-T5 / VL-BART layout: a seq2seq LM reading text tokens followed by visual tokens.

Encoder input = [text token embeddings ; visual embeddings], attention mask extended with
ones; the decoder generates the answer as text (PAPER.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

if TYPE_CHECKING:
    from transformers import GenerationMixin


@dataclass
class TaskContext:
    """Which task the current batch belongs to; read by per-task PETL modules."""

    tasks: tuple[str, ...]
    active: str | None = None

    def index(self) -> int:
        if self.active is None:
            raise RuntimeError("no active task: set model.task_context.active before forward")
        return self.tasks.index(self.active)


class VisualEmbedding(nn.Module):
    """V->L projection: features, box, image index and object order -> d_model (PAPER.md §1).

    Args:
        feat_dim: dimension of a visual feature (2048 for RN101 grid features).
        d_model: the language model's hidden size.
        layernorm: factory of the LM family's LayerNorm (T5's has no bias, BART's has one).
        order_embedding: the LM's word embedding; visual token i adds the row of `<vis_extra_id_i>`.
        order_token_ids: ids of the visual-order tokens in that embedding.
    """

    order_token_ids: torch.Tensor  # a registered buffer

    def __init__(self, feat_dim: int, d_model: int, layernorm, order_embedding: nn.Embedding, order_token_ids: list[int]):
        super().__init__()
        self.feat_proj = nn.Sequential(nn.Linear(feat_dim, d_model), layernorm(d_model))
        self.box_proj = nn.Sequential(nn.Linear(5, d_model), layernorm(d_model))
        self.image_index = nn.Embedding(2, d_model)
        # Not a submodule: the word embedding belongs to the LM and is counted there once.
        self._order_embedding = [order_embedding]
        self.order_token_rows = tuple(int(i) for i in order_token_ids)  # host copy, readable on meta too
        self.register_buffer("order_token_ids", torch.tensor(order_token_ids, dtype=torch.long), persistent=False)

    def forward(self, feats: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
        # feats: (B, N, F); image_index: (B, N) in {0, 1}
        B, N, _ = feats.shape
        boxes = feats.new_zeros(B, N, 5)  # grid features carry no boxes
        order = _order_positions(image_index)  # (B, N): position within its own image
        order_emb = self._order_embedding[0](self.order_token_ids[order])
        return self.feat_proj(feats) + self.box_proj(boxes) + self.image_index(image_index) + order_emb


def _order_positions(image_index: torch.Tensor) -> torch.Tensor:
    # Each image's tokens count from 0, so both NLVR2 images reuse the same order rows.
    one_hot = nn.functional.one_hot(image_index, num_classes=2)
    return ((one_hot.cumsum(dim=1) - 1) * one_hot).sum(-1)


class VLSeq2Seq(nn.Module):
    """A seq2seq LM with a V->L projection; every task is text generation.

    Args:
        lm: a T5 or BART `...ForConditionalGeneration`.
        visual_embedding: the V->L projection.
        tasks: the task names this model serves (PETL modules may be per task).
    """

    def __init__(self, lm: PreTrainedModel, visual_embedding: VisualEmbedding, tasks: tuple[str, ...]):
        super().__init__()
        self.lm = lm
        self.visual_embedding = visual_embedding
        self.task_context = TaskContext(tasks=tuple(tasks))
        self._input_prompt: list[nn.Module] = []  # plain reference: the module is owned by `petl`
        # The CLIP grid encoder, only when CLIP trains (FreezeConfig.visual_encoder != "frozen");
        # otherwise features come from the cache and CLIP is no part of the model.
        self.visual_encoder: nn.Module | None = None

    def set_visual_encoder(self, encoder: nn.Module) -> None:
        """Run `encoder` on pixel inputs (B, images, 3, H, W) inside the model, so that it trains."""
        self.visual_encoder = encoder

    def train(self, mode: bool = True) -> "VLSeq2Seq":
        super().train(mode)
        if self.visual_encoder is not None:
            # CLIP's BatchNorm statistics (ResNet towers) stay CLIP's: small fine-tuning batches
            # would overwrite them. Its weights still train.
            self.visual_encoder.eval()
        return self

    @property
    def input_prompt(self) -> nn.Module | None:
        """The module prepended to the encoder input, or None; called as `input_prompt(B) -> (B, P, d)`."""
        return self._input_prompt[0] if self._input_prompt else None

    def set_input_prompt(self, module: nn.Module | None) -> None:
        """Prepend `module(B)` (B, P, d) to every encoder input, with attention-mask ones (prompt tuning).

        The module is only referenced here; register it elsewhere (e.g. as `petl`) so that it is
        counted, trained and saved once.
        """
        self._input_prompt = [module] if module is not None else []

    def encoder_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        feats: torch.Tensor,
        image_index: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # input_ids: (B, T); feats: (B, N, F) -> embeds (B, [P]+T+N, d), mask (B, [P]+T+N).
        # visual_mask (B, N) hides padded visual tokens (videos shorter than the batch's longest).
        if feats.dim() == 5:  # pixels (B, images, 3, H, W): the trainable CLIP encodes them here
            if self.visual_encoder is None:
                raise RuntimeError("pixel inputs (B, images, 3, H, W) need a visual encoder: set_visual_encoder first")
            batch, images = feats.shape[:2]
            feats = self.visual_encoder(feats.flatten(0, 1)).unflatten(0, (batch, images)).flatten(1, 2)
        if image_index is None:
            image_index = torch.zeros(feats.shape[:2], dtype=torch.long, device=feats.device)
        embedding = self.lm.get_input_embeddings()
        text = embedding(input_ids)
        # BART's scaled embedding already multiplies by its embed_scale; plain embeddings do not.
        if getattr(self.lm.config, "scale_embedding", False) and not hasattr(embedding, "embed_scale"):
            text = text * (self.lm.config.d_model**0.5)
        visual = self.visual_embedding(feats, image_index)
        parts = [text, visual.to(text.dtype)]
        visual_mask = attention_mask.new_ones(feats.shape[:2]) if visual_mask is None else visual_mask.to(attention_mask.dtype)
        masks = [attention_mask, visual_mask]
        if self.input_prompt is not None:
            prompts = self.input_prompt(input_ids.shape[0])  # (B, P, d)
            parts.insert(0, prompts.to(text.dtype))
            masks.insert(0, attention_mask.new_ones(prompts.shape[:2]))
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        feats: torch.Tensor,
        labels: torch.Tensor,
        image_index: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-example token cross-entropy, averaged over each example's target tokens.

        Returns:
            (B,) losses, so that callers can weight examples (VQA soft scores).
        """
        embeds, mask = self.encoder_inputs(input_ids, attention_mask, feats, image_index, visual_mask)
        logits = self.lm(inputs_embeds=embeds, attention_mask=mask, labels=labels).logits  # (B, L, V)
        n_tokens = (labels != -100).sum(dim=1).clamp(min=1)
        return _sequence_nll(logits, labels) / n_tokens

    @torch.no_grad()
    def score_choices(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        feats: torch.Tensor,
        choice_labels: torch.Tensor,
        choice_example: torch.Tensor,
        image_index: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log-likelihood of each candidate answer: the scorer for fixed answer sets.

        The encoder runs once per example; each candidate is a teacher-forced decoder pass over
        that example's encoding, so a single-token answer set ("true"/"false") compares exactly
        the first-step logits of its answers (PAPER.md §1).

        Args:
            choice_labels: (R, L) candidate token ids, -100 on padding; R candidates in all.
            choice_example: (R,) the example (row of `input_ids`) each candidate belongs to.

        Returns:
            (R,) summed token log-probabilities.
        """
        embeds, mask = self.encoder_inputs(input_ids, attention_mask, feats, image_index, visual_mask)
        encoded = self.lm.get_encoder()(inputs_embeds=embeds, attention_mask=mask)
        logits = self.lm(
            encoder_outputs=_select_rows(encoded, choice_example),
            attention_mask=mask.index_select(0, choice_example),
            labels=choice_labels,
        ).logits
        return -_sequence_nll(logits, choice_labels)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        feats: torch.Tensor,
        image_index: torch.Tensor | None = None,
        max_new_tokens: int = 10,
        num_beams: int = 1,
        visual_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Greedy (num_beams=1) or beam-search generation; returns token ids (B, L)."""
        embeds, mask = self.encoder_inputs(input_ids, attention_mask, feats, image_index, visual_mask)
        encoder_outputs = self.lm.get_encoder()(inputs_embeds=embeds, attention_mask=mask)
        # The LM is a T5/BART ...ForConditionalGeneration: PreTrainedModel's type has no generate.
        lm = cast("GenerationMixin", self.lm)
        token_ids = lm.generate(
            # The whole output: a PETL method may carry its own per-row state in it (models.petl.lst),
            # which generation then expands with the rows.
            encoder_outputs=_select_rows(encoder_outputs, None),
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            do_sample=False,
        )
        return cast(torch.Tensor, token_ids)  # the ids themselves: return_dict_in_generate is off


def _select_rows(encoded: BaseModelOutput, rows: torch.Tensor | None) -> BaseModelOutput:
    """The encoder output's tensors (every field, not only the last hidden state), at `rows`
    (None: all rows); per-layer tuples (hidden states, attentions) are left out."""
    fields: dict[str, Any] = {
        k: (v if rows is None else v.index_select(0, rows)) for k, v in encoded.items() if isinstance(v, torch.Tensor)
    }
    return type(encoded)(**fields)


def _sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) summed token cross-entropy of each row of `labels` (-100 ignored).

    float(): under bf16 autocast the loss is still reduced in full precision.
    """
    token_loss = nn.functional.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
    return token_loss.sum(dim=1)
