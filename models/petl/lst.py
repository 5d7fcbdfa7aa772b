"""Ladder Side-Tuning (Sung, Cho, Bansal, NeurIPS 2022): a narrow side network beside a frozen LM.

The side network is a copy of the LM's encoder and decoder with every width divided by the
reduction factor r (d_model, FFN, and T5's per-head d_kv or BART's head width; the head count
kept), built from the family's own stack classes (`models.backbones.sites.new_stacks`). Before
side layer i, a ladder brings in backbone layer i's output: `h = g_i * h + (1 - g_i) * D_i(x_i)`,
`D_i: d -> d/r` linear with bias, `g_i = sigmoid(alpha_i / T)`, alpha_i learned from 0 and T = 0.1.
The side input is `D_0(embeddings)`; the side decoder cross-attends to the side encoder; its final
state, after its final LayerNorm, is upsampled `d/r -> d` and replaces the backbone decoder's
output, so the LM head (frozen) reads only the side network.

As in the authors' VL code (github.com/ylsung/Ladder-Side-Tuning, VL-T5/src/modeling_t5.py:
`JointEncoder.forward`, `VLT5.forward`; my_transformers/modeling_t5.py: `T5Stack.__init__`;
scripts/image/LST.sh), the backbone encoder reads the text tokens only, and the visual tokens
enter the side network alone: the side encoder reads `[text ; visual]`, and the ladders of the
visual positions are zeros. That is the V->L projection's gradient path: it trains (always
trainable there, `unfreeze_parameters`) through the side network's input, never through the
backbone. The backbone runs on frozen parameters and detached inputs, so no autograd graph is
built through it and its activations are not kept for backward: that is where the memory goes.

Left as the authors' VL run has it: every layer has a side layer (their `encoder_side_layers`
and `decoder_side_layers` are unset there; `drop_*_layers` drops some, as their GLUE runs do).
Not implemented: their initialisation of the side network by structural pruning of the
backbone's weights with Fisher information (`--load_side_pretrained_weights fisher-v2`), which
needs gradients of the pretrained LM over the training data before the trial starts; the side
network starts from the stacks' own random initialisation instead. Their `SideConfig` options
other than the learned gate (residual after the layer, pooled downsampling) are not offered.

Generation runs the backbone and the side network over the whole prefix at each step (no KV
cache: the side decoder would need its own, and HF's cache only holds the backbone's), so the
answer is always the side network's. Answers are a few tokens; the cost is small.

Counting: the authors ran CLIP-T5 only (their pruning loads `T5ForConditionalGeneration`); on
`clip-rn101+t5-base` the r = 4 side network is 16,386,072 parameters, their layout exactly, and
the run 7.45% against the published 7.46%: their VL-T5 tokenizer (VL-T5/src/tokenization.py)
adds 100 visual-order tokens to T5's 32,100 (32,200 embedding rows), where this project's layout
has t5-base's 32,128 rows + 200 (PAPER.md §1); with their vocabulary the count is 7.46%. On BART,
which they did not run, the side stacks are BART's own (with their learned positions). T5's
side encoder applies relative position bias over all of [text ; visual], as this project's
backbone does, where their `JointEncoder` limits it to text-text pairs.

Sharing: one side network for all tasks (single, the paper's multitask run) or one per task
(multiple). Not half-shared: a side network has no pair of projections to split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from models.backbones.sites import attention_heads, narrowed_config, new_stacks, side_widths, stack_blocks, stack_depths
from models.config import ConfigError, FreezeConfig, SharingMode
from models.petl.registry import MethodSpec, RunPreset, register


@dataclass(frozen=True)
class LstConfig:
    """Hyperparameters of Ladder Side-Tuning.

    Attributes:
        reduction_factor: r: every width of the side network is the backbone's divided by r
            (>= 1: a side network is never wider than the backbone).
        drop_encoder_layers: backbone encoder layers that get no side layer (and no ladder).
        drop_decoder_layers: the same for the decoder.
        gate_temperature: T in g = sigmoid(alpha / T).
        gate_init: alpha's initial value (0: the side and the ladder start at equal weight).
    """

    reduction_factor: int = 8
    drop_encoder_layers: tuple[int, ...] = ()
    drop_decoder_layers: tuple[int, ...] = ()
    gate_temperature: float = 0.1
    gate_init: float = 0.0

    def problems(self) -> list[str]:
        found = []
        r = self.reduction_factor
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            found.append(
                f"lst.reduction_factor must be an integer >= 1 (the side network's widths are the backbone's divided by it; "
                f"below 1 it would be wider than the backbone), got {r!r}; use e.g. 8"
            )
        for name in ("drop_encoder_layers", "drop_decoder_layers"):
            layers = getattr(self, name)
            bad = [i for i in layers if isinstance(i, bool) or not isinstance(i, int) or i < 0]
            if bad:
                found.append(f"lst.{name} must list layer indices >= 0, got {list(layers)}; drop the entries {bad}")
            elif len(set(layers)) != len(layers):
                found.append(f"lst.{name} lists a layer twice: {list(layers)}; list each layer once")
        if not self.gate_temperature > 0:
            found.append(f"lst.gate_temperature must be > 0 (the gate is sigmoid(alpha / T)), got {self.gate_temperature}")
        return found

    def kept_layers(self, depth: int, stack: str) -> list[int]:
        """The backbone layers of `stack` that have a side layer."""
        dropped = set(self.drop_encoder_layers if stack == "encoder" else self.drop_decoder_layers)
        return [i for i in range(depth) if i not in dropped]


def backbone_problems(config: LstConfig, lm_config: Any, freeze: FreezeConfig | None) -> list[str]:
    """The side network against the backbone: widths r divides, layers in range; the freezing."""
    found = []
    if freeze is not None:
        trained = [
            flag
            for flag in ("train_language_model", "train_layernorm", "train_bias", "train_embeddings", "train_lm_head")
            if getattr(freeze, flag)
        ]
        if trained:
            found.append(
                f"lst runs the backbone without gradients (only the side network and the V->L projection train), "
                f"but freeze sets {', '.join(f'{f}=True' for f in trained)}; set them False"
            )
    if lm_config is None or not isinstance(config.reduction_factor, int) or config.reduction_factor < 1:
        return found
    r = config.reduction_factor
    widths = side_widths(lm_config)
    uneven = {key: width for key, width in widths.items() if width % r}
    if uneven:
        common = math.gcd(*widths.values())
        divisors = [k for k in range(1, common + 1) if common % k == 0]
        found.append(
            f"lst.reduction_factor={r} must divide every width of the backbone {widths}; it does not divide {sorted(uneven)}; use one of {divisors}"
        )
    for key, heads in attention_heads(lm_config).items():
        if not uneven and (widths["d_model"] // r) % heads:
            found.append(
                f"lst.reduction_factor={r}: the side d_model {widths['d_model'] // r} must split over the {heads} {key}; use a smaller r"
            )
    depths = {"encoder": _depth(lm_config, "encoder"), "decoder": _depth(lm_config, "decoder")}
    for stack, depth in depths.items():
        name = f"drop_{stack}_layers"
        layers = [i for i in getattr(config, name) if isinstance(i, int)]
        outside = [i for i in layers if not 0 <= i < depth]
        if outside:
            found.append(f"lst.{name} {outside} out of range: the backbone's {stack} has layers 0..{depth - 1}")
        elif len(config.kept_layers(depth, stack)) == 0:
            found.append(f"lst.{name} drops all {depth} {stack} layers; keep at least one side layer")
    return found


def _depth(lm_config: Any, stack: str) -> int:
    if lm_config.model_type in ("t5", "mt5"):
        return lm_config.num_layers if stack == "encoder" else (lm_config.num_decoder_layers or lm_config.num_layers)
    return lm_config.encoder_layers if stack == "encoder" else lm_config.decoder_layers


@dataclass
class SideEncoderOutput(BaseModelOutput):
    """The backbone encoder's output with the side encoder's beside it.

    Generation expands and `VLSeq2Seq.score_choices` selects every tensor of an encoder output
    row by row, so the side memory follows the backbone's rows wherever they go.
    """

    side_hidden_state: torch.Tensor | None = None  # (B, T+N, d/r)
    side_attention_mask: torch.Tensor | None = None  # (B, T+N)


class LadderStack(nn.Module):
    """One side stack (encoder or decoder) with its ladders and gates.

    Args:
        stack: a narrowed encoder or decoder of the LM's family, without word embedding.
        d_model: the backbone's width; the side width is d_model // r.
        n_layers: side layers (the kept backbone layers).
        config: the method's configuration.
    """

    def __init__(self, stack: nn.Module, d_model: int, n_layers: int, config: LstConfig):
        super().__init__()
        d_side = d_model // config.reduction_factor
        self.stack = stack
        self.input = _projection(d_model, d_side)  # side_first_downsample
        self.ladders = nn.ModuleList(_projection(d_model, d_side) for _ in range(n_layers))  # side_downsamples
        self.gates = nn.Parameter(torch.full((n_layers,), float(config.gate_init)))  # side_gate_params
        self.temperature = config.gate_temperature
        self._rungs: list[torch.Tensor] = []
        for i, block in enumerate(_blocks(stack)):
            block.register_forward_pre_hook(_Merge(self, i))

    def merge(self, i: int, hidden: torch.Tensor) -> torch.Tensor:
        """The side state entering side layer i with backbone layer i's output gated in."""
        # hidden: (B, S, d/r); the rung: (B, S', d) with S' <= S (the backbone's positions)
        gate = torch.sigmoid(self.gates[i] / self.temperature)
        rung = self.ladders[i](self._rungs[i])  # (B, S', d/r)
        rung = nn.functional.pad(rung, (0, 0, 0, hidden.shape[1] - rung.shape[1]))  # visual positions: zeros
        return gate * hidden + (1 - gate) * rung

    def forward(self, embeds: torch.Tensor, rungs: list[torch.Tensor], **kwargs) -> torch.Tensor:
        # embeds: (B, S, d); rungs: kept backbone layers' outputs (B, S', d), S' <= S -> (B, S, d/r)
        self._rungs = rungs
        try:
            return self.stack(inputs_embeds=self.input(embeds), use_cache=False, **kwargs).last_hidden_state
        finally:
            self._rungs = []


