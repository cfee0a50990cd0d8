"""Gated-attention MIL pooling over the tile embeddings of one slide.

`GatedAttentionPool(in_dim, hidden_dim, n_heads)` is the module the pathology models use:
forward(h [N, D]) -> (pooled [n_heads, D], attention [n_heads, N], raw scores [n_heads, N]).
CUDA tensors use the fused Triton kernel (forward and backward) when available; otherwise the reference."""
from __future__ import annotations

import torch
from torch import nn

from .._dispatch import resource_errors, use_triton, warn_fallback
from .reference import gated_attention_pool_reference

__all__ = ["GatedAttentionPool", "gated_attention_pool", "gated_attention_pool_reference"]


def gated_attention_pool(h, w_v, b_v, w_u, b_u, w_w, b_w):
    if use_triton(h, w_v, w_u, w_w):
        try:
            from .triton_impl import gated_attention_pool_triton
        except ImportError:
            pass
        else:
            try:
                return gated_attention_pool_triton(h, w_v, b_v, w_u, b_u, w_w, b_w)
            except resource_errors() as exc:
                warn_fallback("gated_attention_pool", exc)
    return gated_attention_pool_reference(h, w_v, b_v, w_u, b_u, w_w, b_w)


class GatedAttentionPool(nn.Module):
    def __init__(self, in_dim: int, hidden_dim: int = 128, n_heads: int = 1, dropout: float = 0.0):
        super().__init__()
        self.attention_v = nn.Linear(in_dim, hidden_dim)
        self.attention_u = nn.Linear(in_dim, hidden_dim)
        self.attention_w = nn.Linear(hidden_dim, n_heads)
        self.dropout = nn.Dropout(dropout)  # on the instances, before scoring (regularises big bags)

    def forward(self, h: torch.Tensor):
        h = self.dropout(h)
        return gated_attention_pool(
            h,
            self.attention_v.weight, self.attention_v.bias,
            self.attention_u.weight, self.attention_u.bias,
            self.attention_w.weight, self.attention_w.bias,
        )
