"""A directed message-passing neural network (D-MPNN, Yang et al. 2019, as in chemprop) on the shared
Lightning core: bond-centred messages, scaled-sum ("norm") or mean readout, optional extra molecule-level inputs (scaled RDKit
descriptors, solvent fingerprints) concatenated before the feed-forward head."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vai.core.training import VaiModule

from .features import ATOM_DIM, BOND_DIM, MolGraph


class GraphDataset(Dataset):
    def __init__(self, graphs: list[MolGraph], extra: np.ndarray | None = None, y: np.ndarray | None = None):
        self.graphs, self.extra, self.y = graphs, extra, y

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i):
        return (self.graphs[i], None if self.extra is None else self.extra[i], None if self.y is None else self.y[i])


def collate_graphs(items) -> dict[str, torch.Tensor]:
    xs, es, srcs, dsts, batch = [], [], [], [], []
    offset = 0
    for k, (g, _, _) in enumerate(items):
        xs.append(g.x)
        es.append(g.edge_attr)
        srcs.append(g.src + offset)
        dsts.append(g.dst + offset)
        batch.append(np.full(len(g.x), k, dtype=np.int64))
        offset += len(g.x)
    out = {
        "x": torch.from_numpy(np.concatenate(xs)), "edge_attr": torch.from_numpy(np.concatenate(es)),
        "src": torch.from_numpy(np.concatenate(srcs)), "dst": torch.from_numpy(np.concatenate(dsts)),
        "batch": torch.from_numpy(np.concatenate(batch)), "n_mols": torch.tensor(len(items)),
    }
    if items[0][1] is not None:
        out["extra"] = torch.from_numpy(np.stack([it[1] for it in items]).astype(np.float32))
    if items[0][2] is not None:
        out["y"] = torch.from_numpy(np.stack([np.atleast_1d(it[2]) for it in items]).astype(np.float32))
    return out


def make_loader(graphs, extra=None, y=None, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(GraphDataset(graphs, extra, y), batch_size=batch_size, shuffle=shuffle,
                      collate_fn=collate_graphs, num_workers=0, generator=gen)


class DMPNN(VaiModule):
    """task: regression (targets standardised, masked MSE), binary (masked BCE, one logit per task) or
    multiclass (cross-entropy over `n_classes`, single task)."""

    def __init__(self, n_tasks: int = 1, task: str = "regression", n_classes: int = 2, extra_dim: int = 0,
                 hidden: int = 300, depth: int = 3, dropout: float = 0.0, ffn_hidden: int = 300,
                 ffn_layers: int = 2, lr: float = 1e-3, weight_decay: float = 0.0,
                 y_mean: list[float] | None = None, y_std: list[float] | None = None, aggregation: str = "norm"):
        super().__init__(lr=lr, weight_decay=weight_decay)
        if aggregation not in ("mean", "norm"):
            raise ValueError("aggregation is 'mean' or 'norm' (sum / 100, chemprop v2's default)")
        self.aggregation = aggregation
        self.task, self.depth, self.n_tasks, self.n_classes = task, depth, n_tasks, n_classes
        self.W_i = nn.Linear(ATOM_DIM + BOND_DIM, hidden, bias=False)
        self.W_h = nn.Linear(hidden, hidden, bias=False)
        self.W_o = nn.Linear(ATOM_DIM + hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        n_out = n_classes if task == "multiclass" else n_tasks
        layers: list[nn.Module] = []
        d = hidden + extra_dim
        for _ in range(ffn_layers - 1):
            layers += [nn.Linear(d, ffn_hidden), nn.ReLU(), nn.Dropout(dropout)]
            d = ffn_hidden
        layers.append(nn.Linear(d, n_out))
        self.ffn = nn.Sequential(*layers)
        self.register_buffer("y_mean", torch.tensor(y_mean if y_mean is not None else [0.0] * n_tasks, dtype=torch.float32))
        self.register_buffer("y_std", torch.tensor(y_std if y_std is not None else [1.0] * n_tasks, dtype=torch.float32))

    def atom_embeddings(self, batch: dict, x: torch.Tensor | None = None) -> torch.Tensor:
        x = batch["x"] if x is None else x
        src, dst, e = batch["src"], batch["dst"], batch["edge_attr"]
        n_atoms = x.shape[0]
        rev = torch.arange(src.shape[0], device=src.device) ^ 1  # edges come in (a->b, b->a) pairs
        h0 = torch.relu(self.W_i(torch.cat([x[src], e], dim=1)))
        h = h0
        for _ in range(self.depth - 1):
            incoming = torch.zeros(n_atoms, h.shape[1], device=h.device, dtype=h.dtype).index_add_(0, dst, h)
            h = self.dropout(torch.relu(h0 + self.W_h(incoming[src] - h[rev])))
        incoming = torch.zeros(n_atoms, h.shape[1], device=h.device, dtype=h.dtype).index_add_(0, dst, h)
        return self.dropout(torch.relu(self.W_o(torch.cat([x, incoming], dim=1))))

    def forward(self, batch: dict, x: torch.Tensor | None = None) -> torch.Tensor:
        z = self.encode(batch, x)
        if "extra" in batch:
            z = torch.cat([z, batch["extra"].to(z.dtype)], dim=1)
        return self.ffn(z)

    def encode(self, batch: dict, x: torch.Tensor | None = None) -> torch.Tensor:
        """The learned molecule vector (atom states pooled), before descriptors join it and the FFN reads it."""
        a = self.atom_embeddings(batch, x)
        n_mols = int(batch["n_mols"])
        idx = batch["batch"]
        pooled = torch.zeros(n_mols, a.shape[1], device=a.device, dtype=a.dtype).index_add_(0, idx, a)
        if self.aggregation == "mean":
            counts = torch.bincount(idx, minlength=n_mols).clamp(min=1).unsqueeze(1).to(a.dtype)
            z = pooled / counts
        else:  # a scaled sum keeps size information (atom counts) that a mean loses
            z = pooled / 100.0
        return z

    def loss_step(self, batch):
        out = self(batch).float()
        y = batch["y"]
        if self.task == "multiclass":
            target = y[:, 0]
            mask = ~torch.isnan(target)
            loss = nn.functional.cross_entropy(out[mask], target[mask].long())
            return loss, {}
        mask = ~torch.isnan(y)
        if self.task == "binary":
            per = nn.functional.binary_cross_entropy_with_logits(out, torch.nan_to_num(y), reduction="none")
        else:
            per = (out - torch.nan_to_num((y - self.y_mean) / self.y_std)) ** 2
        loss = (per * mask).sum() / mask.sum().clamp(min=1)
        return loss, {}

    def transform_output(self, out: torch.Tensor) -> torch.Tensor:
        """Raw network output to predictions: target units, probabilities, or class probabilities."""
        out = out.float()
        if self.task == "multiclass":
            return torch.softmax(out, dim=1)
        if self.task == "binary":
            return torch.sigmoid(out)
        return out * self.y_std + self.y_mean

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return self.transform_output(self(batch))
