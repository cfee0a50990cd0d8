"""Genotype models over bags of tile features (one bag = one slide), several targets at once.

- `ABMIL`: CLAM/ABMIL-style gated attention with one attention branch per target (the core
  `GatedAttentionPool`, which runs a fused Triton kernel on GPU), then a per-target linear head.
- `TransMIL`: a TransMIL-style transformer (class token, two self-attention layers through the core
  `attention` (SDPA: flash kernels on GPU), a PPEG convolutional position encoding between them).
- `MILModule`: the Lightning module (core `VaiModule`): masked, class-weighted multi-label BCE, so
  missing labels cost nothing and rare mutations are not drowned out."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vai.core.kernels.attention import attention as sdpa
from vai.core.kernels.mil_pool import GatedAttentionPool
from vai.core.training import VaiModule

MODEL_KINDS = ("abmil", "transmil")


class ABMIL(nn.Module):
    def __init__(self, in_dim: int, n_targets: int, hidden: int = 256, attn_hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.pool = GatedAttentionPool(hidden, attn_hidden, n_heads=n_targets)
        self.head_w = nn.Parameter(torch.randn(n_targets, hidden) / math.sqrt(hidden))
        self.head_b = nn.Parameter(torch.zeros(n_targets))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h [N, D] -> (logits [T], attention [T, N])."""
        z = self.proj(h)
        pooled, att, _ = self.pool(z)                  # [T, hidden], [T, N]
        return (pooled * self.head_w).sum(-1) + self.head_b, att

    @torch.no_grad()
    def forward_streaming(self, chunks) -> tuple[torch.Tensor, torch.Tensor]:
        """Same result as `forward` over a bag given as an iterable of [n_i, D] chunks, holding one chunk at
        a time: an online softmax merges the per-chunk pooled vectors (raw scores are kept, [T, N])."""
        pooled_acc = None
        mass = None
        running_max = None
        scores_all = []
        for h in chunks:
            z = self.proj(h)
            pooled, _, raw = self.pool(z)              # pooled is softmax(raw)-weighted within the chunk
            m = raw.max(dim=1).values                  # [T]
            s = torch.exp(raw - m[:, None]).sum(1)     # [T]
            scores_all.append(raw)
            if pooled_acc is None:
                pooled_acc, mass, running_max = pooled * s[:, None], s, m
                continue
            new_max = torch.maximum(running_max, m)
            a, b = torch.exp(running_max - new_max), torch.exp(m - new_max)
            pooled_acc = pooled_acc * a[:, None] + pooled * (s * b)[:, None]
            mass = mass * a + s * b
            running_max = new_max
        if pooled_acc is None:
            raise ValueError("empty bag")
        pooled = pooled_acc / mass[:, None]
        scores = torch.cat(scores_all, dim=1)
        att = torch.softmax(scores, dim=1)
        return (pooled * self.head_w).sum(-1) + self.head_b, att


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def _qkv(self, x):
        b, n, d = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        y = sdpa(q, k, v)                                   # [b, heads, n, hd]
        y = y.transpose(1, 2).reshape(x.shape)
        return x + self.drop(self.out(y))

    def cls_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention of the class token (position 0) over all positions, averaged over heads: [b, n]."""
        q, k, _ = self._qkv(x)
        logits = (q[:, :, :1] @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        return torch.softmax(logits.float(), dim=-1).mean(1)[:, 0]


class _PPEG(nn.Module):
    """Pyramid position encoding (TransMIL): depthwise convs over the tokens laid out on a square grid."""

    def __init__(self, dim: int):
        super().__init__()
        self.c7 = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.c5 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.c3 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, side: int) -> torch.Tensor:
        cls, tokens = x[:, :1], x[:, 1:]
        b, n, d = tokens.shape
        grid = tokens.transpose(1, 2).reshape(b, d, side, side)
        grid = grid + self.c7(grid) + self.c5(grid) + self.c3(grid)
        return torch.cat([cls, grid.flatten(2).transpose(1, 2)], dim=1)


class TransMIL(nn.Module):
    def __init__(self, in_dim: int, n_targets: int, dim: int = 192, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU())
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.layer1 = _SelfAttention(dim, heads, dropout)
        self.ppeg = _PPEG(dim)
        self.layer2 = _SelfAttention(dim, heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_targets)
        self.n_targets = n_targets
        nn.init.normal_(self.cls, std=0.02)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h [N, D] -> (logits [T], attention [T, N]: the class token's attention in the last layer)."""
        n = h.shape[0]
        z = self.proj(h)[None]                              # [1, N, dim]
        side = max(1, math.ceil(math.sqrt(n)))
        pad = side * side - n
        if pad:  # wrap-around padding fills the square grid, as in TransMIL
            reps = math.ceil(pad / n)
            z = torch.cat([z, z.repeat(1, reps, 1)[:, :pad]], dim=1)
        x = torch.cat([self.cls.expand(1, -1, -1), z], dim=1)
        x = self.layer1(x)
        x = self.ppeg(x, side)
        att = self.layer2.cls_attention(x)[0, 1:1 + n]
        x = self.layer2(x)
        logits = self.head(self.norm(x[:, 0]))[0]
        att = att / att.sum().clamp_min(1e-12)
        return logits, att[None].expand(self.n_targets, -1)


def build_model(kind: str, in_dim: int, n_targets: int, **kwargs) -> nn.Module:
    if kind == "abmil":
        return ABMIL(in_dim, n_targets, **kwargs)
    if kind == "transmil":
        return TransMIL(in_dim, n_targets, **kwargs)
    from vai.core.errors import VaiError

    raise VaiError(f"--model must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
               pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean BCE over the labelled targets only (mask 1 = label present); 0 when nothing is labelled."""
    loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp_min(1.0)


class MILModule(VaiModule):
    """Batches are single bags: (features [N, D], labels [T], mask [T])."""

    def __init__(self, in_dim: int, n_targets: int, kind: str = "abmil", pos_weight: list[float] | None = None,
                 lr: float = 2e-4, weight_decay: float = 1e-4, model_kwargs: dict | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, in_dim=in_dim, n_targets=n_targets, kind=kind,
                         pos_weight=pos_weight, model_kwargs=model_kwargs or {})
        self.net = build_model(kind, in_dim, n_targets, **(model_kwargs or {}))
        self.register_buffer("pos_weight", torch.tensor(pos_weight if pos_weight else [1.0] * n_targets,
                                                        dtype=torch.float32))

    def forward(self, h):
        return self.net(h)

    def loss_step(self, batch):
        h, y, m = batch
        logits, _ = self.net(h)
        loss = masked_bce(logits.float(), y, m, self.pos_weight)
        return loss, {}

    def predict_step(self, batch, batch_idx: int = 0):
        h = batch[0] if isinstance(batch, (list, tuple)) else batch
        logits, att = self.net(h)
        return {"prob": torch.sigmoid(logits.float())[None], "attention": att.float()}
