"""Fused gated-attention MIL pooling in Triton (forward) with a recompute-based backward.

Forward, two passes over the instances, neither storing an [N, hidden] activation:
1. `_scores_kernel`: per tile of instances, both projections (h Wv^T, h Wu^T) with `tl.dot`, the gate
   tanh(.) * sigmoid(.), and the head scores, all in registers; only the raw scores [heads, N] are written.
2. the softmax statistics (one log-sum-exp per head over [heads, N], tiny), then `_pool_kernel`: per
   (feature block, instance split) program, attention = exp(score - lse) (stored) and its weighted sum of h;
   the few split partials are added up afterwards.
Backward recomputes the projections chunk by chunk over N (so memory stays O(chunk x hidden)) and applies the
analytic gradients of softmax, gate and projections with cuBLAS matmuls; `tests/kernels` holds it to the
reference's autograd for h and every weight and bias.
Precision: inputs fp16/bf16/fp32 (under autocast the autocast dtype), fp32 accumulation, fp32 softmax.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def scores_launch_options(dtype_bytes: int) -> dict:
    """fp32 operands double the shared-memory tiles; two pipeline stages keep the scoring kernel under
    ~100 KiB, the limit of consumer (sm_86/89) GPUs."""
    return {"num_stages": 2} if dtype_bytes >= 4 else {}


@triton.jit
def _sigmoid(x):
    e = tl.exp(-tl.abs(x))  # never overflows
    return tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _scores_kernel(
    h_ptr, wv_ptr, bv_ptr, wu_ptr, bu_ptr, ww_ptr, bw_ptr, s_ptr,
    N, D, H, HEADS,
    stride_hn, stride_hd,
    BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr, HEADS_PAD: tl.constexpr,
    IEEE: tl.constexpr,
):
    """Raw scores [HEADS, N] (fp32). Weights are contiguous: wv, wu [H, D] in h's dtype; ww [HEADS, H],
    biases fp32."""
    pid = tl.program_id(0)
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    n_valid = offs_n < N
    offs_h0 = tl.arange(0, BLOCK_H)
    offs_d0 = tl.arange(0, BLOCK_D)
    heads = tl.arange(0, HEADS_PAD)
    h_rows = offs_n.to(tl.int64) * stride_hn
    scores = tl.zeros((BLOCK_N, HEADS_PAD), dtype=tl.float32)
    for h0 in range(0, H, BLOCK_H):
        offs_h = h0 + offs_h0
        hid_valid = offs_h < H
        v = tl.zeros((BLOCK_N, BLOCK_H), dtype=tl.float32)
        u = tl.zeros((BLOCK_N, BLOCK_H), dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + offs_d0
            d_valid = offs_d < D
            x = tl.load(h_ptr + h_rows[:, None] + offs_d[None, :] * stride_hd,
                        mask=n_valid[:, None] & d_valid[None, :], other=0.0)
            w_offs = offs_h[:, None] * D + offs_d[None, :]
            w_mask = hid_valid[:, None] & d_valid[None, :]
            wv = tl.load(wv_ptr + w_offs, mask=w_mask, other=0.0)
            wu = tl.load(wu_ptr + w_offs, mask=w_mask, other=0.0)
            if IEEE:
                v = tl.dot(x, tl.trans(wv), v, input_precision="ieee")
                u = tl.dot(x, tl.trans(wu), u, input_precision="ieee")
            else:
                v = tl.dot(x, tl.trans(wv), v)
                u = tl.dot(x, tl.trans(wu), u)
        v += tl.load(bv_ptr + offs_h, mask=hid_valid, other=0.0)[None, :]
        u += tl.load(bu_ptr + offs_h, mask=hid_valid, other=0.0)[None, :]
        gate = (2.0 * _sigmoid(2.0 * v) - 1.0) * _sigmoid(u)  # tanh(v) * sigmoid(u); padded hidden units give 0
        ww_t = tl.load(ww_ptr + heads[None, :] * H + offs_h[:, None],
                       mask=(heads[None, :] < HEADS) & hid_valid[:, None], other=0.0)  # [BLOCK_H, HEADS_PAD]
        scores = tl.dot(gate, ww_t, scores, input_precision="ieee")
    scores += tl.load(bw_ptr + heads, mask=heads < HEADS, other=0.0)[None, :]
    tl.store(s_ptr + heads[None, :] * N + offs_n[:, None], scores,
             mask=n_valid[:, None] & (heads[None, :] < HEADS))


@triton.jit
def _pool_kernel(
    h_ptr, s_ptr, lse_ptr, att_ptr, part_ptr,
    N, D, HEADS, tiles_per_split,
    stride_hn, stride_hd,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, HEADS_PAD: tl.constexpr, IEEE: tl.constexpr,
):
    """attention = exp(scores - lse) (written by the first feature block) and partial pooled sums
    part[split, head, d] = sum over the split's instances of attention * h."""
    pid_d = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    d_valid = offs_d < D
    heads = tl.arange(0, HEADS_PAD)
    head_valid = heads < HEADS
    lse = tl.load(lse_ptr + heads, mask=head_valid, other=0.0)
    acc = tl.zeros((HEADS_PAD, BLOCK_D), dtype=tl.float32)
    tile_start = pid_s * tiles_per_split
    tile_end = tl.minimum(tile_start + tiles_per_split, tl.cdiv(N, BLOCK_N))
    for tile in range(tile_start, tile_end):
        offs_n = tile * BLOCK_N + tl.arange(0, BLOCK_N)
        n_valid = offs_n < N
        sa_offs = heads[:, None] * N + offs_n[None, :]
        sa_mask = head_valid[:, None] & n_valid[None, :]
        s = tl.load(s_ptr + sa_offs, mask=sa_mask, other=float("-inf"))
        p = tl.where(sa_mask, tl.exp(s - lse[:, None]), 0.0)  # [HEADS_PAD, BLOCK_N]
        if pid_d == 0:
            tl.store(att_ptr + sa_offs, p, mask=sa_mask)
        x = tl.load(h_ptr + offs_n.to(tl.int64)[:, None] * stride_hn + offs_d[None, :] * stride_hd,
                    mask=n_valid[:, None] & d_valid[None, :], other=0.0)
        if IEEE:
            acc = tl.dot(p, x, acc, input_precision="ieee")
        else:
            acc = tl.dot(p.to(x.dtype), x, acc)
    tl.store(part_ptr + pid_s * HEADS * D + heads[:, None] * D + offs_d[None, :], acc,
             mask=head_valid[:, None] & d_valid[None, :])


