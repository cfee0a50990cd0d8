"""Nearest-neighbour distance to a large memory bank (vision inspection, similarity search).

`nearest(queries, bank, k)` -> (distances [N, k] fp32 Euclidean, indices [N, k] int64), ascending.
The reference (tiled PyTorch) is the CPU path; CUDA tensors use the fused Triton kernel when available.
`min_distance_bf16` is an approximate first pass for CPUs with native bf16 (shortlist with it, then `nearest`)."""
from __future__ import annotations

import torch

from .._dispatch import resource_errors, use_triton, warn_fallback
from .bf16_scan import Bf16ScanBank, min_distance_bf16, prepare_bf16_scan
from .reference import nearest_reference

__all__ = ["nearest", "nearest_reference", "Bf16ScanBank", "prepare_bf16_scan", "min_distance_bf16"]


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
