"""`torch.compile` where it pays, with one switch to turn it off.

`maybe_compile(module_or_fn, enabled=None, n_items=None, **compile_kwargs)`:
- enabled=None (auto): compile when CUDA is available and Triton is importable (Inductor's GPU code
  generator needs it). On CPU only for a long job: `n_items` (images, tiles) at least
  `VAI_COMPILE_CPU_MIN_ITEMS` (default 2,000) and a C++ compiler on PATH. Inductor's C++ build costs ~25 s
  once per process and shape; it paid 2.35x on the inspection backbone (8.6 -> 3.6 ms per 128-px image, one
  thread), so it wins back its cost after a few thousand items, never in a short job or a test.
- enabled=True forces it (e.g. a test with `backend="eager"`), enabled=False never compiles.
- `VAI_DISABLE_COMPILE=1` turns it off everywhere, whatever `enabled` says (the escape hatch when a model
  or a driver breaks the compiler).
Modules are compiled in place (`nn.Module.compile`), so `state_dict()` keys stay unprefixed and saved models
load with or without compilation. Functions are wrapped with `torch.compile`. Compilation errors surface on the
first call; a function wrapper falls back to eager then, with a warning, rather than failing a batch job.
"""
from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Callable, TypeVar

import torch
from torch import nn

T = TypeVar("T", nn.Module, Callable[..., Any])

__all__ = ["BatchForward", "channels_last_wanted", "compile_disabled", "compile_wanted", "maybe_compile"]

CPU_MIN_ITEMS_DEFAULT = 2000


def compile_disabled() -> bool:
    return os.environ.get("VAI_DISABLE_COMPILE", "").strip().lower() in {"1", "true", "yes"}


def compile_wanted(enabled: bool | None = None, *, n_items: int | None = None) -> bool:
    if compile_disabled() or enabled is False:
        return False
    if enabled:
        return True
    if torch.cuda.is_available():
        from vai.core.kernels._dispatch import triton_available

        return triton_available()
    import shutil

    min_items = int(os.environ.get("VAI_COMPILE_CPU_MIN_ITEMS", CPU_MIN_ITEMS_DEFAULT))
    has_cxx = any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++"))
    return n_items is not None and n_items >= min_items and has_cxx


def maybe_compile(module_or_fn: T, enabled: bool | None = None, *, n_items: int | None = None,
                  **compile_kwargs: Any) -> T:
    """The module (compiled in place) or a compiled function, or the input unchanged when compile is off."""
    if not compile_wanted(enabled, n_items=n_items):
        return module_or_fn
    if isinstance(module_or_fn, nn.Module):
        module_or_fn.compile(**compile_kwargs)
        return module_or_fn
    import torch._dynamo

    compiled = torch.compile(module_or_fn, **compile_kwargs)
    fn = module_or_fn
    state = {"eager": False}

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if state["eager"]:
            return fn(*args, **kwargs)
        try:
            return compiled(*args, **kwargs)
        except torch._dynamo.exc.BackendCompilerFailed as exc:  # the compiler broke, not the function
            warnings.warn(f"torch.compile failed for {getattr(fn, '__name__', fn)!r}, running eagerly: {exc}",
                          RuntimeWarning, stacklevel=2)
            state["eager"] = True
            return fn(*args, **kwargs)

    run.compiled = True  # lets callers and tests see that compilation is on
    return run


def _rows(out: Any, n: int) -> Any:
    if torch.is_tensor(out):
        return out[:n]
    if isinstance(out, (list, tuple)):
        return type(out)(_rows(o, n) for o in out)
    if isinstance(out, dict):
        return {k: _rows(v, n) for k, v in out.items()}
    return out


def channels_last_wanted(model: Any, enabled: bool | None = None) -> bool:
    """NHWC ("channels last") for a conv net on CPU: oneDNN's convolutions run it natively, NCHW pays a reorder
    around every conv. Measured on the inspection backbone (tf_efficientnet_lite0 to blocks.4, 128 px, batch 16,
    one thread): bf16 7.3 -> 4.2 ms per image eager, 3.7 -> 3.1 compiled; fp32 10.2 -> 7.9 eager. Auto (None) is
    CPU only: on a GPU it is not measured here. `VAI_CHANNELS_LAST=0` turns it off."""
    if enabled is False or os.environ.get("VAI_CHANNELS_LAST", "").strip().lower() in {"0", "false", "no"}:
        return False
    if not isinstance(model, nn.Module) or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return False
    if enabled:
        return True
    param = next(model.parameters(), None)
    return param is not None and param.device.type == "cpu"


class BatchForward:
    """`model(x)` for batches of up to `batch_size` rows, compiled when `compile_wanted(enabled, n_items)` says
    so. A compiled graph is built per input shape, so a short last batch is padded to the full size and the
    padding cut from the output: one C++ build per process, not one per odd batch. Conv nets on CPU run in
    channels-last layout (`channels_last_wanted`; the module is converted in place, its outputs are the same
    values in NHWC strides)."""

    def __init__(self, model: Callable[..., Any], batch_size: int, *, enabled: bool | None = None,
                 n_items: int | None = None, channels_last: bool | None = None, **compile_kwargs: Any):
        self.model = model
        self.batch_size = int(batch_size)
        self._compile_kwargs = compile_kwargs
        self.channels_last = channels_last_wanted(model, channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.compiled = compile_wanted(enabled, n_items=n_items)
        self._fn = maybe_compile(self._eager, enabled=True, dynamic=False, **compile_kwargs) if self.compiled \
            else self._eager

    def _eager(self, x: torch.Tensor) -> Any:
        return self.model(x)

    def upgraded(self, enabled: bool | None = None, n_items: int | None = None) -> "BatchForward":
        """This forward, or a compiled one for the same model when this one is eager and the rule now says
        compiling pays (e.g. a longer job came along). A compiled forward stays compiled."""
        if self.compiled or enabled is False:
            return self
        fwd = BatchForward(self.model, self.batch_size, enabled=enabled, n_items=n_items,
                           channels_last=self.channels_last, **self._compile_kwargs)
        return fwd if fwd.compiled else self

    def _layout(self, x: torch.Tensor) -> torch.memory_format:
        return torch.channels_last if self.channels_last and x.ndim == 4 else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> Any:
        fmt = self._layout(x)
        if not self.compiled:
            return self._fn(x.contiguous(memory_format=fmt) if fmt is torch.channels_last else x)
        # A graph guards on the input's dispatch keys and strides: a batch made outside inference mode (a
        # DataLoader's) and one made inside it differ, and so do a permuted NHWC image batch and the padded
        # (concatenated, contiguous) short one; each difference cost a full recompile (~15 s on 2 cores).
        # Always hand the graph a contiguous inference tensor (at most a copy of one batch).
        if torch.is_inference_mode_enabled() and not x.is_inference():
            x = x.clone(memory_format=fmt)
        else:
            x = x.contiguous(memory_format=fmt)
        n = int(x.shape[0])
        if 0 < n < self.batch_size:
            pad = x.new_zeros((self.batch_size - n, *x.shape[1:]))
            return _rows(self._fn(torch.cat([x, pad]).contiguous(memory_format=fmt)), n)
        return self._fn(x)
