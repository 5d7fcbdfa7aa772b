"""Compacter: the bottleneck adapter with PHM projections (Mahabadi et al., NeurIPS 2021).

Each adapter projection is a `PHMLinear` (models.petl.phm): `W = sum_i A_i (x) B_i` with k
summands. Full Compacter shares the rule matrices A across all layers and factorises
`B_i = u_i v_i^T` with rank r (LPHM); VL-Adapter's run (PAPER.md §2) used k = 2, per-layer
rules and unfactorised B (`shared_rule=False, rank=None`). Everything else (sites, sharing
across tasks, optional LayerNorm) is the adapter's. The up projection starts at zero, so the
adapted model starts as the backbone (the reference code starts it small instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.backbones.sites import SITE_KINDS
from models.config import ConfigError, FreezeConfig, SharingMode
from models.petl.adapter import bottleneck_problems, insert_adapters
from models.petl.phm import PHMLinear, SharedRule
from models.petl.registry import MethodSpec, RunPreset, register


@dataclass(frozen=True)
class CompacterConfig:
    """Hyperparameters of Compacter.

    Attributes:
        reduction_factor: r in d/r, the bottleneck width (ignored when `hidden_size` is set).
        hidden_size: explicit bottleneck width; it and d_model must be divisible by k.
        activation: one of models.petl.adapter.ACTIVATIONS.
        sites: sublayer kinds that get an adapter.
        shared_projection: for half-shared: "up" or "down" is shared across tasks.
        layer_norm: "none", "before" or "after" (see the adapter).
        k: number of Kronecker summands (PHM dimension).
        shared_rule: one set of rule matrices for every layer (Compacter) or one per layer.
        rank: rank of the LPHM factorisation of B_i; None leaves B_i full.
        init_range: standard deviation of the rule matrices' initialisation.
    """

    reduction_factor: int = 8
    hidden_size: int | None = None
    activation: str = "gelu"
    sites: tuple[str, ...] = SITE_KINDS
    shared_projection: str = "up"
    layer_norm: str = "none"
    k: int = 4
    shared_rule: bool = True
    rank: int | None = 1
    init_range: float = 0.01

    def problems(self) -> list[str]:
        found = bottleneck_problems("compacter", self)
        if self.k < 1:
            found.append(f"compacter.k must be >= 1, got {self.k}")
        if self.rank is not None and self.rank < 1:
            found.append(f"compacter.rank must be >= 1 or null (unfactorised B), got {self.rank}")
        if self.hidden_size is not None and self.k >= 1 and self.hidden_size % self.k:
            found.append(f"compacter.hidden_size must be divisible by k={self.k}, got {self.hidden_size}")
        if not self.init_range > 0:
            found.append(f"compacter.init_range must be > 0, got {self.init_range}")
        return found

    def bottleneck(self, d_model: int) -> int:
        return self.hidden_size if self.hidden_size is not None else max(1, d_model // self.reduction_factor)


def apply(model, config: CompacterConfig, sharing: SharingMode) -> None:
    """Insert Compacter adapters at the configured sites of `model.lm` (a `VLSeq2Seq`).

    Raises:
        ConfigError: d_model or the bottleneck width is not divisible by k.
    """
    d_model = model.lm.config.d_model
    hidden = config.bottleneck(d_model)
    if d_model % config.k or hidden % config.k:
        raise ConfigError(
            [f"compacter.k={config.k} must divide d_model={d_model} and the bottleneck width {hidden}; pick another k or reduction_factor"]
        )
    shared = SharedRule(config.k, config.init_range) if config.shared_rule else None

    def make_linear(d_in: int, d_out: int, zero_init: bool) -> PHMLinear:
        return PHMLinear(d_in, d_out, config.k, config.rank, shared, zero_init, config.init_range)

    adapters = insert_adapters(model, config, sharing, make_linear)
    if shared is not None:
        adapters["shared_rule"] = shared  # owned once here; every PHMLinear only references it
    model.petl = adapters


SPEC = register(
    MethodSpec(
        name="compacter",
        paper="Mahabadi, Henderson, Ruder, Compacter: Efficient Low-Rank Hypercomplex Adapter Layers, NeurIPS 2021",
        config_cls=CompacterConfig,
        apply=apply,
        freeze=FreezeConfig(train_language_model=False, train_layernorm=True, train_vl_projection=True),
        sharing_modes=(SharingMode.SINGLE, SharingMode.MULTIPLE, SharingMode.HALF_SHARED),
        learning_rate=1e-3,
        identity_at_init=True,
        search={
            "reduction_factor": [4, 8, 16],
            "k": [2, 4],
            "rank": [1, 4, None],
            "shared_rule": [True, False],
            "sharing": ["single", "multiple"],
            "learning_rate_scale": [0.5, 1.0, 2.0],
        },
        tiny_learning_rate=5e-3,
        presets=(
            RunPreset(
                "single-compacter",
                "one Compacter for all tasks (k=2, per-layer rules, full B)",
                "compacter",
                {"reduction_factor": 8, "k": 2, "shared_rule": False, "rank": None},
                SharingMode.SINGLE,
                FreezeConfig(train_layernorm=True),
                paper_trainable_pct=2.70,
                warm_start_rank=3,
            ),
        ),
    )
)
