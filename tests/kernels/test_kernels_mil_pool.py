"""Gated-attention MIL pooling: the reference against a brute-force per-instance formula and float64 gradcheck,
the Triton forward + backward (interpreter on CPU, real on CUDA) against the reference's autograd."""
import math

import pytest
import torch

from vai.core.kernels import mil_pool as mil_mod
from vai.core.kernels.mil_pool import GatedAttentionPool, gated_attention_pool, gated_attention_pool_reference
from vai.core.kernels.mil_pool.triton_impl import gated_attention_pool_triton

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def make_params(n, d, hidden, heads, seed=0, dtype=torch.float32, device="cpu", scale=1.0):
    g = torch.Generator().manual_seed(seed)
    ps = [
        scale * torch.randn(n, d, generator=g),
        torch.randn(hidden, d, generator=g) / math.sqrt(d),
        0.1 * torch.randn(hidden, generator=g),
        torch.randn(hidden, d, generator=g) / math.sqrt(d),
        0.1 * torch.randn(hidden, generator=g),
        torch.randn(heads, hidden, generator=g) / math.sqrt(hidden),
        0.1 * torch.randn(heads, generator=g),
    ]
    return [p.to(device=device, dtype=dtype).requires_grad_() for p in ps]


def brute_force(h, w_v, b_v, w_u, b_u, w_w, b_w):
    """One instance and one head at a time, straight from the definition (Ilse et al. 2018)."""
    n, heads = h.shape[0], w_w.shape[0]
    scores = torch.empty(heads, n, dtype=torch.float64)
    for j in range(heads):
        for i in range(n):
            x = h[i].double()
            gate = torch.tanh(w_v.double() @ x + b_v.double()) * torch.sigmoid(w_u.double() @ x + b_u.double())
            scores[j, i] = w_w[j].double() @ gate + b_w[j].double()
    att = torch.exp(scores - scores.max(1, keepdim=True).values)
    att = att / att.sum(1, keepdim=True)
    return att @ h.double(), att, scores


def loss_of(outputs, seed=1):
    """A loss using all three outputs, so every backward path (pooled, attention, raw scores) is exercised."""
    pooled, attention, scores = outputs
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(o.shape, generator=g).to(o.device) for o in outputs]
    return sum((o.float() * w).sum() for o, w in zip((pooled, attention, scores), weights))


def grads(params, fn, **kw):
    for p in params:
        p.grad = None
    out = fn(*params, **kw)
    loss_of(out).backward()
    return out, [p.grad.detach().clone() for p in params]


