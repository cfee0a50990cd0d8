"""Approximate greedy coreset (k-center) subsampling of a memory bank, as in PatchCore.

Distances are computed in a random projection (Johnson-Lindenstrauss) to cut cost; each step adds the
row farthest from the current selection and updates every row's distance to the selection."""
from __future__ import annotations

import torch


def greedy_coreset(features: torch.Tensor, n_select: int, *, proj_dim: int | None = None, seed: int = 0) -> torch.Tensor:
    """Indices (int64) of `n_select` rows of `features` [N, D] covering it greedily.

    `proj_dim` (default: 128 for small banks, down to 32 for large ones) keeps the projected matrix near
    cache size: each step reads it once, so a matrix that spills out of cache makes the loop memory-bound."""
    n = features.shape[0]
    if n_select >= n:
        return torch.arange(n)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if proj_dim is None:
        proj_dim = int(min(128, max(32, (1 << 20) // max(n, 1))))
    x = features.float()
    if x.shape[1] > proj_dim:
        proj = torch.randn(x.shape[1], proj_dim, generator=gen) / proj_dim ** 0.5
        x = x @ proj.to(x.device)
    x = x.contiguous()
    sq = (x * x).sum(1)
    selected = torch.empty(n_select, dtype=torch.int64)
    j = int(torch.randint(n, (1,), generator=gen))
    # squared distance of every row to its nearest selected row; one fused addmv per step, no temporaries
    # (this loop is memory-bound: temporaries made it several times slower on a busy CPU)
    min_d = torch.full((n,), float("inf"), device=x.device)
    d = torch.empty(n, device=x.device)
    for i in range(n_select):
        selected[i] = j
        torch.addmv(sq, x, x[j], alpha=-2.0, out=d)
        d.add_(sq[j])
        torch.minimum(min_d, d, out=min_d)
        j = int(torch.argmax(min_d))
    return selected
