"""The parameterised hypercomplex multiplication (PHM) linear layer, shared by Compacter and LPHM.

Zhang et al., "Beyond Fully-Connected Layers with Quaternions", ICLR 2021 (PHM);
Mahabadi et al., "Compacter", NeurIPS 2021 (shared rules, low-rank LPHM).

    W = sum_{i=1..k} A_i (x) B_i,   A_i in R^{k x k} ("rule"),   B_i in R^{(d_in/k) x (d_out/k)}

LPHM factorises every `B_i = u_i v_i^T` with rank r. A layer owns its rules unless it is
given a `SharedRule` (Compacter shares one set of rules across all layers).
"""

from __future__ import annotations

import torch
from torch import nn


class SharedRule(nn.Module):
    """The k rule matrices A_i, held once and referenced by many `PHMLinear` layers."""

    def __init__(self, k: int, init_range: float):
        super().__init__()
        self.rule = nn.Parameter(torch.empty(k, k, k))  # (k, k, k): A_i = rule[i]
        nn.init.normal_(self.rule, std=init_range)


class PHMLinear(nn.Module):
    """`y = x W + b` with a Kronecker-structured `W` (d_in x d_out).

    Args:
        d_in: input features; divisible by k.
        d_out: output features; divisible by k.
        k: number of Kronecker summands (and side of each rule matrix).
        rank: None for full `B_i`, else the rank r of `B_i = u_i v_i^T` (LPHM).
        shared_rule: rules owned elsewhere (shared across layers), or None to own them.
        zero_init: start with W = 0 and b = 0 (the up projection of an identity adapter).
        init_range: standard deviation of an owned rule's normal initialisation.

    Raises:
        ValueError: d_in or d_out not divisible by k.
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        k: int,
        rank: int | None = None,
        shared_rule: SharedRule | None = None,
        zero_init: bool = False,
        init_range: float = 0.01,
    ):
        super().__init__()
        if d_in % k or d_out % k:
            raise ValueError(f"PHM needs d_in and d_out divisible by k, got d_in={d_in}, d_out={d_out}, k={k}")
        self.d_in, self.d_out, self.k = d_in, d_out, k
        p, q = d_in // k, d_out // k
        if shared_rule is None:
            self.rule = nn.Parameter(torch.empty(k, k, k))
            nn.init.normal_(self.rule, std=init_range)
        self._shared_rule = [shared_rule] if shared_rule is not None else []  # plain reference
        if rank is None:
            self.B = nn.Parameter(torch.empty(k, p, q))  # (k, d_in/k, d_out/k)
            _glorot(self.B, p, q)
            if zero_init:
                nn.init.zeros_(self.B)
        else:
            self.u = nn.Parameter(torch.empty(k, p, rank))  # (k, d_in/k, r)
            self.v = nn.Parameter(torch.empty(k, rank, q))  # (k, r, d_out/k)
            _glorot(self.u, p, rank)
            _glorot(self.v, rank, q)
            if zero_init:
                nn.init.zeros_(self.v)  # B = u v^T = 0, while u still receives gradients
        self.bias = nn.Parameter(torch.zeros(d_out))

    def rules(self) -> torch.Tensor:
        return self._shared_rule[0].rule if self._shared_rule else self.rule

    def weight(self) -> torch.Tensor:
        # (d_in, d_out) = sum_i kron(A_i (k, k), B_i (p, q)); kron(A, B)[a*p + c, b*q + d] = A[a, b] B[c, d]
        B = self.B if hasattr(self, "B") else self.u @ self.v  # (k, p, q)
        A = self.rules()  # (k, k, k)
        k, p, q = B.shape
        return torch.einsum("iab,icd->acbd", A, B).reshape(k * p, k * q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., d_in) -> (..., d_out)
        return x @ self.weight().to(x.dtype) + self.bias.to(x.dtype)


def _glorot(tensor: torch.Tensor, fan_in: int, fan_out: int) -> None:
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    nn.init.uniform_(tensor, -bound, bound)
