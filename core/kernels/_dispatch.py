"""When a kernel may use Triton: CUDA tensors, Triton importable, not switched off."""
from __future__ import annotations

import functools
import os

import torch


def triton_disabled() -> bool:
    return os.environ.get("VAI_DISABLE_TRITON", "").strip().lower() in {"1", "true", "yes"}


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # ImportError, or a broken install: fall back to the reference
        return False
    return True


def use_triton(*tensors: torch.Tensor) -> bool:
    return (
        not triton_disabled()
        and all(t.is_cuda for t in tensors)
        and triton_available()
    )


def resource_errors() -> tuple[type[BaseException], ...]:
    """Launch failures that mean "this GPU cannot run this kernel configuration" (e.g. too little shared
    memory on a small GPU): the dispatchers fall back to the reference on these, with a warning, and let
    every other error surface."""
    try:
        from triton.runtime.errors import OutOfResources
    except Exception:
        return ()
    return (OutOfResources,)


def warn_fallback(op: str, exc: BaseException) -> None:
    import warnings

    warnings.warn(f"{op}: the Triton kernel cannot run on this GPU ({exc}); using the PyTorch reference",
                  RuntimeWarning, stacklevel=3)
