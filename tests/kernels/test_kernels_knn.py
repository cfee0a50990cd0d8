"""Nearest-neighbour search: the reference against brute force, the Triton kernel (interpreter on CPU, real on
CUDA) against the reference, and the dispatcher's choice."""
from types import SimpleNamespace

import pytest
import torch

from vai.core.kernels import _dispatch
from vai.core.kernels import knn as knn_mod
from vai.core.kernels.knn import min_distance_bf16, nearest, nearest_reference, prepare_bf16_scan
from vai.core.kernels.knn.triton_impl import MAX_K, nearest_triton

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def brute_force(q, b, k):
    d = torch.cdist(q.double(), b.double())
    dist, idx = torch.topk(d, k, dim=1, largest=False)
    return dist.float(), idx


def assert_same_neighbours(d, i, q, b, k, atol):
    """Distances match brute force; indices may differ only between rows at (numerically) equal distance,
    so the distance of every returned index must equal the returned distance."""
    ref_d, _ = brute_force(q.float(), b.float(), k)
    assert d.shape == (q.shape[0], k) and i.shape == (q.shape[0], k)
    assert d.dtype == torch.float32 and i.dtype == torch.int64
    assert torch.isfinite(d).all()
    torch.testing.assert_close(d, ref_d, atol=atol, rtol=1e-4)
    assert ((i >= 0) & (i < b.shape[0])).all()
    recomputed = torch.linalg.vector_norm(q.double()[:, None, :] - b.double()[i], dim=2).float()
    torch.testing.assert_close(recomputed, d, atol=atol, rtol=1e-4)
    assert (d[:, 1:] >= d[:, :-1]).all(), "distances must be ascending"
    for row in i:  # no bank row twice for one query
        assert len(set(row.tolist())) == k


# ---------------------------------------------------------------- reference vs brute force
@pytest.mark.parametrize("n,m,d,k", [(17, 50, 8, 1), (9, 33, 5, 4), (1, 1, 3, 1), (6, 6, 4, 6)])
def test_reference_matches_brute_force(n, m, d, k):
    g = torch.Generator().manual_seed(n * m + k)
    q, b = torch.randn(n, d, generator=g), torch.randn(m, d, generator=g)
    dist, idx = nearest_reference(q, b, k)
    ref_d, ref_i = brute_force(q, b, k)
    torch.testing.assert_close(dist, ref_d, atol=1e-4, rtol=1e-4)
    assert torch.equal(idx, ref_i)


@pytest.mark.parametrize("k", [1, 5])  # k=1 takes the running-min path, k>1 the top-k merge
def test_reference_tiles_give_the_same_answer(k):
    """Bank and query chunks smaller than the inputs (the running merge across chunks) change nothing."""
    g = torch.Generator().manual_seed(1)
    q, b = torch.randn(23, 7, generator=g), torch.randn(101, 7, generator=g)
    whole = nearest_reference(q, b, k)
    assert torch.equal(whole[1], brute_force(q, b, k)[1])
    tiled = nearest_reference(q, b, k, query_chunk=4, bank_chunk=3)
    torch.testing.assert_close(tiled[0], whole[0])
    assert torch.equal(tiled[1], whole[1])


def test_reference_exact_match_is_zero_distance():
    b = torch.randn(40, 6)
    d, i = nearest_reference(b[[3, 17]], b, 1)
    assert torch.equal(i[:, 0], torch.tensor([3, 17]))
    # |q|^2 - 2 q.b + |b|^2 cancels: the fp32 error of d^2 is ~eps * |q|^2, so d itself ~ sqrt(eps) * |q|
    bound = 4 * torch.finfo(torch.float32).eps ** 0.5 * b[[3, 17]].norm(dim=1)
    assert (d[:, 0] <= bound).all()


def test_bf16_scan_is_close_to_the_exact_search_and_shortlists_the_maximum():
    """Non-negative features with a large common mean (like CNN activations): the bf16 scan's distances stay
    within a few per cent, tiling changes nothing, and each group's 16 highest approximate distances contain
    the exact maximum (what the vision detector relies on)."""
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 64, generator=g) * 3
    bank = (base + torch.rand(700, 64, generator=g)).relu()
    q = (base + 1.2 * torch.rand(32 * 64, 64, generator=g)).relu()
    exact = nearest_reference(q, bank, 1)[0][:, 0]
    scan = prepare_bf16_scan(bank)
    approx = min_distance_bf16(q, scan)
    rel = (approx - exact).abs() / exact
    assert rel.median() < 0.01 and rel.max() < 0.1
    torch.testing.assert_close(min_distance_bf16(q, scan, query_chunk=100, bank_chunk=64), approx)
    top = approx.reshape(32, 64).topk(16, dim=1).indices
    assert (top == exact.reshape(32, 64).argmax(1, keepdim=True)).any(1).all()
    with pytest.raises(ValueError, match="feature sizes differ"):
        min_distance_bf16(q[:, :10], scan)