# ---------------------------------------------------------------- reference
@pytest.mark.parametrize("n,d,hidden,heads", [(1, 4, 3, 1), (11, 6, 5, 2), (30, 8, 16, 3)])
def test_reference_matches_brute_force(n, d, hidden, heads):
    ps = [p.detach() for p in make_params(n, d, hidden, heads, seed=n)]
    pooled, att, scores = gated_attention_pool_reference(*ps)
    bp, ba, bs = brute_force(*ps)
    torch.testing.assert_close(scores.double(), bs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(att.double(), ba, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(pooled.double(), bp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(att.sum(1), torch.ones(heads))


def test_reference_gradients_pass_gradcheck():
    ps = make_params(7, 5, 4, 2, seed=3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *p: gated_attention_pool_reference(*p), ps)


def test_reference_gradients_match_brute_force():
    ps = make_params(9, 6, 5, 2, seed=8)
    ps64 = [p.detach().double().requires_grad_() for p in ps]
    _, g = grads(ps, gated_attention_pool_reference)
    _, g64 = grads(ps64, brute_force)
    for a, b in zip(g, g64):
        torch.testing.assert_close(a.double(), b, atol=1e-5, rtol=1e-4)


def test_reference_rejects_empty_bag():
    ps = [p.detach() for p in make_params(3, 4, 3, 1)]
    with pytest.raises(ValueError, match="non-empty"):
        gated_attention_pool_reference(torch.empty(0, 4), *ps[1:])
    with pytest.raises(ValueError, match="non-empty"):
        gated_attention_pool_triton(torch.empty(0, 4), *ps[1:])


# ---------------------------------------------------------------- Triton (interpreter on CPU) vs reference
SHAPES = [
    # n, d, hidden, heads, blocks (n, h, d), backward chunk
    (133, 40, 24, 1, (32, 16, 16), 50),   # nothing a multiple of a block; backward over 3 chunks
    (1, 16, 16, 3, (16, 16, 16), 16),     # one instance: attention is exactly 1
    (70, 24, 40, 2, (64, 64, 64), 16384), # one block covers everything
    (200, 33, 17, 4, (16, 16, 32), 64),   # many tiles, odd sizes
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("n,d,hidden,heads,blocks,chunk", SHAPES)
def test_triton_forward_and_backward_match_reference(n, d, hidden, heads, blocks, chunk, dtype):
    ps = make_params(n, d, hidden, heads, seed=n + d, dtype=dtype)
    ref_ps = [p.detach().float().requires_grad_() for p in ps]  # reference in fp32 on the same rounded inputs
    bn, bh, bd = blocks
    out, g = grads(ps, gated_attention_pool_triton, block_n=bn, block_h=bh, block_d=bd, backward_chunk=chunk)
    ref, ref_g = grads(ref_ps, gated_attention_pool_reference)
    assert out[0].dtype == dtype and out[1].dtype == torch.float32 and out[2].dtype == dtype
    assert [o.shape for o in out] == [r.shape for r in ref]
    # fp32: only summation order differs. fp16: the outputs are rounded to fp16 (rel. 2^-11 ~ 5e-4) and
    # the backward matmuls take fp16 operands, so allow a few fp16 ulps relative to each tensor's scale.
    tol = 1e-5 if dtype == torch.float32 else 4e-3
    for o, r in zip(out, ref):
        torch.testing.assert_close(o.float(), r, atol=tol * (1 + r.abs().max().item()), rtol=tol)
    torch.testing.assert_close(out[1].sum(1), torch.ones(heads), atol=1e-5, rtol=0)
    for name, a, b in zip(["h", "w_v", "b_v", "w_u", "b_u", "w_w", "b_w"], g, ref_g):
        scale = b.abs().max().item()
        assert (a.float() - b).abs().max().item() <= 2 * tol * (1 + scale), f"gradient of {name}"
        assert a.dtype == dtype, name


def test_triton_adversarial_scores_and_partial_losses():
    """Huge instance features (scores far apart: softmax must not overflow, attention ~ one-hot), a loss on
    the pooled output only (no gradient for attention / scores) and weights that need no gradient."""
    ps = make_params(50, 12, 8, 2, seed=9, scale=40.0)
    ps[0].data[7] *= 3
    ref_ps = [p.detach().clone().requires_grad_() for p in ps]
    ps[5].requires_grad_(False)
    ref_ps[5].requires_grad_(False)
    out = gated_attention_pool_triton(*ps, block_n=16, block_h=16, block_d=16, backward_chunk=20)
    ref = gated_attention_pool_reference(*ref_ps)
    assert all(torch.isfinite(o).all() for o in out)
    torch.testing.assert_close(out[1], ref[1], atol=1e-5, rtol=1e-4)
    out[0].pow(2).sum().backward()
    ref[0].pow(2).sum().backward()
    assert ps[5].grad is None
    for p, r in zip(ps, ref_ps):
        if r.grad is not None:
            torch.testing.assert_close(p.grad, r.grad, atol=1e-3 * (1 + r.grad.abs().max().item()), rtol=1e-4)


def test_triton_without_biases():
    ps = [p.detach() for p in make_params(20, 8, 6, 1, seed=4)]
    out = gated_attention_pool_triton(ps[0], ps[1], None, ps[3], None, ps[5], None, block_n=16, block_h=16, block_d=16)
    ref = gated_attention_pool_reference(ps[0], ps[1], None, ps[3], None, ps[5], None)
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, atol=1e-5, rtol=1e-5)


def test_module_through_the_dispatcher(monkeypatch):
    """`GatedAttentionPool` takes the Triton path when the dispatcher allows it (CUDA in real use; forced
    here, running in the interpreter) and gives the reference's outputs and parameter gradients."""
    torch.manual_seed(0)
    module = GatedAttentionPool(in_dim=20, hidden_dim=16, n_heads=2)
    h = torch.randn(45, 20)
    ref = module(h)
    loss_of(ref).backward()
    ref_grads = {k: p.grad.clone() for k, p in module.named_parameters()}
    module.zero_grad()
    calls = []
    import vai.core.kernels.mil_pool.triton_impl as impl

    real = impl.gated_attention_pool_triton
    monkeypatch.setattr(impl, "gated_attention_pool_triton", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(mil_mod, "use_triton", lambda *t: True)
    out = module(h)
    loss_of(out).backward()
    assert calls == [1]
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, atol=1e-5, rtol=1e-5)
    for k, p in module.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[k], atol=1e-5, rtol=1e-4)


def test_dispatcher_uses_reference_on_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(mil_mod, "gated_attention_pool_reference",
                        lambda *a: calls.append(1) or gated_attention_pool_reference(*a))
    gated_attention_pool(*[p.detach() for p in make_params(5, 4, 3, 1)])
    assert calls == [1]


# ---------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n,d,hidden,heads", [(1, 64, 32, 1), (1_000, 1024, 256, 1), (20_011, 384, 128, 3)])
def test_cuda_kernel_matches_reference(n, d, hidden, heads, dtype):
    ps = make_params(n, d, hidden, heads, seed=0, dtype=dtype, device="cuda")
    ref_ps = [p.detach().float().requires_grad_() for p in ps]
    out, g = grads(ps, gated_attention_pool)
    ref, ref_g = grads(ref_ps, gated_attention_pool_reference)
    tol = {torch.float32: 1e-4, torch.float16: 4e-3, torch.bfloat16: 3e-2}[dtype]
    for o, r in zip(out, ref):
        torch.testing.assert_close(o.float(), r, atol=tol * (1 + r.abs().max().item()), rtol=tol)
    for a, b in zip(g, ref_g):
        assert (a.float() - b).abs().max().item() <= 2 * tol * (1 + b.abs().max().item())


def test_triton_under_autocast_uses_the_autocast_dtype():
    """Under autocast (fp16 here: the interpreter cannot do bf16) fp32 weights and features are computed in
    the autocast dtype, like the reference's autocast linears; softmax and gradients stay fp32."""
    ps = make_params(90, 24, 20, 2, seed=6)
    ref_ps = [p.detach().clone().requires_grad_() for p in ps]
    with torch.autocast("cpu", dtype=torch.float16):
        out = gated_attention_pool_triton(*ps, block_n=32, block_h=16, block_d=16)
        loss = loss_of(out)
    loss.backward()
    ref = gated_attention_pool_reference(*ref_ps)
    loss_of(ref).backward()
    assert out[0].dtype == torch.float16 and out[1].dtype == torch.float32 and out[2].dtype == torch.float16
    for o, r in zip(out, ref):
        torch.testing.assert_close(o.float(), r, atol=4e-3 * (1 + r.abs().max().item()), rtol=4e-3)
    for p, r in zip(ps, ref_ps):
        assert p.grad.dtype == torch.float32
        assert (p.grad - r.grad).abs().max().item() <= 8e-3 * (1 + r.grad.abs().max().item())
