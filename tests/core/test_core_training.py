import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from vai.core.settings import seed_everything
from vai.core.training import VaiModule, fit, predict


class TinyRegressor(VaiModule):
    def __init__(self, lr=0.05):
        super().__init__(lr=lr)
        self.net = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def loss_step(self, batch):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        return loss, {"mae": (self(x) - y).abs().mean()}

    def predict_step(self, batch, batch_idx):
        return {"pred": self(batch[0])}


def _data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return TensorDataset(x, y)


def test_fit_learns_restores_best_and_checkpoints(tmp_path):
    train, val = DataLoader(_data(), batch_size=32, shuffle=True), DataLoader(_data(64, 1), batch_size=64)
    model = TinyRegressor()
    res = fit(model, train, val, model_dir=tmp_path / "m", max_epochs=30, patience=5, seed=0, progress=False)
    assert res.precision == "32-true" and res.best_score is not None and res.best_score < 0.05
    assert any((tmp_path / "m" / "checkpoints").glob("*.ckpt"))
    # The restored weights are the best ones: validation loss equals the recorded best.
    x, y = next(iter(val))
    with torch.no_grad():
        assert abs(torch.nn.functional.mse_loss(model(x), y).item() - res.best_score) < 1e-4


def test_fit_is_deterministic_with_a_seed(tmp_path):
    weights = []
    for _ in range(2):
        seed_everything(5)  # the initial weights too
        m = TinyRegressor()
        fit(m, DataLoader(_data(), batch_size=32, shuffle=True), None, max_epochs=2, seed=5, progress=False,
            checkpoints=False)
        weights.append(m.net.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_predict_streams_batches_to_disk(tmp_path):
    m = TinyRegressor()
    loader = DataLoader(_data(100), batch_size=16)
    out = predict(m, loader, out_dir=tmp_path / "preds", progress=False)
    assert out["pred"].shape == (100,)
    assert len(list((tmp_path / "preds").glob("batch_*.npz"))) == 7
    in_memory = predict(m, loader, progress=False)
    np.testing.assert_allclose(np.concatenate([b["pred"].numpy() for b in in_memory]), out["pred"], rtol=1e-6)
