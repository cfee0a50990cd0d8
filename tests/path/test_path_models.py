"""MIL models: streaming ABMIL equals the full pass, masked loss, TransMIL attention, class weights."""
import numpy as np
import pytest
import torch

from vai.verticals.path.genotype import pos_weights
from vai.verticals.path.models import ABMIL, MILModule, TransMIL, masked_bce


def test_streaming_abmil_matches_full_bag():
    torch.manual_seed(0)
    model = ABMIL(32, n_targets=3).eval()
    h = torch.randn(1000, 32)
    logits, att = model(h)
    s_logits, s_att = model.forward_streaming(h.split(128))
    assert torch.allclose(logits, s_logits, atol=1e-5)
    assert torch.allclose(att, s_att, atol=1e-6)
    assert att.shape == (3, 1000) and torch.allclose(att.sum(1), torch.ones(3))


def test_masked_loss_ignores_missing_labels():
    logits = torch.tensor([2.0, -1.0, 0.5])
    y = torch.tensor([1.0, 0.0, 0.0])
    full = masked_bce(logits, y, torch.ones(3))
    masked = masked_bce(logits, torch.tensor([1.0, 0.0, 1.0]), torch.tensor([1.0, 1.0, 0.0]))
    assert masked == pytest.approx(masked_bce(logits[:2], y[:2], torch.ones(2)).item())
    assert full.item() != pytest.approx(masked.item())
    assert masked_bce(logits, y, torch.zeros(3)).item() == 0.0


def test_transmil_shapes_and_attention():
    torch.manual_seed(0)
    model = TransMIL(16, n_targets=2, dim=32, heads=4).eval()
    for n in (1, 7, 50):
        logits, att = model(torch.randn(n, 16))
        assert logits.shape == (2,) and att.shape == (2, n)
        assert torch.allclose(att.sum(1), torch.ones(2), atol=1e-5)


def test_module_gradients_flow_and_class_weights():
    y = np.array([[1, 0], [0, 0], [0, np.nan], [0, 1], [0, 0]], float)
    pw = pos_weights(y)
    assert pw[0] == pytest.approx(4.0) and pw[1] == pytest.approx(3.0)
    m = MILModule(8, 2, kind="abmil", pos_weight=pw)
    loss, _ = m.loss_step((torch.randn(20, 8), torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])))
    loss.backward()
    assert all(p.grad is not None for p in m.net.proj.parameters())
    assert m.pos_weight.tolist() == pytest.approx(pw)
