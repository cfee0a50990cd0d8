"""GPU kernels: correctness against the references on the device, then throughput and peak memory.

    python -m benchmarks.kernels_gpu                 # full run on a CUDA GPU; a small reference-only run on CPU
    python -m benchmarks.kernels_gpu --out FILE.md   # also write the markdown report
    python -m benchmarks.kernels_gpu --smoke         # tiny sizes through the GPU code path (on CPU: Triton's
                                                     # interpreter), to check this script itself

On CUDA it measures:
- memory-bank search (`nearest`, k=1): the fused Triton kernel (fp32 / fp16 / bf16) vs `torch.cdist` + `min`
  and vs the tiled PyTorch reference, at bank sizes 10^4, 10^5, 10^6: time, queries/s, distance
  evaluations/s and peak extra memory (cdist materialises N x M; the fused kernel does not);
- gated-attention MIL pooling forward + backward per bag: Triton vs the reference, fp32 and bf16 autocast;
- tile embedding (tf_efficientnet_lite0 at 224 px, the pathology default) in fp32 vs bf16 autocast, tiles/s
  of the model alone (decoding excluded).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time

FAILURES: list[str] = []
TIMING = {"reps": 5, "min_time_s": 0.5}  # main() shortens this for CPU and --smoke runs


# ---------------------------------------------------------------- helpers
def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, warmup=1, reps=3, min_time_s=0.0):
    """Mean seconds per call after warm-up (the first call compiles/autotunes)."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    n = 0
    while n < reps or time.perf_counter() - t0 < min_time_s:
        fn()
        n += 1
        if n >= 50:
            break
    sync(device)
    return (time.perf_counter() - t0) / n


def peak_extra_bytes(fn, device):
    """Peak memory a call allocates beyond what is already held (CUDA only)."""
    import torch

    if device.type != "cuda":
        return None
    sync(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device) - base


def fmt_bytes(b):
    if b is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def is_oom(exc):
    return "out of memory" in str(exc).lower()


def check(name, ok, detail):
    if not ok:
        FAILURES.append(name)
    return [name, detail, "ok" if ok else "FAIL"]


