"""Approximate nearest-neighbour distances from one bf16 GEMM per tile: a fast first pass on CPUs with native
bf16 matrix units (AMX), where the bf16 GEMM is ~6x the fp32 one.

Approximate: the GEMM's bf16 output keeps ~3 significant digits, and |q|^2 - 2 q.b + |b|^2 cancels. Centring
on the bank mean shrinks the cancelled terms (CNN features are non-negative, with a large common mean), and
|b|^2 rides in the GEMM as an extra column, so the whole scan is GEMM + min with nothing materialised at fp32.
On ImageNet-CNN patch features (ELPV, 4,096 x 4,096 x 152) distances were within 0.4% (median), 3% (99th
percentile), 11% (worst) of the fp32 search, ~5x faster on one thread. Use it to shortlist, then compute the
rows that matter exactly with `nearest` (the vision detector re-ranks each image's highest patches)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .reference import _check


@dataclass(frozen=True)
class Bf16ScanBank:
    """A bank prepared once for `min_distance_bf16`: rows [-2 (b - c), |b - c|^2, 0 padding] in bf16."""
    centre: torch.Tensor   # [D] fp32, the bank mean
    rows: torch.Tensor     # [M, Dp] bf16, Dp = D + 1 rounded up to 32 (the matrix units' tile width)
    dim: int               # D

    @property
    def size(self) -> int:
        return self.rows.shape[0]


def prepare_bf16_scan(bank: torch.Tensor) -> Bf16ScanBank:
    bank = bank.float()
    centre = bank.mean(0)
    b = bank - centre
    m, d = b.shape
    rows = torch.zeros(m, _padded(d), dtype=torch.float32, device=bank.device)
    rows[:, :d] = -2.0 * b
    rows[:, d] = b.square().sum(1)
    return Bf16ScanBank(centre=centre, rows=rows.to(torch.bfloat16), dim=d)


def min_distance_bf16(queries: torch.Tensor, bank: Bf16ScanBank, *, query_chunk: int = 4096,
                      bank_chunk: int = 512) -> torch.Tensor:
    """Approximate Euclidean distance [N] (fp32) from every query to its nearest bank row (see the module note).

    Tiles of 4096 queries x 512 bank rows measured fastest on one thread (a 4 MB bf16 block stays in cache)."""
    _check(queries, bank.rows[:, :bank.dim], 1)
    q = queries.float() - bank.centre
    n, d = q.shape
    qa = torch.zeros(n, bank.rows.shape[1], dtype=torch.bfloat16, device=q.device)
    qa[:, :d] = q
    qa[:, d] = 1.0
    out = torch.empty(n, dtype=torch.float32, device=q.device)
    for q0 in range(0, n, query_chunk):
        block = qa[q0:q0 + query_chunk]
        # per bank tile: |b|^2 - 2 q.b (bf16), min over the tile's rows; then min over tiles
        mins = [(block @ bank.rows[b0:b0 + bank_chunk].T).amin(1) for b0 in range(0, bank.size, bank_chunk)]
        out[q0:q0 + block.shape[0]] = torch.stack(mins, 1).amin(1).float()
    return (out + q.square().sum(1)).clamp_min_(0.0).sqrt_()


def _padded(d: int) -> int:
    return (d + 1 + 31) // 32 * 32
