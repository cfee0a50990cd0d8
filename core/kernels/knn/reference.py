"""Pure-PyTorch nearest-neighbour search: the CPU path and the ground truth for the Triton kernel.

Tiled over queries and bank so memory stays O(query_chunk x bank_chunk), never O(N x M)."""
from __future__ import annotations

import torch


def nearest_reference(
    queries: torch.Tensor,
    bank: torch.Tensor,
    k: int = 1,
    *,
    query_chunk: int | None = None,
    bank_chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances (fp32) and indices of the k nearest bank rows for every query, ascending.

    Default tiles: 1024 x 1024 on CPU, where a distance block that stays in cache made the search ~2x faster
    than 4096 x 65536 (4096 queries x 4096 bank rows x 152 features, one thread: 78 vs 155 ms, faster even than
    one plain GEMM, 91 ms); 4096 x 65536 on a GPU, where fewer, larger launches win."""
    _check(queries, bank, k)
    on_cpu = queries.device.type == "cpu"
    query_chunk = query_chunk or (1024 if on_cpu else 4096)
    bank_chunk = bank_chunk or (1024 if on_cpu else 65536)
    n, m = queries.shape[0], bank.shape[0]
    out_d = torch.empty((n, k), dtype=torch.float32, device=queries.device)
    out_i = torch.empty((n, k), dtype=torch.int64, device=queries.device)
    # squared bank norms once (M floats), not once per query chunk; fp16/bf16 chunks are upcast when used,
    # so memory stays O(chunk) (for an fp32 bank `.float()` is a free view)
    bank_sq = torch.cat([bank[b0:b0 + bank_chunk].float().square().sum(1) for b0 in range(0, m, bank_chunk)])
    for q0 in range(0, n, query_chunk):
        q = queries[q0:q0 + query_chunk].float()
        qn = (q * q).sum(1, keepdim=True)
        best_d = torch.full((q.shape[0], k), float("inf"), device=q.device)
        best_i = torch.zeros((q.shape[0], k), dtype=torch.int64, device=q.device)
        for b0 in range(0, m, bank_chunk):
            b, bn = bank[b0:b0 + bank_chunk].float(), bank_sq[b0:b0 + bank_chunk]
            # |q|^2 - 2 q.b + |b|^2 in one GEMM with the norms as the added term
            d2 = torch.addmm(qn + bn[None, :], q, b.T, alpha=-2.0).clamp_min_(0.0)
            if k == 1:  # min is a single pass; topk sorts
                cd, ci = d2.min(1, keepdim=True)
                better = cd < best_d
                best_d = torch.where(better, cd, best_d)
                best_i = torch.where(better, ci + b0, best_i)
                continue
            kk = min(k, d2.shape[1])
            cd, ci = torch.topk(d2, kk, dim=1, largest=False)
            cat_d = torch.cat([best_d, cd], 1)
            cat_i = torch.cat([best_i, ci + b0], 1)
            best_d, pos = torch.topk(cat_d, k, dim=1, largest=False)
            best_i = torch.gather(cat_i, 1, pos)
        out_d[q0:q0 + q.shape[0]] = best_d.sqrt()
        out_i[q0:q0 + q.shape[0]] = best_i
    return out_d, out_i


def _check(queries: torch.Tensor, bank: torch.Tensor, k: int) -> None:
    if queries.ndim != 2 or bank.ndim != 2:
        raise ValueError(f"queries and bank must be 2-D (rows x features), got {tuple(queries.shape)} and {tuple(bank.shape)}")
    if queries.shape[1] != bank.shape[1]:
        raise ValueError(f"feature sizes differ: queries {queries.shape[1]}, bank {bank.shape[1]}")
    if bank.shape[0] == 0:
        raise ValueError("the memory bank is empty: fit on at least one image/row first")
    if not 1 <= k <= bank.shape[0]:
        raise ValueError(f"k={k} must be between 1 and the bank size {bank.shape[0]}")