@pytest.mark.parametrize("fn", [nearest_reference, nearest_triton], ids=["reference", "triton"])
def test_bad_inputs_raise_clear_errors(fn):
    with pytest.raises(ValueError, match="memory bank is empty"):
        fn(torch.randn(3, 4), torch.empty(0, 4), 1)
    with pytest.raises(ValueError, match="feature sizes differ"):
        fn(torch.randn(3, 4), torch.randn(5, 3), 1)
    with pytest.raises(ValueError, match="k=6"):
        fn(torch.randn(3, 4), torch.randn(5, 4), 6)
    with pytest.raises(ValueError, match="2-D"):
        fn(torch.randn(4), torch.randn(5, 4), 1)


# ---------------------------------------------------------------- Triton (interpreter on CPU) vs reference
SHAPES = [
    # n, m, d, k, blocks (block_q, block_m, block_d), splits
    (37, 301, 45, 5, (16, 32, 16), None),   # nothing a multiple of a block, several d-chunks
    (1, 1, 3, 1, (16, 16, 16), None),       # one query, one bank row
    (5, 200, 64, 16, (16, 16, 32), 4),      # largest k, several bank splits merged
    (20, 19, 7, 19 if 19 <= MAX_K else 16, (16, 16, 16), 2),  # k close to the bank size
    (64, 130, 16, 3, (64, 64, 16), None),   # default-size blocks
    (33, 70, 20, 2, (16, 16, 16), 5),       # more splits than needed: empty splits must not leak
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("n,m,d,k,blocks,splits", SHAPES)
def test_triton_matches_reference(n, m, d, k, blocks, splits, dtype):
    g = torch.Generator().manual_seed(n + 7 * m + d)
    q = torch.randn(n, d, generator=g).to(dtype)
    b = torch.randn(m, d, generator=g).to(dtype)
    bq, bm, bd = blocks
    dist, idx = nearest_triton(q, b, k, block_q=bq, block_m=bm, block_d=bd, splits=splits)
    ref_d, ref_i = nearest_reference(q, b, k)
    # both compute in fp32 from the same (rounded) inputs: only summation order differs
    torch.testing.assert_close(dist, ref_d, atol=2e-4, rtol=2e-4)
    assert (idx == ref_i).float().mean() > 0.99
    assert_same_neighbours(dist, idx, q.float(), b.float(), k, atol=2e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_triton_adversarial_values(dtype):
    """Duplicate bank rows (ties), a bank of identical rows, queries equal to bank rows (0 distance, where
    |q|^2 - 2 q.b + |b|^2 cancels), large magnitudes and a non-contiguous bank view."""
    g = torch.Generator().manual_seed(5)
    base = torch.randn(12, 9, generator=g)
    bank = torch.cat([base, base[:4], base[:4]]).to(dtype)          # rows 0-3 present three times
    q = torch.cat([base[:6], 30 * torch.randn(5, 9, generator=g)]).to(dtype)
    d, i = nearest_triton(q, bank, 3, block_q=16, block_m=16, block_d=16)
    assert_same_neighbours(d, i, q.float(), bank.float(), 3, atol=5e-2)
    assert (d[:4, :3] < 0.05).all(), "rows 0-3 have three exact copies"
    same = torch.ones(7, 5, dtype=dtype)
    d, i = nearest_triton(torch.zeros(3, 5, dtype=dtype), same, 4, block_q=16, block_m=16, block_d=16)
    torch.testing.assert_close(d, torch.full((3, 4), 5 ** 0.5))
    assert all(len(set(r.tolist())) == 4 for r in i)
    wide = torch.randn(30, 40, generator=g).to(dtype)
    view = wide[:, ::2]  # strides (40, 2)
    d, i = nearest_triton(q[:, :9].repeat(1, 3)[:, :20], view, 2, block_q=16, block_m=16, block_d=16)
    rd, ri = nearest_reference(q[:, :9].repeat(1, 3)[:, :20], view, 2)
    torch.testing.assert_close(d, rd, atol=1e-3, rtol=1e-4)


def test_triton_no_queries_and_large_k_fallback():
    d, i = nearest_triton(torch.empty(0, 4), torch.randn(5, 4), 2)
    assert d.shape == (0, 2) and i.shape == (0, 2) and i.dtype == torch.int64
    q, b = torch.randn(3, 4), torch.randn(40, 4)
    d, i = nearest_triton(q, b, MAX_K + 4)  # the reference answers
    ref = nearest_reference(q, b, MAX_K + 4)
    torch.testing.assert_close(d, ref[0])


def test_triton_mixed_input_dtypes_promote():
    q = torch.randn(5, 8, dtype=torch.float16)
    b = torch.randn(20, 8, dtype=torch.float32)
    d, i = nearest_triton(q, b, 2, block_q=16, block_m=16, block_d=16)
    rd, ri = nearest_reference(q.float(), b, 2)
    torch.testing.assert_close(d, rd, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- dispatcher
def test_dispatcher_uses_reference_for_cpu_and_honours_switch(monkeypatch):
    calls = []
    monkeypatch.setattr(knn_mod, "nearest_reference", lambda *a: calls.append("ref") or nearest_reference(*a))
    nearest(torch.randn(2, 3), torch.randn(4, 3), 1)
    assert calls == ["ref"]
    fake_cuda = SimpleNamespace(is_cuda=True)
    monkeypatch.delenv("VAI_DISABLE_TRITON", raising=False)
    assert _dispatch.use_triton(fake_cuda, fake_cuda) is _dispatch.triton_available()
    assert not _dispatch.use_triton(fake_cuda, SimpleNamespace(is_cuda=False))
    monkeypatch.setenv("VAI_DISABLE_TRITON", "1")
    assert not _dispatch.use_triton(fake_cuda, fake_cuda)


def test_dispatcher_routes_to_triton_when_allowed(monkeypatch):
    """With the dispatcher's condition true, `nearest` runs the Triton kernel (here in the interpreter)."""
    import vai.core.kernels.knn.triton_impl as impl

    calls = []
    real = impl.nearest_triton
    monkeypatch.setattr(impl, "nearest_triton", lambda *a: calls.append("triton") or real(*a))
    monkeypatch.setattr(knn_mod, "use_triton", lambda *t: True)
    q, b = torch.randn(3, 5), torch.randn(9, 5)
    d, i = nearest(q, b, 2)
    assert calls == ["triton"]
    torch.testing.assert_close(d, nearest_reference(q, b, 2)[0], atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n,m,d,k", [(1, 1, 3, 1), (100, 10_007, 97, 1), (513, 4_099, 256, 9), (7, 70_001, 64, 16)])
def test_cuda_kernel_matches_reference(n, m, d, k, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(n, d, device="cuda", generator=g).to(dtype)
    b = torch.randn(m, d, device="cuda", generator=g).to(dtype)
    dist, idx = nearest(q, b, k)
    ref_d, ref_i = nearest_reference(q, b, k)
    torch.testing.assert_close(dist, ref_d, atol=1e-3, rtol=1e-3)
    assert (idx == ref_i).float().mean() > 0.99


def test_dispatcher_falls_back_when_the_gpu_lacks_resources(monkeypatch):
    """A kernel configuration too big for a small GPU (shared memory) degrades to the reference with a
    warning; other errors are not swallowed."""
    import vai.core.kernels.knn.triton_impl as impl
    from triton.runtime.errors import OutOfResources

    def too_big(*a):
        raise OutOfResources(147456, 101376, "shared memory")

    monkeypatch.setattr(impl, "nearest_triton", too_big)
    monkeypatch.setattr(knn_mod, "use_triton", lambda *t: True)
    q, b = torch.randn(3, 5), torch.randn(9, 5)
    with pytest.warns(RuntimeWarning, match="PyTorch reference"):
        d, i = nearest(q, b, 2)
    torch.testing.assert_close(d, nearest_reference(q, b, 2)[0])

    def broken(*a):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(impl, "nearest_triton", broken)
    with pytest.raises(RuntimeError, match="a real bug"):
        nearest(q, b, 2)


def test_fp32_follows_torch_matmul_precision_setting():
    """With `torch.set_float32_matmul_precision("high")` the fp32 kernels take the TF32 branch (on a GPU;
    the interpreter computes it in fp32), the same trade torch's own matmuls then make."""
    from vai.core.kernels.mil_pool import gated_attention_pool_reference
    from vai.core.kernels.mil_pool.triton_impl import gated_attention_pool_triton

    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        q, b = torch.randn(9, 20), torch.randn(50, 20)
        d, _ = nearest_triton(q, b, 3, block_q=16, block_m=16, block_d=16)
        torch.testing.assert_close(d, nearest_reference(q, b, 3)[0], atol=1e-3, rtol=1e-3)
        ps = [torch.randn(30, 16), torch.randn(8, 16), torch.randn(8), torch.randn(8, 16), torch.randn(8),
              torch.randn(1, 8), torch.randn(1)]
        out = gated_attention_pool_triton(*ps, block_n=16, block_h=16, block_d=16)
        torch.testing.assert_close(out[0], gated_attention_pool_reference(*ps)[0], atol=1e-3, rtol=1e-3)
    finally:
        torch.set_float32_matmul_precision(before)
