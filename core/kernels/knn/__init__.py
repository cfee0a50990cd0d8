"""Nearest-neighbour distance to a large memory bank (vision inspection, similarity search).

`nearest(queries, bank, k)` -> (distances [N, k] fp32 Euclidean, indices [N, k] int64), ascending.
The reference (tiled PyTorch) is the CPU path; CUDA tensors use the fused Triton kernel when available."""
from __future__ import annotations

import torch

from .._dispatch import resource_errors, use_triton, warn_fallback
from .reference import nearest_reference

__all__ = ["nearest", "nearest_reference"]


def nearest(queries: torch.Tensor, bank: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    if use_triton(queries, bank):
        try:
            from .triton_impl import nearest_triton
        except ImportError:
            pass
        else:
            try:
                return nearest_triton(queries, bank, k)
            except resource_errors() as exc:
                warn_fallback("nearest", exc)
    return nearest_reference(queries, bank, k)
