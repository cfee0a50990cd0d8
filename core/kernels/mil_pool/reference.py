"""Gated-attention MIL pooling (Ilse et al. 2018; CLAM) in plain PyTorch: the CPU path and the ground truth.

scores = (tanh(h Wv^T + bv) * sigmoid(h Wu^T + bu)) Ww^T + bw   -> [N, heads]
attention = softmax over the N instances, pooled = attention^T h  -> [heads, D]"""
from __future__ import annotations

import torch


def gated_attention_pool_reference(h, w_v, b_v, w_u, b_u, w_w, b_w):
    """h [N, D]; w_v, w_u [H, D]; b_v, b_u [H]; w_w [heads, H]; b_w [heads].
    Returns (pooled [heads, D], attention [heads, N] summing to 1, raw scores [heads, N])."""
    if h.ndim != 2 or h.shape[0] == 0:
        raise ValueError(f"a bag must be a non-empty [instances, features] tensor, got {tuple(h.shape)}")
    a = torch.tanh(torch.nn.functional.linear(h, w_v, b_v))
    g = torch.sigmoid(torch.nn.functional.linear(h, w_u, b_u))
    scores = torch.nn.functional.linear(a * g, w_w, b_w).T  # [heads, N]
    # softmax in fp32 at least (fp16/bf16 scores would lose the small weights; fp64 stays fp64)
    attention = torch.softmax(scores.to(torch.promote_types(scores.dtype, torch.float32)), dim=1)
    pooled = attention.to(h.dtype) @ h
    return pooled, attention, scores
