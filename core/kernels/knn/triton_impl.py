"""Fused nearest-neighbour search in Triton: squared distances and a running top-k, tiled over the bank.

Each program owns a block of queries and one contiguous split of the bank. Per bank tile it computes
||q||^2 - 2 q.b + ||b||^2 with `tl.dot` (fp16/bf16 on tensor cores; fp32 as IEEE fp32, or TF32 when
`torch.set_float32_matmul_precision` allows it for torch's own matmuls; fp32 accumulation always), then moves the tile's candidates into an unsorted per-query list of the k best: it repeatedly
takes each row's tile minimum while any row still has one better than its current worst. After the first
tiles almost no row does, so a tile usually costs one reduction. Nothing of size N x M is stored; the
partial lists of the bank splits ([splits, N, k]) are merged with one small `topk` on the host side.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .reference import _check, nearest_reference

MAX_K = 16  # a larger k falls back to the reference (the unsorted running list is linear in k)


@triton.jit
def _knn_kernel(
    q_ptr, b_ptr, out_d_ptr, out_i_ptr,
    N, M, D, tiles_per_split,
    stride_qn, stride_qd, stride_bm, stride_bd,
    stride_os, stride_on,
    K: tl.constexpr, K_PAD: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
    IEEE: tl.constexpr,
):
    pid_q = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_q = pid_q * BLOCK_Q + tl.arange(0, BLOCK_Q)
    q_valid = offs_q < N
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_d0 = tl.arange(0, BLOCK_D)
    cols = tl.arange(0, K_PAD)
    inf = float("inf")

    # Unsorted running list; the padding columns hold -inf so they are never the worst and never replaced.
    best_d = tl.where(cols[None, :] < K, inf, -inf) + tl.zeros((BLOCK_Q, K_PAD), dtype=tl.float32)
    best_i = tl.zeros((BLOCK_Q, K_PAD), dtype=tl.int32)
    worst = tl.max(best_d, axis=1)

    q_rows = offs_q.to(tl.int64) * stride_qn
    tile_start = pid_s * tiles_per_split
    tile_end = tl.minimum(tile_start + tiles_per_split, tl.cdiv(M, BLOCK_M))
    for tile in range(tile_start, tile_end):
        offs_m = tile * BLOCK_M + offs_m0
        m_valid = offs_m < M
        b_rows = offs_m.to(tl.int64) * stride_bm
        dot = tl.zeros((BLOCK_Q, BLOCK_M), dtype=tl.float32)
        q_sq = tl.zeros((BLOCK_Q,), dtype=tl.float32)
        b_sq = tl.zeros((BLOCK_M,), dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + offs_d0
            d_valid = offs_d < D
            q = tl.load(q_ptr + q_rows[:, None] + offs_d[None, :] * stride_qd,
                        mask=q_valid[:, None] & d_valid[None, :], other=0.0)
            b = tl.load(b_ptr + b_rows[:, None] + offs_d[None, :] * stride_bd,
                        mask=m_valid[:, None] & d_valid[None, :], other=0.0)
            if IEEE:
                dot = tl.dot(q, tl.trans(b), dot, input_precision="ieee")
            else:
                dot = tl.dot(q, tl.trans(b), dot)
            qf = q.to(tl.float32)
            bf = b.to(tl.float32)
            q_sq += tl.sum(qf * qf, axis=1)
            b_sq += tl.sum(bf * bf, axis=1)
        d2 = tl.maximum(q_sq[:, None] - 2.0 * dot + b_sq[None, :], 0.0)
        d2 = tl.where(m_valid[None, :], d2, inf)

        tile_min = tl.min(d2, axis=1)
        take = tile_min < worst
        while tl.max(take.to(tl.int32), axis=0) > 0:
            arg = tl.argmin(d2, axis=1)
            worst_col = tl.argmax(best_d, axis=1)
            replace = take[:, None] & (cols[None, :] == worst_col[:, None])
            best_d = tl.where(replace, tile_min[:, None], best_d)
            best_i = tl.where(replace, (tile * BLOCK_M + arg)[:, None], best_i)
            d2 = tl.where(offs_m0[None, :] == arg[:, None], inf, d2)
            worst = tl.max(best_d, axis=1)
            tile_min = tl.min(d2, axis=1)
            take = tile_min < worst

    out_offs = pid_s * stride_os + offs_q.to(tl.int64)[:, None] * stride_on + cols[None, :]
    store_mask = q_valid[:, None] & (cols[None, :] < K)
    tl.store(out_d_ptr + out_offs, best_d, mask=store_mask)
    tl.store(out_i_ptr + out_offs, best_i, mask=store_mask)


_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _on_device(device: torch.device):
    import contextlib

    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _n_programs_target(device: torch.device) -> int:
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 1  # the interpreter runs programs one after another: fewer, bigger programs are faster


def nearest_triton(
    queries: torch.Tensor,
    bank: torch.Tensor,
    k: int = 1,
    *,
    block_q: int | None = None,
    block_m: int | None = None,
    block_d: int | None = None,
    splits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as `nearest_reference`: (Euclidean distances [N, k] fp32, indices [N, k] int64), ascending.

    fp16 / bf16 / fp32 inputs (other float types are computed in fp32); k > 16 uses the reference."""
    _check(queries, bank, k)
    if k > MAX_K:
        return nearest_reference(queries, bank, k)
    dtype = torch.promote_types(queries.dtype, bank.dtype)
    if dtype not in _TRITON_DTYPES:
        dtype = torch.float32
    queries, bank = queries.to(dtype), bank.to(dtype)
    n, m = queries.shape[0], bank.shape[0]
    dim = queries.shape[1]
    device = queries.device
    if n == 0:
        return (torch.empty((0, k), dtype=torch.float32, device=device),
                torch.empty((0, k), dtype=torch.int64, device=device))

    block_q = block_q or 64
    block_m = block_m or 64
    block_d = block_d or max(16, min(64, triton.next_power_of_2(dim)))
    k_pad = max(2, triton.next_power_of_2(k))
    q_blocks = triton.cdiv(n, block_q)
    n_tiles = triton.cdiv(m, block_m)
    if splits is None:
        # Enough programs to fill the GPU when there are few queries (the memory-bank case: one image's
        # patches against a million rows), but each split keeps several tiles so the top-k merge stays small.
        splits = max(1, min(triton.cdiv(n_tiles, 4), triton.cdiv(_n_programs_target(device), q_blocks)))
    splits = max(1, min(splits, n_tiles))
    tiles_per_split = triton.cdiv(n_tiles, splits)
    splits = triton.cdiv(n_tiles, tiles_per_split)

    part_d = torch.empty((splits, n, k), dtype=torch.float32, device=device)
    part_i = torch.empty((splits, n, k), dtype=torch.int32, device=device)
    with _on_device(device):  # Triton launches on the current CUDA device, which may not be the tensors'
        _knn_kernel[(q_blocks, splits)](
            queries, bank, part_d, part_i,
            n, m, dim, tiles_per_split,
            queries.stride(0), queries.stride(1), bank.stride(0), bank.stride(1),
            part_d.stride(0), part_d.stride(1),
            K=k, K_PAD=k_pad, BLOCK_Q=block_q, BLOCK_M=block_m, BLOCK_D=block_d,
            IEEE=dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest",
        )
    cand_d = part_d.permute(1, 0, 2).reshape(n, splits * k)
    cand_i = part_i.permute(1, 0, 2).reshape(n, splits * k)
    best_d, pos = torch.topk(cand_d, k, dim=1, largest=False, sorted=True)
    best_i = torch.gather(cand_i, 1, pos).to(torch.int64)
    return best_d.sqrt(), best_i
