"""Approximate greedy coreset (k-center) subsampling of a memory bank, as in PatchCore.

Distances are computed in a random projection (Johnson-Lindenstrauss) to cut cost; each step adds the
row farthest from the current selection and updates every row's distance to the selection."""
from __future__ import annotations

import torch


def greedy_coreset(features: torch.Tensor, n_select: int, *, proj_dim: int = 128, seed: int = 0) -> torch.Tensor:
    """Indices (int64) of `n_select` rows of `features` [N, D] covering it greedily."""
    n = features.shape[0]
    if n_select >= n:
        return torch.arange(n)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = features.float()
    if x.shape[1] > proj_dim:
        proj = torch.randn(x.shape[1], proj_dim, generator=gen) / proj_dim ** 0.5
        x = x @ proj.to(x.device)
    sq = (x * x).sum(1)
    start = int(torch.randint(n, (1,), generator=gen))
    selected = torch.empty(n_select, dtype=torch.int64)
    selected[0] = start
    # squared distance of every row to its nearest selected row
    min_d = (sq - 2 * (x @ x[start]) + sq[start]).clamp_min_(0)
    for i in range(1, n_select):
        j = int(torch.argmax(min_d))
        selected[i] = j
        d = (sq - 2 * (x @ x[j]) + sq[j]).clamp_min_(0)
        torch.minimum(min_d, d, out=min_d)
    return selected