class _Merge:
    """Forward pre-hook of side layer i: `LadderStack.merge` on its hidden-state argument.

    Hooks are callable objects rather than closures (as models.petl.hooks.OutputDelta), so a deep
    copy of the model points its hooks at the copied modules, not at the original ones.
    """

    def __init__(self, stack: LadderStack, i: int):
        self.stack, self.i = stack, i

    def __call__(self, module, args):
        return (self.stack.merge(self.i, args[0]),) + tuple(args[1:])


class _Rung:
    """Forward hook of a kept backbone layer: keeps its output, detached, for the side network."""

    def __init__(self, lst: LadderSideTuning, stack: str):
        self.lst, self.stack = lst, stack

    def __call__(self, module, args, output) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        self.lst.rungs[self.stack].append(hidden.detach())


class SideNetwork(nn.Module):
    """A side encoder, a side decoder and the upsampling into the LM head's width."""

    def __init__(self, lm, config: LstConfig, kept: dict[str, list[int]]):
        super().__init__()
        d_model, r = lm.config.d_model, config.reduction_factor
        narrow = narrowed_config(lm.config, r, len(kept["encoder"]), len(kept["decoder"]))
        encoder, decoder = new_stacks(lm, narrow)
        self.encoder = LadderStack(encoder, d_model, len(kept["encoder"]), config)
        self.decoder = LadderStack(decoder, d_model, len(kept["decoder"]), config)
        self.upsample = _projection(d_model // r, d_model)  # side_final_upsample


def _projection(d_in: int, d_out: int) -> nn.Module:
    # r = 1: the authors' code uses identities where the widths already agree.
    return nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)