def _on_device(device: torch.device):
    """Triton launches on the current CUDA device, which may not be the tensors' (multi-GPU)."""
    import contextlib

    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _n_programs_target(device: torch.device) -> int:
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 1  # the interpreter runs programs one after another


def _compute_dtype(h: torch.Tensor, *weights: torch.Tensor) -> torch.dtype:
    if torch.is_autocast_enabled(h.device.type):
        return torch.get_autocast_dtype(h.device.type)
    dtype = h.dtype
    for w in weights:
        dtype = torch.promote_types(dtype, w.dtype)
    return dtype if dtype in _TRITON_DTYPES else torch.float32


def _forward(h, w_v, b_v, w_u, b_u, w_w, b_w, dtype, blocks):
    n, dim = h.shape
    hidden, n_heads = w_v.shape[0], w_w.shape[0]
    device = h.device
    # fp32 follows torch's own matmul setting: IEEE by default, TF32 when set_float32_matmul_precision allows
    ieee = dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest"
    block_n, block_h, block_d = blocks
    heads_pad = max(16, triton.next_power_of_2(n_heads))  # tl.dot needs 16 rows at least
    hx = h.to(dtype)
    wv, wu = w_v.to(dtype).contiguous(), w_u.to(dtype).contiguous()
    ww = w_w.float().contiguous()
    bv, bu, bw = (b.float().contiguous() for b in (b_v, b_u, b_w))

    scores = torch.empty((n_heads, n), dtype=torch.float32, device=device)
    _scores_kernel[(triton.cdiv(n, block_n),)](
        hx, wv, bv, wu, bu, ww, bw, scores,
        n, dim, hidden, n_heads, hx.stride(0), hx.stride(1),
        BLOCK_N=block_n, BLOCK_H=block_h, BLOCK_D=block_d, HEADS_PAD=heads_pad, IEEE=ieee,
        **scores_launch_options(hx.element_size()),
    )
    lse = torch.logsumexp(scores, dim=1)

    pool_block_d = max(16, min(128, triton.next_power_of_2(dim)))
    d_blocks = triton.cdiv(dim, pool_block_d)
    n_tiles = triton.cdiv(n, block_n)
    splits = max(1, min(n_tiles, triton.cdiv(_n_programs_target(device), d_blocks)))
    tiles_per_split = triton.cdiv(n_tiles, splits)
    splits = triton.cdiv(n_tiles, tiles_per_split)
    attention = torch.empty((n_heads, n), dtype=torch.float32, device=device)
    partial = torch.empty((splits, n_heads, dim), dtype=torch.float32, device=device)
    _pool_kernel[(d_blocks, splits)](
        hx, scores, lse, attention, partial,
        n, dim, n_heads, tiles_per_split, hx.stride(0), hx.stride(1),
        BLOCK_N=block_n, BLOCK_D=pool_block_d, HEADS_PAD=heads_pad, IEEE=ieee,
    )
    pooled = partial.sum(0)
    return pooled, attention, scores


