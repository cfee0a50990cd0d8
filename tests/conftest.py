"""Test-wide setup.

- TRITON_INTERPRET=1 before anything imports triton: Triton kernels then run in the interpreter on
  CPU (fp32/fp16 only; bf16 is wrong there) and are held to their PyTorch references.
- Every test gets its own VAI_HOME (models, cache, store), so tests never touch ~/.vai or each other.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

_SHARED_CACHE = None


@pytest.fixture(autouse=True)
def vai_home(tmp_path, monkeypatch):
    """An isolated home; the converted backbone weights are shared across tests to save time."""
    global _SHARED_CACHE
    from vai.core import settings

    home = tmp_path / "vai_home"
    monkeypatch.setenv("VAI_HOME", str(home))
    if _SHARED_CACHE is None:
        import tempfile

        _SHARED_CACHE = Path(tempfile.mkdtemp(prefix="vai-test-cache-"))
    monkeypatch.setenv("VAI_CACHE_DIR", str(_SHARED_CACHE))
    monkeypatch.delenv("VAI_STORE_URL", raising=False)
    settings.reset()
    yield home
    settings.reset()


@pytest.fixture
def shared_data_dir():
    """The real data sets (../shared/data or VAI_DATA_DIR); tests using it skip when it is absent."""
    from vai.core.settings import get_settings

    d = get_settings().data_dir
    if d is None or not d.is_dir():
        pytest.skip("no data dir (../shared/data or VAI_DATA_DIR)")
    return d


@pytest.fixture
def one_thread():
    """One torch thread for a test (`pytestmark = pytest.mark.usefixtures("one_thread")`): small bags on a
    shared 2-core CPU run several times faster with one thread than two. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
