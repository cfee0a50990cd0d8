"""GPU kernels with a pure-PyTorch reference. One folder per op: `reference.py` (the CPU path and the
ground truth), `triton_impl.py` (optional, CUDA tensors only), and the op's dispatcher in `__init__.py`,
which uses Triton only for CUDA tensors when it is installed and not switched off (`VAI_DISABLE_TRITON=1`),
and falls back to the reference (with a warning) when a GPU lacks the resources for a kernel configuration.

- `knn.nearest`: fused distance + running top-k (k <= 16; larger k uses the reference), fp16/bf16/fp32 inputs.
- `mil_pool.gated_attention_pool` / `GatedAttentionPool`: fused scoring, softmax and weighted sum, with a
  recompute-based backward.
- `attention.attention`: torch SDPA (flash kernels on GPU), `math=True` / `VAI_SDPA_MATH=1` as the reference.
fp32 kernels follow `torch.set_float32_matmul_precision` (IEEE by default, TF32 when allowed). CI checks the
kernels in Triton's interpreter (fp32/fp16) and builds them for sm_90 with the real compiler
(`python -m vai.core.kernels._compile_check`); `python -m benchmarks.kernels_gpu` checks and times them on a GPU."""