class _GatedAttentionPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w_v, b_v, w_u, b_u, w_w, b_w, blocks, backward_chunk):
        dtype = _compute_dtype(h, w_v, w_u, w_w)
        with torch.autocast(h.device.type, enabled=False), _on_device(h.device):
            pooled, attention, scores = _forward(h, w_v, b_v, w_u, b_u, w_w, b_w, dtype, blocks)
        ctx.save_for_backward(h, w_v, b_v, w_u, b_u, w_w, attention, pooled)
        ctx.b_w_dtype = b_w.dtype
        ctx.dtype, ctx.backward_chunk = dtype, backward_chunk
        return pooled.to(dtype), attention, scores.to(dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable  # the analytic backward is not itself differentiable
    def backward(ctx, g_pooled, g_attention, g_scores):
        h, w_v, b_v, w_u, b_u, w_w, attention, pooled = ctx.saved_tensors
        with torch.autocast(h.device.type, enabled=False):
            grads = _backward(h, w_v, b_v, w_u, b_u, w_w, attention, pooled,
                              g_pooled, g_attention, g_scores, ctx.dtype, ctx.backward_chunk,
                              ctx.needs_input_grad, ctx.b_w_dtype)
        return (*grads, None, None)


def _backward(h, w_v, b_v, w_u, b_u, w_w, attention, pooled, g_pooled, g_attention, g_scores,
              dtype, chunk, needs, b_w_dtype):
    """Analytic gradients, recomputing the projections per chunk of instances.

    With A = softmax(S), P = A h: dS = A * (dA - rowsum(dA * A)) + g_scores, where dA = g_attention + g_P h^T,
    so rowsum(dA * A) = rowsum(g_attention * A) + rowsum(g_P * P) needs no pass over the instances.
    Matmuls run in the compute dtype (fp32 accumulation), element-wise maths in fp32."""
    n, dim = h.shape
    n_heads = w_w.shape[0]
    f32 = torch.float32

    def mm(a, b):
        return (a.to(dtype) @ b.to(dtype)).to(f32)

    g_pooled = torch.zeros((n_heads, dim), dtype=f32, device=h.device) if g_pooled is None else g_pooled.to(f32)
    g_att = None if g_attention is None else g_attention.to(f32)
    g_sc = None if g_scores is None else g_scores.to(f32)
    row_dot = (g_pooled * pooled).sum(1)
    if g_att is not None:
        row_dot = row_dot + (g_att * attention).sum(1)

    wv, wu, ww = w_v.to(dtype), w_u.to(dtype), w_w.to(f32)
    bv, bu = b_v.to(dtype), b_u.to(dtype)
    dh = torch.empty((n, dim), dtype=h.dtype, device=h.device) if needs[0] else None
    dwv = torch.zeros(w_v.shape, dtype=f32, device=h.device)
    dwu = torch.zeros(w_u.shape, dtype=f32, device=h.device)
    dbv = torch.zeros(w_v.shape[0], dtype=f32, device=h.device)
    dbu = torch.zeros(w_u.shape[0], dtype=f32, device=h.device)
    dww = torch.zeros(w_w.shape, dtype=f32, device=h.device)
    dbw = torch.zeros(w_w.shape[0], dtype=f32, device=h.device)
    for c0 in range(0, n, chunk):
        hc = h[c0:c0 + chunk].to(dtype)
        a_c = attention[:, c0:c0 + chunk]
        t = torch.tanh(torch.nn.functional.linear(hc, wv, bv).to(f32))
        sg = torch.sigmoid(torch.nn.functional.linear(hc, wu, bu).to(f32))
        gate = t * sg
        d_att = mm(g_pooled, hc.T)  # [heads, chunk]
        if g_att is not None:
            d_att = d_att + g_att[:, c0:c0 + chunk]
        d_s = a_c * (d_att - row_dot[:, None])
        if g_sc is not None:
            d_s = d_s + g_sc[:, c0:c0 + chunk]
        dww += d_s @ gate
        dbw += d_s.sum(1)  # d score / d b_w = 1 for every instance
        d_gate = d_s.T @ ww  # [chunk, hidden]
        d_v = d_gate * sg * (1.0 - t * t)
        d_u = d_gate * t * sg * (1.0 - sg)
        dwv += mm(d_v.T, hc)
        dwu += mm(d_u.T, hc)
        dbv += d_v.sum(0)
        dbu += d_u.sum(0)
        if dh is not None:
            dh[c0:c0 + chunk] = (mm(a_c.T, g_pooled) + mm(d_v, wv) + mm(d_u, wu)).to(h.dtype)
    return (
        dh,
        dwv.to(w_v.dtype) if needs[1] else None,
        dbv.to(b_v.dtype) if needs[2] else None,
        dwu.to(w_u.dtype) if needs[3] else None,
        dbu.to(b_u.dtype) if needs[4] else None,
        dww.to(w_w.dtype) if needs[5] else None,
        dbw.to(b_w_dtype) if needs[6] else None,
    )


def gated_attention_pool_triton(h, w_v, b_v, w_u, b_u, w_w, b_w, *, block_n: int = 64, block_h: int = 64,
                                block_d: int = 64, backward_chunk: int = 16384):
    """Same contract as `gated_attention_pool_reference`: (pooled [heads, D], attention [heads, N] fp32,
    raw scores [heads, N]); differentiable in h and every weight and bias."""
    if h.ndim != 2 or h.shape[0] == 0:
        raise ValueError(f"a bag must be a non-empty [instances, features] tensor, got {tuple(h.shape)}")
    hidden = w_v.shape[0]
    zeros = torch.zeros(hidden, dtype=w_v.dtype, device=h.device)
    b_v = zeros if b_v is None else b_v
    b_u = zeros if b_u is None else b_u
    b_w = torch.zeros(w_w.shape[0], dtype=w_w.dtype, device=h.device) if b_w is None else b_w
    return _GatedAttentionPool.apply(h, w_v, b_v, w_u, b_u, w_w, b_w, (block_n, block_h, block_d), backward_chunk)
