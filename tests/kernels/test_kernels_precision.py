"""Mixed-precision numerics on CPU: bf16 autocast against fp32 for the MIL pooling and a tiny MIL model, and
losses kept in fp32 (fp16 sums overflow at 65504).

Tolerances: bf16 keeps 8 significant bits, so every rounding of an operand is off by at most 2^-9 ~ 0.2%
(relative). Matmuls accumulate in fp32, so the error of a layer's output is dominated by the rounding of its
inputs and weights, ~2 x 2^-9 relative, errors of independent roundings partly cancelling. Through the ~6
rounded stages of encoder -> projections -> gate -> scores -> pooled -> head they compound to ~1% in the
worst case; we allow 3% relative (norm-wise for gradients) and see 0.3-1% in practice. A softmax weight's
relative error equals the error of its score minus the mean score error, so attention gets the same 3%."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vai.core.kernels.mil_pool import GatedAttentionPool

BF16_REL_TOL = 0.03


class TinyMIL(nn.Module):
    """The shape of the pathology models: instance encoder -> gated attention pooling -> bag classifier."""

    def __init__(self, in_dim=32, dim=64, heads=2, classes=3):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(in_dim, dim), nn.GELU())
        self.pool = GatedAttentionPool(dim, hidden_dim=32, n_heads=heads)
        self.head = nn.Linear(dim * heads, classes)

    def forward(self, bag):
        pooled, attention, _ = self.pool(self.encoder(bag))
        return self.head(pooled.reshape(1, -1)), attention


def rel_err(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("seed", [0, 1])
def test_gated_attention_pool_bf16_autocast_close_to_fp32(seed):
    torch.manual_seed(seed)
    pool = GatedAttentionPool(48, hidden_dim=32, n_heads=2)
    h = torch.randn(700, 48)
    ref = pool(h)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pool(h)
    assert out[1].dtype == torch.float32, "the softmax over instances runs in fp32 under autocast"
    torch.testing.assert_close(out[1].sum(1), torch.ones(2), atol=1e-5, rtol=0)
    assert ((out[1] - ref[1]).abs() / ref[1]).max().item() < BF16_REL_TOL
    assert rel_err(out[0], ref[0]) < BF16_REL_TOL
    assert rel_err(out[2], ref[2]) < BF16_REL_TOL


@pytest.mark.parametrize("seed", [0, 1])
def test_tiny_mil_model_bf16_autocast_loss_and_gradients(seed):
    torch.manual_seed(seed)
    model = TinyMIL()
    bag, label = torch.randn(1500, 32), torch.tensor([1])

    loss32 = F.cross_entropy(model(bag)[0], label)
    loss32.backward()
    grads32 = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, attention = model(bag)
        loss = F.cross_entropy(logits, label)
    assert logits.dtype == torch.bfloat16
    assert loss.dtype == torch.float32, "autocast runs cross-entropy in fp32"
    loss.backward()
    assert abs(loss.item() - loss32.item()) / loss32.item() < BF16_REL_TOL
    for name, p in model.named_parameters():
        assert p.grad.dtype == torch.float32, "parameters and their gradients stay fp32 (master weights)"
        if name == "pool.attention_w.bias":
            # softmax ignores a shift of all scores: the exact gradient is 0, both are rounding noise
            assert p.grad.abs().max() < 1e-4 and grads32[name].abs().max() < 1e-4
            continue
        assert rel_err(p.grad, grads32[name]) < BF16_REL_TOL, name


def test_losses_stay_fp32_and_do_not_overflow_in_fp16():
    """Autocast computes the built-in losses in fp32; a hand-written reduction over fp16 activations does
    not and overflows past 65504, which is why model code takes `.float()` before reducing to a loss."""
    big = torch.full((64, 8), 300.0)
    with torch.autocast("cpu", dtype=torch.float16):
        act = nn.Linear(8, 8)(big)  # fp16 under autocast
        assert act.dtype == torch.float16
        target = torch.zeros_like(act)
        assert F.mse_loss(act, target).dtype == torch.float32
        assert torch.isfinite(F.mse_loss(act, target))
        assert F.cross_entropy(act, torch.zeros(64, dtype=torch.long)).dtype == torch.float32
        assert F.binary_cross_entropy_with_logits(act, target).dtype == torch.float32
        naive = (act * act).sum()                 # fp16 accumulation result: overflows
        safe = (act.float() * act.float()).sum()  # the rule: reduce in fp32
    assert naive.dtype == torch.float16 and not torch.isfinite(naive)
    assert torch.isfinite(safe) and safe.dtype == torch.float32


@pytest.mark.filterwarnings("ignore:You defined a `validation_step`")
def test_bf16_mixed_training_step_with_lightning(tmp_path):
    """One short `fit` of the tiny MIL model at precision bf16-mixed (the GPU default) through the shared core:
    the loss stays finite and fp32, the weights stay fp32 and move."""
    import lightning as L

    from vai.core.training import VaiModule

    class Module(VaiModule):
        def __init__(self):
            super().__init__(lr=1e-2)
            self.net = TinyMIL()

        def loss_step(self, batch):
            bag, label = batch
            logits, _ = self.net(bag[0])
            loss = F.cross_entropy(logits.float(), label)
            assert loss.dtype == torch.float32
            return loss, {}

    torch.manual_seed(0)
    bags = [(torch.randn(200, 32) + (i % 3), torch.tensor(i % 3)) for i in range(6)]
    loader = torch.utils.data.DataLoader(bags, batch_size=1)
    module = Module()
    before = module.net.head.weight.detach().clone()
    trainer = L.Trainer(max_epochs=1, precision="bf16-mixed", accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    trainer.fit(module, loader)
    loss = trainer.callback_metrics["train_loss"]
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert module.net.head.weight.dtype == torch.float32
    assert not torch.equal(before, module.net.head.weight.detach())
