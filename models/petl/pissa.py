"""PiSSA: LoRA started from the principal singular triplets of the frozen weight (Meng et al., NeurIPS 2024).

`W = U S V^T`; with the top-r triplets and the LoRA scaling s = alpha / r,
`A = sqrt(S_r / s) V_r^T` (r x d_in), `B = U_r sqrt(S_r / s)` (d_out x r), and the frozen weight
becomes the residual `W - s B A`, so the adapted model starts as the backbone while the update
trains the principal directions. This is peft 0.21.2's `init_lora_weights="pissa"`
(peft/tuners/lora/layer.py, `LoraLayer.pissa_init`): the SVD in float32 of the (d_out, d_in)
weight, S divided by the scaling before the square root, the residual cast back to the weight's
dtype. The full SVD (`torch.linalg.svd`, not peft's `pissa_niter_` randomised variant) is
deterministic given the weight on CPU, so rebuilding a run from its backbone recomputes the
same residual: a run folder keeps only the trained tensors and reloads exactly.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from models.backbones.sites import projections

INITS = ("default", "pissa")


def principal_factors(weight: torch.Tensor, rank: int, scaling: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A, B and the residual weight of PiSSA for one (d_out, d_in) weight.

    Returns:
        (A: rank x d_in, B: d_out x rank, residual: d_out x d_in in the weight's dtype).
    """
    dtype = weight.dtype
    full = weight.detach().to(torch.float32)
    U, S, Vh = torch.linalg.svd(full, full_matrices=False)
    root = torch.sqrt(S[:rank] / scaling)
    A = torch.diag(root) @ Vh[:rank]  # (r, d_in)
    B = U[:, :rank] @ torch.diag(root)  # (d_out, r)
    residual = (full - scaling * B @ A).to(dtype)
    return A, B, residual


def rank_problems(prefix: str, config, lm: PreTrainedModel) -> list[str]:
    """PiSSA's rank against the targeted weights: r singular triplets need r <= min(d_out, d_in).

    One line per offending weight shape, naming the first such weight and how many share it.
    """
    if getattr(config, "init", "default") != "pissa":
        return []
    by_shape: dict[tuple[int, int], list[str]] = {}
    for projection in projections(lm, config.targets):
        d_out, d_in = projection.module.weight.shape
        if config.rank > min(d_out, d_in):
            by_shape.setdefault((d_out, d_in), []).append(projection.path)
    found = []
    for (d_out, d_in), paths in by_shape.items():
        others = f" and {len(paths) - 1} other targeted weights of that shape" if len(paths) > 1 else ""
        found.append(
            f"{prefix}.rank={config.rank} with {prefix}.init='pissa' exceeds min(d_out, d_in)={min(d_out, d_in)} of "
            f"{paths[0]} ({d_out} x {d_in}){others}: PiSSA takes the top-r singular vectors of each targeted weight; "
            f"use {prefix}.rank <= {min(d_out, d_in)} or drop those targets"
        )
    return found