# ---------------------------------------------------------------- correctness on the device
def correctness_rows(device, smoke):
    import torch

    from vai.core.kernels.knn import nearest_reference
    from vai.core.kernels.knn.triton_impl import nearest_triton
    from vai.core.kernels.mil_pool import gated_attention_pool_reference
    from vai.core.kernels.mil_pool.triton_impl import gated_attention_pool_triton

    dtypes = [torch.float32, torch.float16] + ([torch.bfloat16] if device.type == "cuda" else [])
    g = torch.Generator(device=device).manual_seed(0)
    rows = []
    knn_shapes = [(1, 1, 3, 1), (37, 301, 45, 5), (5, 200, 64, 16)]
    if not smoke:
        knn_shapes += [(100, 10_007, 97, 1), (513, 40_099, 256, 9), (7, 200_001, 64, 16)]
    for dtype in dtypes:
        for n, m, d, k in knn_shapes:
            q = torch.randn(n, d, device=device, generator=g).to(dtype)
            b = torch.randn(m, d, device=device, generator=g).to(dtype)
            dist, idx = nearest_triton(q, b, k)
            rd, ri = nearest_reference(q, b, k)
            err = (dist - rd).abs().max().item()
            agree = (idx == ri).float().mean().item()
            ok = bool(torch.isfinite(dist).all()) and err <= 1e-3 * (1 + rd.abs().max().item()) and agree > 0.99
            rows.append(check(f"knn {str(dtype)[6:]} N={n} M={m} D={d} k={k}", ok,
                              f"max abs dist err {err:.2e}, same index {agree:.1%}"))
        # adversarial: duplicated rows (ties), identical bank, queries equal to bank rows
        base = torch.randn(50, 33, device=device, generator=g)
        bank = torch.cat([base, base[:10], base[:10]]).to(dtype)
        dist, idx = nearest_triton(base[:20].to(dtype), bank, 3)
        back = torch.linalg.vector_norm(base[:20, None, :].double() - bank.double()[idx], dim=2)
        ok = bool((dist[:10] < 0.1).all()) and torch.allclose(back.float(), dist, atol=5e-2)
        rows.append(check(f"knn {str(dtype)[6:]} duplicates / exact matches", ok,
                          f"max self-distance {dist[:10].max().item():.2e}"))
        try:
            nearest_triton(base[:2].to(dtype), bank[:0], 1)
            rows.append(check(f"knn {str(dtype)[6:]} empty bank", False, "no error raised"))
        except ValueError:
            rows.append(check(f"knn {str(dtype)[6:]} empty bank", True, "ValueError as the reference"))

    mil_shapes = [(1, 64, 32, 1), (257, 70, 50, 2)]
    if not smoke:
        mil_shapes += [(10_007, 1024, 256, 1), (20_011, 384, 128, 3)]
    for dtype in dtypes:
        tol = {torch.float32: 1e-4, torch.float16: 4e-3, torch.bfloat16: 3e-2}[dtype]
        for n, d, hidden, heads in mil_shapes:
            ps = [torch.randn(n, d, device=device, generator=g), torch.randn(hidden, d, device=device, generator=g) / d ** 0.5,
                  0.1 * torch.randn(hidden, device=device, generator=g),
                  torch.randn(hidden, d, device=device, generator=g) / d ** 0.5,
                  0.1 * torch.randn(hidden, device=device, generator=g),
                  torch.randn(heads, hidden, device=device, generator=g) / hidden ** 0.5,
                  0.1 * torch.randn(heads, device=device, generator=g)]
            ps = [p.to(dtype).requires_grad_() for p in ps]
            ref_ps = [p.detach().float().requires_grad_() for p in ps]
            weights = None
            worst = 0.0
            outs = []
            for params, fn in ((ps, gated_attention_pool_triton), (ref_ps, gated_attention_pool_reference)):
                out = fn(*params)
                if weights is None:
                    weights = [torch.randn(o.shape, device=device, generator=g) for o in out]
                sum((o.float() * w).sum() for o, w in zip(out, weights)).backward()
                outs.append(out)
            for o, r in zip(*outs):
                worst = max(worst, (o.float() - r).abs().max().item() / (1 + r.abs().max().item()))
            for p, r in zip(ps, ref_ps):
                worst = max(worst, (p.grad.float() - r.grad).abs().max().item() / (1 + r.grad.abs().max().item()) / 2)
            rows.append(check(f"MIL pool fwd+bwd {str(dtype)[6:]} N={n} D={d} H={hidden} heads={heads}",
                              worst <= tol, f"max scaled err {worst:.2e} (tol {tol:.0e})"))
    return rows


# ---------------------------------------------------------------- throughput
def knn_rows(device, smoke, banks, n_queries, dim):
    import torch

    from vai.core.kernels.knn import nearest_reference
    from vai.core.kernels.knn.triton_impl import nearest_triton

    rows = []
    g = torch.Generator(device=device).manual_seed(1)
    q32 = torch.randn(n_queries, dim, device=device, generator=g)
    for m in banks:
        b32 = torch.randn(m, dim, device=device, generator=g)
        methods = [("cdist+min fp32", lambda q=q32, b=b32: torch.cdist(q, b).min(1))]
        if device.type == "cuda":
            q16, b16 = q32.half(), b32.half()
            methods.append(("cdist+min fp16", lambda q=q16, b=b16: torch.cdist(q, b).min(1)))
        methods.append(("tiled reference fp32", lambda q=q32, b=b32: nearest_reference(q, b, 1)))
        if device.type == "cuda" or smoke:
            for dtype in ([torch.float32, torch.float16, torch.bfloat16] if device.type == "cuda" else [torch.float32]):
                q, b = q32.to(dtype), b32.to(dtype)
                methods.append((f"fused Triton {str(dtype)[6:]}", lambda q=q, b=b: nearest_triton(q, b, 1)))
        base_s = None
        for name, fn in methods:
            try:
                sec = timed(fn, device, **TIMING)
                mem = peak_extra_bytes(fn, device)
            except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError
                if not is_oom(exc):
                    raise
                torch.cuda.empty_cache()
                rows.append([f"{m:,}", name, "OOM", "", "", "", ""])
                continue
            if base_s is None:
                base_s = sec
            rows.append([f"{m:,}", name, f"{sec * 1e3:.2f}", f"{n_queries / sec:,.0f}",
                         f"{n_queries * m / sec / 1e9:.3g}", fmt_bytes(mem), f"{base_s / sec:.2f}x"])
        del b32
    return rows


