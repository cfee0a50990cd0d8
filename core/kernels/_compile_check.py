"""Compile every Triton kernel ahead of time for a CUDA architecture, with no GPU needed.

Triton's interpreter (the CPU test path) runs kernels as NumPy and accepts code the real compiler rejects;
this runs the real pipeline (TTIR -> TTGIR -> LLVM -> PTX -> cubin with the bundled ptxas) so a kernel that
would not build on an A100/H100 fails in CI, not on the first GPU machine. Run it with the interpreter off:

    TRITON_INTERPRET=0 python -m vai.core.kernels._compile_check --arch 90 80
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _specs():
    from .knn.triton_impl import _knn_kernel
    from .mil_pool.triton_impl import _pool_kernel, _scores_kernel, scores_launch_options

    i32 = "i32"
    for dt, ieee in (("fp16", False), ("bf16", False), ("fp32", True), ("fp32-tf32", False)):
        label, dt = dt, dt.split("-")[0]
        knn = {"q_ptr": f"*{dt}", "b_ptr": f"*{dt}", "out_d_ptr": "*fp32", "out_i_ptr": "*i32"}
        knn.update({a: i32 for a in ("N", "M", "D", "tiles_per_split", "stride_qn", "stride_qd",
                                     "stride_bm", "stride_bd", "stride_os", "stride_on")})
        for k, k_pad in ((1, 2), (16, 16)):
            yield (f"knn k={k} {label}", _knn_kernel, knn,
                   dict(K=k, K_PAD=k_pad, BLOCK_Q=64, BLOCK_M=64, BLOCK_D=64, IEEE=ieee), {})
        scores = {"h_ptr": f"*{dt}", "wv_ptr": f"*{dt}", "bv_ptr": "*fp32", "wu_ptr": f"*{dt}", "bu_ptr": "*fp32",
                  "ww_ptr": "*fp32", "bw_ptr": "*fp32", "s_ptr": "*fp32"}
        scores.update({a: i32 for a in ("N", "D", "H", "HEADS", "stride_hn", "stride_hd")})
        yield (f"mil scores {label}", _scores_kernel, scores,
               dict(BLOCK_N=64, BLOCK_H=64, BLOCK_D=64, HEADS_PAD=16, IEEE=ieee),
               scores_launch_options(4 if dt == "fp32" else 2))
        pool = {"h_ptr": f"*{dt}", "s_ptr": "*fp32", "lse_ptr": "*fp32", "att_ptr": "*fp32", "part_ptr": "*fp32"}
        pool.update({a: i32 for a in ("N", "D", "HEADS", "tiles_per_split", "stride_hn", "stride_hd")})
        yield (f"mil pool {label}", _pool_kernel, pool, dict(BLOCK_N=64, BLOCK_D=128, HEADS_PAD=16, IEEE=ieee), {})


def compile_all(archs: list[int], dtypes: tuple[str, ...] = ("fp16", "bf16", "fp32", "fp32-tf32")) -> list[str]:
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("set TRITON_INTERPRET=0: the interpreter replaces the kernels the compiler needs")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    lines = []
    for arch in archs:
        for name, kernel, signature, constexprs, options in _specs():
            if name.split()[-1] not in dtypes:
                continue
            t0 = time.perf_counter()
            sig = dict(signature)
            sig.update({c: "constexpr" for c in constexprs})
            compiled = triton.compile(ASTSource(fn=kernel, signature=sig, constexprs=constexprs),
                                      target=GPUTarget("cuda", arch, 32), options=options)
            assert compiled.asm.get("cubin"), f"{name}: no cubin"
            lines.append(f"sm_{arch} {name}: ok, {compiled.metadata.shared} B shared, "
                         f"{time.perf_counter() - t0:.1f} s")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", type=int, nargs="+", default=[90], help="compute capabilities, e.g. 80 90")
    ap.add_argument("--dtype", nargs="+", default=["fp16", "bf16", "fp32", "fp32-tf32"])
    args = ap.parse_args(argv)
    for line in compile_all(args.arch, tuple(args.dtype)):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