def _blocks(stack: nn.Module) -> list[nn.Module]:
    return list(getattr(stack, "block", None) or getattr(stack, "layers"))


class LadderSideTuning(nn.Module):
    """The side networks (one, or one per task) and the hooks that run them beside the LM.

    Per forward: the visual embedding's width tells where the text ends; the backbone encoder
    reads the text only; every kept backbone layer's output is kept, detached, as a rung; the
    side encoder runs on [text ; visual]; the backbone decoder cross-attends to the text; the
    side decoder runs and its upsampled state replaces the backbone decoder's output.
    """

    def __init__(self, model, config: LstConfig, n_sides: int):
        super().__init__()
        lm = model.lm
        depths = stack_depths(lm)
        self.kept = {stack: config.kept_layers(depth, stack) for stack, depth in depths.items()}
        self.sides = nn.ModuleList(SideNetwork(lm, config, self.kept) for _ in range(n_sides))
        self._task_context = [model.task_context]  # plain reference, not a submodule
        self._n_visual: int | None = None
        self._encoder_input: tuple[torch.Tensor, torch.Tensor] | None = None
        self.rungs: dict[str, list[torch.Tensor]] = {"encoder": [], "decoder": []}
        self._memory: tuple[torch.Tensor, torch.Tensor] | None = None
        self._decoder_input: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def active(self) -> SideNetwork:
        task = self._task_context[0].index() if len(self.sides) > 1 else 0
        side: SideNetwork = self.sides[task]  # type: ignore[assignment]  # ModuleList holds SideNetworks only
        return side

    def attach(self, model) -> None:
        """Hook the side networks onto `model` (a `VLSeq2Seq`) and its LM."""
        lm = model.lm
        model.visual_embedding.register_forward_hook(self._on_visual)
        lm.register_forward_pre_hook(self._on_lm_call, with_kwargs=True)
        lm.get_encoder().register_forward_pre_hook(self._before_encoder, with_kwargs=True)
        lm.get_encoder().register_forward_hook(self._after_encoder)
        lm.get_decoder().register_forward_pre_hook(self._before_decoder, with_kwargs=True)
        lm.get_decoder().register_forward_hook(self._after_decoder)
        for stack, blocks in stack_blocks(lm).items():
            for i in self.kept[stack]:
                blocks[i].register_forward_hook(_Rung(self, stack))
        # The side decoder needs the whole prefix at every step (see the module docstring).
        lm.config.use_cache = False
        if getattr(lm, "generation_config", None) is not None:
            lm.generation_config.use_cache = False

    def _on_visual(self, module, args, output) -> None:
        self._n_visual = output.shape[1]

    def _on_lm_call(self, module, args, kwargs):
        encoded = kwargs.get("encoder_outputs")
        side = getattr(encoded, "side_hidden_state", None)
        # Given an encoder output (generation, choice scoring), its rows carry their side memory.
        self._memory = (side, encoded.side_attention_mask) if side is not None else None
        return None

    def _before_encoder(self, module, args, kwargs):
        embeds, mask = kwargs.get("inputs_embeds"), kwargs.get("attention_mask")
        if embeds is None or mask is None or self._n_visual is None:
            raise RuntimeError("lst: the encoder must be called by VLSeq2Seq with inputs_embeds=[text ; visual] and attention_mask")
        n_text = embeds.shape[1] - self._n_visual  # (B, T+N, d): the text first, the visual tokens last
        self._n_visual = None
        self._encoder_input = (embeds, mask)
        self.rungs["encoder"] = []
        # Detached: the text embeddings are frozen, but the concatenation carries the visual
        # tokens' graph, and the backbone must not be differentiated.
        return args, {**kwargs, "inputs_embeds": embeds[:, :n_text].detach(), "attention_mask": mask[:, :n_text]}

    def _after_encoder(self, module, args, output):
        assert self._encoder_input is not None  # set by _before_encoder in this call
        embeds, mask = self._encoder_input
        self._encoder_input = None
        side = self.active().encoder(embeds, self.rungs["encoder"], attention_mask=mask)  # (B, T+N, d/r)
        self.rungs["encoder"] = []
        self._memory = (side, mask)
        return SideEncoderOutput(last_hidden_state=output.last_hidden_state, side_hidden_state=side, side_attention_mask=mask)

    def _before_decoder(self, module, args, kwargs):
        encoded, mask = kwargs.get("encoder_hidden_states"), kwargs.get("encoder_attention_mask")
        ids, embeds = kwargs.get("input_ids"), kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = module.embed_tokens(ids)  # the family's own scaling (BART) included
        self._decoder_input = (embeds.detach(), kwargs.get("attention_mask"))
        self.rungs["decoder"] = []
        if encoded is not None and mask is not None and mask.shape[1] != encoded.shape[1]:
            # The mask covers [text ; visual]; the backbone encoded the text only.
            return args, {**kwargs, "encoder_attention_mask": mask[:, : encoded.shape[1]]}
        return None

    def _after_decoder(self, module, args, output):
        if self._memory is None or self._decoder_input is None:
            raise RuntimeError("lst: the decoder ran without the side encoder's output; pass the encoder output the encoder returned")
        memory, memory_mask = self._memory
        embeds, mask = self._decoder_input
        self._decoder_input = None
        side = self.active()
        hidden = side.decoder(
            embeds, self.rungs["decoder"], attention_mask=mask, encoder_hidden_states=memory, encoder_attention_mask=memory_mask
        )
        self.rungs["decoder"] = []
        output.last_hidden_state = side.upsample(hidden)  # (B, L, d): what the LM head reads
        return output


