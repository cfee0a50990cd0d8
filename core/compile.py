"""`torch.compile` where it pays, with one switch to turn it off.

`maybe_compile(module_or_fn, enabled=None, **compile_kwargs)`:
- enabled=None (auto): compile only when CUDA is available and Triton is importable (Inductor's GPU code
  generator needs it). On CPU it stays eager: compiling costs tens of seconds of C++ builds, which a short
  CPU job or a test never wins back.
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

__all__ = ["compile_disabled", "compile_wanted", "maybe_compile"]


def compile_disabled() -> bool:
    return os.environ.get("VAI_DISABLE_COMPILE", "").strip().lower() in {"1", "true", "yes"}


def compile_wanted(enabled: bool | None = None) -> bool:
    if compile_disabled() or enabled is False:
        return False
    if enabled:
        return True
    if not torch.cuda.is_available():
        return False
    from vai.core.kernels._dispatch import triton_available

    return triton_available()


def maybe_compile(module_or_fn: T, enabled: bool | None = None, **compile_kwargs: Any) -> T:
    """The module (compiled in place) or a compiled function, or the input unchanged when compile is off."""
    if not compile_wanted(enabled):
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
