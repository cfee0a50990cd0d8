"""Shared Lightning mechanics: a base module, `fit` and `predict`, one code path for CPU and GPU.

- `VaiModule`: the LightningModule the verticals extend; they implement `loss_step(batch)` (and
  `predict_step` where prediction differs from `forward`). Optimiser: AdamW with cosine decay.
- `fit(...)`: a Trainer with a progress bar, checkpoints in `<model_dir>/checkpoints`, early stopping on a
  validation metric, deterministic seeding, precision from `vai.core.device` (bf16-mixed on GPU, 32-true
  on CPU); the best weights (by the monitored metric) are restored into the module when it returns.
- `predict(...)`: `Trainer.predict`; with `out_dir`, a prediction writer saves each batch atomically as
  `.npz`, so batch inference over millions of items never holds everything in memory.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, EarlyStopping, ModelCheckpoint

from vai.core.device import device_info
from vai.core.io import atomic_path
from vai.core.settings import seed_everything

# Lightning's chatter about workers and tensor cores is noise on CPU CI and in user batch jobs.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*TensorCore.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
# Lightning's INFO lines ("GPU available: False", tips about its cloud products) drown the vertical's own
# progress lines; `vai --verbose` (the `vai` logger at DEBUG) brings them back.
if not logging.getLogger("vai").isEnabledFor(logging.DEBUG):
    for _name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(_name).setLevel(logging.WARNING)


class VaiModule(L.LightningModule):
    """Base LightningModule: subclasses define the network and `loss_step(batch) -> (loss, {name: value})`."""

    def __init__(self, lr: float = 1e-3, weight_decay: float = 1e-4, **hparams: Any):
        super().__init__()
        self.save_hyperparameters()

    def loss_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError

    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        loss, logs = self.loss_step(batch)
        bs = _batch_size(batch)
        self.log(f"{stage}_loss", loss.float(), prog_bar=True, on_epoch=True, on_step=False, batch_size=bs)
        for name, value in logs.items():
            self.log(f"{stage}_{name}", value, on_epoch=True, on_step=False, batch_size=bs)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        max_epochs = self.trainer.max_epochs if self.trainer and self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1


class _KeepBestWeights(Callback):
    """Keeps the best state_dict in memory, so `fit` can restore it without unpickling a checkpoint."""

    def __init__(self, monitor: str, mode: str):
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.state: dict[str, torch.Tensor] | None = None
        self.epoch: int | None = None

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        v = float(value)
        if math.isnan(v):
            return
        better = self.best is None or (v < self.best if self.mode == "min" else v > self.best)
        if better:
            self.best, self.epoch = v, trainer.current_epoch
            self.state = {k: t.detach().cpu().clone() for k, t in pl_module.state_dict().items()}


@dataclass
class FitResult:
    best_score: float | None
    best_epoch: int | None
    epochs_run: int
    checkpoint_dir: Path | None
    precision: str
    accelerator: str
    history: dict[str, float]


def make_trainer(*, max_epochs: int = 20, device: str | None = None, precision: str | None = None,
                 callbacks: list[Callback] | None = None, progress: bool = True, default_root_dir: str | os.PathLike | None = None,
                 deterministic: bool = True, **trainer_kwargs: Any) -> L.Trainer:
    info = device_info(device, precision)
    return L.Trainer(
        accelerator=info.accelerator, devices=1, precision=info.precision, max_epochs=max_epochs,
        callbacks=callbacks or [], enable_progress_bar=progress, enable_model_summary=False,
        logger=False, default_root_dir=str(default_root_dir) if default_root_dir else None,
        # Only our own ModelCheckpoint writes checkpoints (Lightning's default would write into the cwd).
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks or []),
        deterministic=(True if info.accelerator == "cpu" else "warn") if deterministic else False,
        **trainer_kwargs,
    )


def fit(module: L.LightningModule, train_loader, val_loader=None, *, model_dir: str | os.PathLike | None = None,
        max_epochs: int = 20, patience: int = 5, monitor: str = "val_loss", mode: str = "min", seed: int | None = None,
        device: str | None = None, precision: str | None = None, progress: bool = True, checkpoints: bool = True,
        gradient_clip_val: float | None = 1.0, **trainer_kwargs: Any) -> FitResult:
    """Train `module`; with a `val_loader`, early-stop on `monitor` and restore the best weights.

    `seed` fixes data order, dropout and the rest of training; the initial weights were drawn when `module` was
    built, so build it after `torch.manual_seed(seed)` for a model that does not depend on what ran before."""
    seed_everything(seed)
    callbacks: list[Callback] = []
    keep = None
    ckpt_dir = None
    if val_loader is not None:
        keep = _KeepBestWeights(monitor, mode)
        callbacks += [keep, EarlyStopping(monitor=monitor, mode=mode, patience=patience, check_finite=False)]
    if model_dir is not None and checkpoints:
        ckpt_dir = Path(model_dir) / "checkpoints"
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_last=False, save_top_k=1,
                                         monitor=monitor if val_loader is not None else None, mode=mode,
                                         save_weights_only=True))
    trainer = make_trainer(max_epochs=max_epochs, device=device, precision=precision, callbacks=callbacks,
                           progress=progress, default_root_dir=model_dir, gradient_clip_val=gradient_clip_val,
                           num_sanity_val_steps=0, **trainer_kwargs)
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    if keep is not None and keep.state is not None:
        module.load_state_dict(keep.state)
    history = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    return FitResult(best_score=keep.best if keep else None, best_epoch=keep.epoch if keep else None,
                     epochs_run=trainer.current_epoch, checkpoint_dir=ckpt_dir, precision=str(trainer.precision),
                     accelerator=trainer.accelerator.__class__.__name__.replace("Accelerator", "").lower(),
                     history=history)


class NpzPredictionWriter(BasePredictionWriter):
    """Writes each predicted batch to `<out_dir>/batch_<idx>.npz`, atomically."""

    def __init__(self, out_dir: str | os.PathLike):
        super().__init__(write_interval="batch")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        arrays = _to_numpy_dict(prediction)
        with atomic_path(self.out_dir / f"batch_{dataloader_idx}_{batch_idx:08d}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)


def _to_numpy_dict(prediction: Any) -> dict[str, np.ndarray]:
    if isinstance(prediction, dict):
        return {k: _as_np(v) for k, v in prediction.items()}
    if isinstance(prediction, (list, tuple)):
        return {f"out{i}": _as_np(v) for i, v in enumerate(prediction)}
    return {"out": _as_np(prediction)}


def _as_np(v: Any) -> np.ndarray:
    if torch.is_tensor(v):
        return v.detach().float().cpu().numpy() if v.is_floating_point() else v.detach().cpu().numpy()
    return np.asarray(v)


def read_predictions(out_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Concatenate the batches an `NpzPredictionWriter` wrote, in batch order."""
    files = sorted(Path(out_dir).glob("batch_*.npz"))
    parts: dict[str, list[np.ndarray]] = {}
    for f in files:
        with np.load(f) as data:
            for k in data.files:
                parts.setdefault(k, []).append(data[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def predict(module: L.LightningModule, loader, *, out_dir: str | os.PathLike | None = None, device: str | None = None,
            precision: str | None = None, progress: bool = True) -> list[Any] | dict[str, np.ndarray]:
    """Run `Trainer.predict`; with `out_dir`, stream batches to disk and return them concatenated."""
    callbacks = [NpzPredictionWriter(out_dir)] if out_dir is not None else []
    trainer = make_trainer(device=device, precision=precision, callbacks=callbacks, progress=progress,
                           deterministic=False)
    outputs = trainer.predict(module, dataloaders=loader, return_predictions=out_dir is None)
    if out_dir is not None:
        return read_predictions(out_dir)
    return outputs