def apply(model, config: LstConfig, sharing: SharingMode) -> None:
    """Build the side network(s) beside `model.lm` (a `VLSeq2Seq`) and hook them in."""
    problems = backbone_problems(config, model.lm.config, None)
    if problems:
        raise ConfigError(problems)
    n_sides = len(model.task_context.tasks) if sharing is SharingMode.MULTIPLE else 1
    lst = LadderSideTuning(model, config, n_sides)
    lst.attach(model)
    model.petl = lst


# The authors' VL run (scripts/image/LST.sh): r = 4, every layer, lr 3e-3, weight decay 3e-2.
_PAPER_RUN = {"reduction_factor": 4}
_SIDE_ONLY = FreezeConfig(train_language_model=False, train_layernorm=False, train_vl_projection=True)


SPEC = register(
    MethodSpec(
        name="lst",
        paper="Sung, Cho, Bansal, LST: Ladder Side-Tuning for Parameter and Memory Efficient Transfer Learning, NeurIPS 2022",
        config_cls=LstConfig,
        apply=apply,
        freeze=_SIDE_ONLY,
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE),
        learning_rate=3e-3,
        sharing_note="a side network is one network: one for all tasks (single) or one per task (multiple); "
        "it has no pair of projections to split, so half-shared has no meaning",
        search={
            "reduction_factor": [4, 8, 16],
            "sharing": ["single"],
            "learning_rate_scale": [0.5, 1.0, 2.0],
        },
        tiny_learning_rate=5e-3,
        backbone_problems=backbone_problems,
        # The backbone gets no gradient (backbone_problems refuses training any of it): of the
        # default space's freezing choices only the V->L projection, which the side network feeds, can train.
        searched_freeze=("train_vl_projection",),
        presets=(
            RunPreset(
                "single-lst",
                "one ladder side network (r = 4) for all tasks",
                "lst",
                _PAPER_RUN,
                SharingMode.SINGLE,
                _SIDE_ONLY,
                learning_rate=3e-3,
                # LST's Table 2 (CLIP-T5, image tasks); reproduced to 7.45% here, 7.46% with the
                # authors' 100-row visual-order vocabulary (see the module docstring).
                paper_trainable_pct=7.46,
                paper_backbone="clip-rn101+t5-base",
            ),
        ),
    )
)
