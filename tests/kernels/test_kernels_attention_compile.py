"""SDPA attention (default kernels vs the math reference), the torch.compile switch, and an ahead-of-time
compile of every Triton kernel for sm_90 with Triton's real compiler (no GPU needed)."""
import os
import subprocess
import sys

import pytest
import torch

import vai.core.kernels.attention as attention_mod
from vai.core.compile import compile_wanted, maybe_compile
from vai.core.kernels.attention import attention

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def naive_attention(q, k, v, mask=None):
    scores = (q.double() @ k.double().transpose(-1, -2)) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.double()
    return torch.softmax(scores, -1) @ v.double()


@pytest.mark.parametrize("seq,head_dim", [(1, 8), (37, 16), (130, 64)])
def test_default_and_math_paths_match_naive(seq, head_dim):
    g = torch.Generator().manual_seed(seq)
    q, k, v = (torch.randn(2, 3, seq, head_dim, generator=g, requires_grad=True) for _ in range(3))
    fast = attention(q, k, v)
    math_ = attention(q, k, v, math=True)
    ref = naive_attention(q, k, v).float()
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(math_, ref, atol=1e-5, rtol=1e-4)
    gf = torch.autograd.grad(fast.sum(), (q, k, v))
    gm = torch.autograd.grad(math_.sum(), (q, k, v))
    for a, b in zip(gf, gm):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_masks_match_naive():
    """A padding mask (bags padded to one length) as bool, and an additive float mask."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 20, 8, generator=g) for _ in range(3))
    keep = torch.ones(2, 1, 1, 20, dtype=torch.bool)
    keep[1, ..., 13:] = False  # second bag has 13 real instances
    for math_ in (False, True):
        torch.testing.assert_close(attention(q, k, v, attn_mask=keep, math=math_),
                                   naive_attention(q, k, v, keep).float(), atol=1e-5, rtol=1e-4)
    additive = torch.randn(20, 20, generator=g)
    torch.testing.assert_close(attention(q, k, v, attn_mask=additive),
                               naive_attention(q, k, v, additive).float(), atol=1e-5, rtol=1e-4)


def test_math_switch_from_environment(monkeypatch):
    chosen = []
    real = attention_mod.sdpa_kernel
    monkeypatch.setattr(attention_mod, "sdpa_kernel", lambda b: chosen.append(b) or real(b))
    q = torch.randn(1, 1, 4, 8)
    monkeypatch.setenv("VAI_SDPA_MATH", "1")
    attention(q, q, q)
    monkeypatch.setenv("VAI_SDPA_MATH", "0")
    attention(q, q, q)
    attention(q, q, q, math=True)
    from torch.nn.attention import SDPBackend

    assert chosen == [SDPBackend.MATH, SDPBackend.MATH]


def test_bf16_autocast_attention_close_to_fp32():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 64, 32, generator=g) for _ in range(3))
    ref = attention(q, k, v, math=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q, k, v)
    # inputs rounded to bf16 (2^-9 relative) feed two matmuls and a softmax: ~1% norm-wise, allow 3%
    assert ((out.float() - ref).norm() / ref.norm()).item() < 0.03


@cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_flash_matches_math(dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 4, 4099, 64, device="cuda", generator=g, dtype=dtype) for _ in range(3))
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        fast = attention(q, k, v)
    ref = attention(q.float(), k.float(), v.float(), math=True)
    assert ((fast.float() - ref).norm() / ref.norm()).item() < 0.02


# ---------------------------------------------------------------- torch.compile switch
def test_compile_off_on_cpu_by_default_and_switchable(monkeypatch):
    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)

    def f(x):
        return x * 2 + 1

    if not torch.cuda.is_available():
        assert not compile_wanted()
        assert maybe_compile(f) is f
    compiled = maybe_compile(f, enabled=True, backend="eager")
    assert compiled is not f and compiled.compiled
    torch.testing.assert_close(compiled(torch.ones(3)), torch.full((3,), 3.0))
    monkeypatch.setenv("VAI_DISABLE_COMPILE", "1")
    assert maybe_compile(f, enabled=True, backend="eager") is f
    assert not compile_wanted(True)


def test_compile_module_in_place_keeps_state_dict_keys(monkeypatch):
    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    x = torch.randn(2, 4)
    eager = module(x)
    out = maybe_compile(module, enabled=True, backend="eager")
    assert out is module
    assert list(module.state_dict()) == ["0.weight", "0.bias"]  # no "_orig_mod." prefix: saved models load
    torch.testing.assert_close(module(x), eager)


def test_compiled_function_falls_back_to_eager_when_the_backend_fails(monkeypatch):
    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)

    def broken_backend(gm, example_inputs):
        raise RuntimeError("compiler exploded")

    def f(x):
        return x.sin() + 1

    compiled = maybe_compile(f, enabled=True, backend=broken_backend)
    with pytest.warns(RuntimeWarning, match="running eagerly"):
        y = compiled(torch.zeros(3))
    torch.testing.assert_close(y, torch.ones(3))
    torch.testing.assert_close(compiled(torch.zeros(2)), torch.ones(2))


def test_cpu_compiles_only_long_jobs(monkeypatch):
    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("VAI_COMPILE_CPU_MIN_ITEMS", "1000")
    assert not compile_wanted(None)                 # a job of unknown length stays eager
    assert not compile_wanted(None, n_items=999)    # too short to win back the C++ build
    import shutil
    assert compile_wanted(None, n_items=1000) == bool(shutil.which("g++") or shutil.which("c++") or shutil.which("clang++"))
    monkeypatch.setenv("VAI_DISABLE_COMPILE", "1")
    assert not compile_wanted(None, n_items=10**6)


def test_batch_forward_pads_short_batches_to_one_compiled_shape(monkeypatch):
    from vai.core.compile import BatchForward

    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)
    seen = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x):
            seen.append(x.shape[0])
            return [self.lin(x), self.lin(x) * 2]  # a list of outputs, like timm's features_only

    net = Net()
    x = torch.randn(3, 4)
    eager = BatchForward(net, 8, enabled=False)
    assert not eager.compiled and eager(x)[0].shape == (3, 3) and seen == [3]
    fwd = BatchForward(net, 8, enabled=True, backend="eager")
    out = fwd(x)
    assert fwd.compiled and seen[-1] == 8               # the model saw a full batch
    assert out[0].shape == (3, 3) and out[1].shape == (3, 3)
    torch.testing.assert_close(out[0], net.lin(x))
    torch.testing.assert_close(out[1], net.lin(x) * 2)


def test_batch_forward_builds_one_graph_for_batches_made_in_and_out_of_inference_mode(monkeypatch):
    """A DataLoader's batches and a warm-up tensor made under inference mode carry different dispatch keys; the
    graph guards on them, and the second kind used to trigger a full recompile (~15 s on 2 cores)."""
    from vai.core.compile import BatchForward

    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)
    torch._dynamo.reset()
    builds = []

    def counting_backend(gm, example_inputs):
        builds.append(len(example_inputs))
        return gm.forward

    net = torch.nn.Linear(4, 3)
    fwd = BatchForward(net, 8, enabled=True, backend=counting_backend)
    normal = torch.randn(8, 4)
    with torch.inference_mode():
        made_inside = torch.randn(8, 4)
        out1 = fwd(normal)
        out2 = fwd(made_inside)
        fwd(torch.randn(5, 4))  # a short last batch: padded, same graph
        fwd(torch.randn(4, 8).T)  # a transposed (non-contiguous) batch, like a permuted NHWC image batch
        ref1, ref2 = net(normal), net(made_inside)
    assert len(builds) == 1
    torch.testing.assert_close(out1, ref1)
    torch.testing.assert_close(out2, ref2)


def test_batch_forward_runs_cpu_conv_nets_channels_last(monkeypatch):
    """Conv nets on CPU run NHWC (same values); other models, and VAI_CHANNELS_LAST=0, keep NCHW."""
    from vai.core.compile import BatchForward, channels_last_wanted

    torch.manual_seed(0)

    def conv_net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)).eval()

    x = torch.randn(5, 3, 12, 12)
    with torch.inference_mode():
        ref = conv_net()(x)
        net = conv_net()
        fwd = BatchForward(net, 8, enabled=False)
        assert fwd.channels_last and net[0].weight.is_contiguous(memory_format=torch.channels_last)
        out = fwd(x)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        padded = BatchForward(conv_net(), 8, enabled=True, backend="eager")  # the compiled path's padding too
        torch.testing.assert_close(padded(x), ref, atol=1e-5, rtol=1e-5)
    assert not channels_last_wanted(torch.nn.Linear(4, 3))
    assert not BatchForward(conv_net(), 8, enabled=False, channels_last=False).channels_last
    monkeypatch.setenv("VAI_CHANNELS_LAST", "0")
    assert not channels_last_wanted(conv_net())


@pytest.mark.slow
def test_inductor_cpu_compile_matches_eager(monkeypatch):
    """The real C++ code generator on this CPU (what `--compile on` uses), on a tiny conv net."""
    import shutil

    from vai.core.compile import BatchForward

    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("no C++ compiler")
    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    x = torch.randn(5, 3, 16, 16)
    fwd = BatchForward(net, 8, enabled=True)
    with torch.inference_mode():
        torch.testing.assert_close(fwd(x), net(x), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- real Triton compiler, no GPU
def test_triton_kernels_compile_for_sm90():
    """bf16 is what GPUs run and what the interpreter cannot check: build those kernels to cubin."""
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="0")
    proc = subprocess.run([sys.executable, "-m", "vai.core.kernels._compile_check", "--arch", "90", "--dtype", "bf16"],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0 and "ptxas" in proc.stderr and "not found" in proc.stderr.lower():
        pytest.skip("Triton's bundled ptxas is missing")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(": ok") == 4, proc.stdout