def mil_rows(device, smoke, sizes, dim, hidden):
    import contextlib

    import torch

    from vai.core.kernels.mil_pool import gated_attention_pool_reference
    from vai.core.kernels.mil_pool.triton_impl import gated_attention_pool_triton

    rows = []
    g = torch.Generator(device=device).manual_seed(2)
    for n in sizes:
        h32 = torch.randn(n, dim, device=device, generator=g)
        weights = [torch.randn(hidden, dim, device=device, generator=g) / dim ** 0.5,
                   torch.zeros(hidden, device=device), torch.randn(hidden, dim, device=device, generator=g) / dim ** 0.5,
                   torch.zeros(hidden, device=device), torch.randn(1, hidden, device=device, generator=g) / hidden ** 0.5,
                   torch.zeros(1, device=device)]
        weights = [w.requires_grad_() for w in weights]
        variants = [("reference", gated_attention_pool_reference, torch.float32)]
        if device.type == "cuda":
            variants.append(("reference", gated_attention_pool_reference, torch.bfloat16))
        if device.type == "cuda" or smoke:
            variants.append(("fused Triton", gated_attention_pool_triton, torch.float32))
            if device.type == "cuda":
                variants.append(("fused Triton", gated_attention_pool_triton, torch.bfloat16))
        base_s = None
        for name, fn, dtype in variants:
            h = h32.to(dtype).requires_grad_()
            amp = (torch.autocast(device.type, dtype=torch.bfloat16) if dtype == torch.bfloat16
                   else contextlib.nullcontext())

            def step(fn=fn, h=h, amp=amp):
                with amp:
                    pooled, attention, _ = fn(h, *weights)
                    loss = pooled.float().square().sum() + attention.max()
                loss.backward()
                h.grad = None
                for w in weights:
                    w.grad = None

            sec = timed(step, device, **TIMING)
            mem = peak_extra_bytes(step, device)
            if base_s is None:
                base_s = sec
            label = "fp32" if dtype == torch.float32 else "bf16 autocast"
            rows.append([f"{n:,}", f"{name} {label}", f"{sec * 1e3:.2f}", f"{n / sec / 1e6:.3g}", fmt_bytes(mem),
                         f"{base_s / sec:.2f}x"])
    return rows


