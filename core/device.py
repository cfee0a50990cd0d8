"""Device and precision choice, in one place for every vertical.

CUDA with bf16 support -> `bf16-mixed`; older CUDA -> `16-mixed`; CPU -> `32-true`. Overridable with the
`VAI_PRECISION` / `VAI_DEVICE` environment variables or the functions' arguments.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

VALID_PRECISIONS = ("bf16-mixed", "16-mixed", "32-true")


@dataclass(frozen=True)
class DeviceInfo:
    accelerator: str  # "cuda" or "cpu" (Lightning's names)
    device: torch.device
    precision: str
    name: str


def pick_accelerator(override: str | None = None) -> str:
    choice = (override or os.environ.get("VAI_DEVICE") or "auto").lower()
    if choice in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            from vai.core.errors import VaiError

            raise VaiError("device 'cuda' was asked for but torch sees no CUDA GPU: use --device cpu")
        return "cuda"
    if choice == "cpu":
        return "cpu"
    if choice != "auto":  # a typo or another accelerator must not quietly run on whatever is there
        from vai.core.errors import VaiError

        raise VaiError(f"device {override or os.environ.get('VAI_DEVICE')!r} is not one of auto, cpu, cuda")
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_precision(accelerator: str, override: str | None = None) -> str:
    choice = override or os.environ.get("VAI_PRECISION")
    if choice:
        if choice not in VALID_PRECISIONS:
            from vai.core.errors import VaiError

            raise VaiError(f"precision {choice!r} is not one of {', '.join(VALID_PRECISIONS)}")
        if accelerator == "cpu" and choice == "16-mixed":
            from vai.core.errors import VaiError

            raise VaiError("precision '16-mixed' needs a CUDA GPU; on CPU use 32-true or bf16-mixed")
        return choice
    if accelerator == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def device_info(device: str | None = None, precision: str | None = None) -> DeviceInfo:
    acc = pick_accelerator(device)
    prec = pick_precision(acc, precision)
    if acc == "cuda":
        dev = torch.device("cuda", torch.cuda.current_device())
        name = torch.cuda.get_device_name(dev)
    else:
        dev = torch.device("cpu")
        name = "cpu"
    return DeviceInfo(accelerator=acc, device=dev, precision=prec, name=name)


def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 natively (AMX tiles or AVX512-BF16), where oneDNN's bf16 matmuls run
    ~2x faster than fp32. Private torch probes, so any failure means "no"."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except Exception:
        return False


def inference_precision(device: torch.device | str, override: str | None = None) -> str:
    """Precision for frozen-model inference (encoders whose outputs are features, not trained weights):
    bf16 autocast on bf16-capable CUDA and on CPUs with native bf16 (cosine to fp32 embeddings >= 0.9999 for
    MiniLM, measured in benchmarks/results/master_score.md), fp32 otherwise. Training keeps `pick_precision`
    (fp32 on CPU). `VAI_INFERENCE_PRECISION` = auto | bf16 | fp32 overrides."""
    choice = (override or os.environ.get("VAI_INFERENCE_PRECISION") or "auto").lower()
    if choice not in ("auto", "bf16", "fp32"):
        from vai.core.errors import VaiError

        raise VaiError(f"inference precision {choice!r} is not one of auto, bf16, fp32")
    if choice != "auto":
        return choice
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if kind == "cpu" and cpu_has_fast_bf16() else "fp32"


_AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "bf16": torch.bfloat16, "16-mixed": torch.float16}


def inference_autocast(device: torch.device | str, precision: str):
    """Autocast for a precision name, Lightning's (`bf16-mixed`, `16-mixed`, `32-true`) or
    `inference_precision`'s (`bf16`, `fp32`); a no-op for full precision."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    return torch.autocast(torch.device(device).type, dtype=dtype) if dtype else contextlib.nullcontext()


def autocast(info: DeviceInfo):
    """Autocast context matching the precision (used for plain-torch inference outside Lightning)."""
    return inference_autocast(info.device, info.precision)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's or a scheduler's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
