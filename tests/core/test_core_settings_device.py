import pytest
import torch

from vai.core import settings
from vai.core.device import device_info, pick_precision
from vai.core.errors import VaiError


def test_settings_env_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("VAI_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("VAI_DATA_DIR", str(tmp_path))
    s = settings.get_settings()
    assert s.home == tmp_path / "h" and s.models_dir == tmp_path / "h" / "models"
    assert s.store_url == f"sqlite:///{tmp_path / 'h' / 'store.sqlite'}"
    assert s.data_dir == tmp_path.resolve()
    s2 = settings.configure(home=str(tmp_path / "flag"), seed=7)
    assert s2.home == tmp_path / "flag" and s2.seed == 7  # CLI flags beat the environment
    with pytest.raises(KeyError):
        settings.configure(colour="red")


def test_require_data_dir_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("VAI_DATA_DIR", str(tmp_path))
    with pytest.raises(VaiError, match="does not exist"):
        settings.get_settings().require_data_dir("path/slides")


def test_seed_everything_reproduces():
    settings.seed_everything(3)
    a = torch.rand(3)
    settings.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_precision_choice_on_cpu(monkeypatch):
    monkeypatch.delenv("VAI_PRECISION", raising=False)
    info = device_info("cpu")
    assert info.accelerator == "cpu" and info.precision == "32-true"
    assert pick_precision("cpu", "bf16-mixed") == "bf16-mixed"
    with pytest.raises(VaiError):
        pick_precision("cpu", "16-mixed")
    with pytest.raises(VaiError):
        pick_precision("cpu", "fp8")


def test_precision_choice_on_cuda_follows_bf16_support(monkeypatch):
    monkeypatch.delenv("VAI_PRECISION", raising=False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_precision("cuda") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_precision("cuda") == "16-mixed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(VaiError, match="no CUDA GPU"):
        device_info("cuda")


def test_inference_precision_rules(monkeypatch):
    import torch

    from vai.core import device as dev
    from vai.core.errors import VaiError

    monkeypatch.delenv("VAI_INFERENCE_PRECISION", raising=False)
    monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: False)
    assert dev.inference_precision("cpu") == "fp32"  # no native bf16: autocast would be slower, stay exact
    monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: True)
    assert dev.inference_precision("cpu") == "bf16"
    monkeypatch.setenv("VAI_INFERENCE_PRECISION", "fp32")
    assert dev.inference_precision("cpu") == "fp32"
    assert dev.inference_precision("cpu", "bf16") == "bf16"  # an explicit argument beats the environment
    with pytest.raises(VaiError, match="auto, bf16, fp32"):
        dev.inference_precision("cpu", "int4")
    x = torch.randn(4, 8)
    with dev.inference_autocast("cpu", "bf16"):
        assert (x @ x.T).dtype == torch.bfloat16
    with dev.inference_autocast("cpu", "fp32"):
        assert (x @ x.T).dtype == torch.float32
