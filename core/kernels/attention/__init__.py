"""Attention over long sequences (transformer MIL) through PyTorch's scaled-dot-product attention, which
picks flash / memory-efficient kernels on GPU. The math path is the reference: `VAI_SDPA_MATH=1` or
`math=True` forces it."""
from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["attention", "math_forced"]


def math_forced() -> bool:
    return os.environ.get("VAI_SDPA_MATH", "").strip().lower() in {"1", "true", "yes"}


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, attn_mask=None, dropout_p: float = 0.0,
              math: bool | None = None) -> torch.Tensor:
    """q, k, v: [batch, heads, seq, head_dim]. Returns [batch, heads, seq, head_dim]."""
    use_math = math_forced() if math is None else math
    ctx = sdpa_kernel(SDPBackend.MATH) if use_math else contextlib.nullcontext()
    with ctx:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
