"""GPU kernels with a pure-PyTorch reference. One folder per op: `reference.py` (the CPU path and the
ground truth), `triton_impl.py` (optional, CUDA tensors only), and the op's dispatcher in `__init__.py`,
which uses Triton only for CUDA tensors when it is installed and not switched off (`VAI_DISABLE_TRITON=1`)."""
