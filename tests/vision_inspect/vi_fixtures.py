"""Shared helpers for the vision-inspection tests (module-scoped fitted detectors on synthetic textures)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

SIZE = 96


@contextlib.contextmanager
def isolated_env(base: Path):
    """Module-scoped fixtures run before the autouse per-test VAI_HOME: give them their own home."""
    from vai.core import settings

    old = {k: os.environ.get(k) for k in ("VAI_HOME", "VAI_CACHE_DIR")}
    os.environ["VAI_HOME"] = str(base / "home")
    os.environ.setdefault("VAI_CACHE_DIR", str(base / "cache"))
    if old["VAI_CACHE_DIR"] is None:
        os.environ["VAI_CACHE_DIR"] = str(base / "cache")
    settings.reset()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        settings.reset()


import pytest  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for these tests: on a CPU shared with other jobs, two OpenMP threads per process
    were measured 8x slower than one (spinning threads fight for the cores). Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