def embed_rows(device, smoke, batch):
    import contextlib

    import torch

    from vai.core.backbones import create_backbone

    model = create_backbone("tf_efficientnet_lite0", pretrained=False, num_classes=0).to(device).eval()
    model = model.to(memory_format=torch.channels_last)
    size = 64 if smoke else 224
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    rows = []
    for label, amp in (("fp32", contextlib.nullcontext()), ("bf16 autocast", torch.autocast(device.type, dtype=torch.bfloat16))):
        def run(amp=amp):
            with torch.inference_mode(), amp:
                return model(x)

        sec = timed(run, device, **TIMING)
        rows.append([f"{size}x{size}", str(batch), label, f"{batch / sec:,.0f}" if batch / sec >= 100 else f"{batch / sec:.2g}"])
    return rows


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.kernels_gpu", description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the markdown report to this file")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, GPU code path (interpreter on CPU)")
    ap.add_argument("--queries", type=int, default=None, help="queries per memory-bank search (default 4096)")
    ap.add_argument("--dim", type=int, default=None, help="feature size for the memory-bank search (default 256)")
    ap.add_argument("--banks", type=float, nargs="+", default=None, help="bank sizes (default 1e4 1e5 1e6)")
    ap.add_argument("--skip-embed", action="store_true", help="skip the tile-embedding throughput")
    args = ap.parse_args(argv)
    FAILURES.clear()

    if args.smoke:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported; ignored on a real GPU run
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(min(2, torch.get_num_threads()))  # shared CPU boxes: stay polite
    gpu_name = torch.cuda.get_device_name(device) if cuda else None
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"

    out = [
        "## Kernels: memory-bank search, MIL pooling, tile embedding",
        "",
        f"- device: {gpu_name or 'no GPU: ' + (platform.processor() or platform.machine()) + f', {torch.get_num_threads()} torch threads'}",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `python -m benchmarks.kernels_gpu {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"- torch {torch.__version__}, triton {triton_version}, python {platform.python_version()}",
    ]
    if not cuda and not args.smoke:
        out.append("- **no GPU on this machine**: reference (CPU) paths only; the Triton kernels and the GPU "
                   "comparisons need a CUDA device (`--smoke` runs their code path in Triton's interpreter).")
    full_gpu = cuda and not args.smoke
    if not full_gpu:
        TIMING.update(reps=1 if args.smoke else 2, min_time_s=0.0)
    n_queries = args.queries or (4096 if full_gpu else 64 if args.smoke else 256)
    banks = [int(b) for b in args.banks] if args.banks else (
        [10_000, 100_000, 1_000_000] if full_gpu else [300, 1_000] if args.smoke else [10_000, 100_000])
    dim = args.dim or (256 if full_gpu else 32 if args.smoke else 128)
    print("\n".join(out), flush=True)

    sections = []
    if cuda or args.smoke:
        rows = correctness_rows(device, args.smoke)
        sections.append(("Kernels vs references on this device (random and adversarial shapes)",
                         table(["check", "result", "status"], rows)))
        print("\n" + sections[-1][1], flush=True)

    rows = knn_rows(device, args.smoke, banks, n_queries, dim)
    sections.append((f"Memory-bank search, k=1, {n_queries} queries x D={dim} (speed-up vs the first row of each bank)",
                     table(["bank rows", "method", "ms / search", "queries/s", "G distances/s", "peak extra memory",
                            "speed-up"], rows)))
    print("\n" + sections[-1][1], flush=True)

    mil_sizes = [10_000, 50_000] if full_gpu else [200] if args.smoke else [10_000]
    mil_dim, mil_hidden = (1024, 256) if full_gpu else (32, 16) if args.smoke else (256, 64)
    rows = mil_rows(device, args.smoke, mil_sizes, mil_dim, mil_hidden)
    sections.append((f"Gated-attention MIL pooling, forward + backward per bag, D={mil_dim}, hidden={mil_hidden}, 1 head",
                     table(["instances", "method", "ms / bag", "M instances/s", "peak extra memory", "speed-up"], rows)))
    print("\n" + sections[-1][1], flush=True)

    if not args.skip_embed:
        rows = embed_rows(device, args.smoke, 256 if full_gpu else 2)
        sections.append(("Tile embedding, tf_efficientnet_lite0 (random weights: speed only), model alone",
                         table(["tile", "batch", "precision", "tiles/s"], rows)))
        print("\n" + sections[-1][1], flush=True)

    if FAILURES:
        print(f"\nFAILED checks: {', '.join(FAILURES)}", flush=True)
    if args.out:
        from pathlib import Path

        text = "\n".join(out) + "\n" + "".join(f"\n### {title}\n\n{body}\n" for title, body in sections)
        Path(args.out).write_text(text)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
