"""The model directory format every vertical uses.

    MODEL_DIR/
      config.json     what to rebuild the model with (vertical, kind, hyper-parameters, label names, ...)
      weights.safetensors   tensors only (optional; tree models store their own text/JSON files)
      metrics.json    held-out metrics (never training-set metrics reported as results)
      meta.json       format version, created_at, data fingerprint, library versions
      <extra files>   anything else the vertical needs (plots, thresholds, vocabularies), never pickles

Loading reads JSON and safetensors only, so opening an untrusted model directory never unpickles.
Saving is atomic: the directory is built beside its target and moved into place when complete.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from vai.core.errors import VaiError
from vai.core.io import atomic_dir, atomic_write_json, is_replaceable_dir, read_json

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
_TRACKED_LIBS = ("vai-platform", "torch", "lightning", "timm", "numpy", "pandas", "scikit-learn", "rdkit",
                 "ortools", "statsmodels", "openslide-python", "lightgbm", "safetensors")


def library_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in (*_TRACKED_LIBS, *extra):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def fingerprint_files(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the files' names and bytes, in sorted order: identifies the training data."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def fingerprint_frame(frame) -> str:
    """SHA-256 of a DataFrame's content (values and column names)."""
    import pandas as pd

    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return "sha256:" + h.hexdigest()


@dataclass
class ModelDir:
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def weights(self, device: str = "cpu") -> dict:
        """The tensors in weights.safetensors (safetensors never executes code)."""
        from safetensors.torch import load_file

        wp = self.path / WEIGHTS_FILE
        if not wp.exists():
            raise VaiError(f"{self.path}: no {WEIGHTS_FILE} in this model directory")
        try:
            return load_file(str(wp), device=device)
        except Exception as exc:  # noqa: BLE001 - SafetensorError (truncated, overwritten): name the file
            raise VaiError(f"{wp}: cannot be read as safetensors ({type(exc).__name__}: {exc}); the model directory "
                           "is damaged: restore it or re-train") from None

    def file(self, name: str) -> Path:
        p = self.path / name
        if not p.exists():
            raise VaiError(f"{self.path}: model file {name!r} is missing; re-train or re-save the model")
        return p


def _safe_model_target(target: Path) -> Path:
    """Where to save: `target`, unless it is a file or a folder of other things (a folder of images given as
    --out by mistake), which replacing would delete. Then the model goes beside it, named so, with a warning: the
    work that made the model is not lost, and neither is the folder."""
    if is_replaceable_dir(target):
        return target
    for k in range(1, 1000):
        alt = target.with_name(f"{target.name}.vai-model" + (f"-{k}" if k > 1 else ""))
        if is_replaceable_dir(alt):
            from vai.core.progress import get_logger

            get_logger("vai.core").warning("%s is %s, not a model directory: not replaced; the model was saved to %s",
                                           target, "a file" if target.is_file() else "a folder of other files", alt)
            return alt
    raise VaiError(f"{target}: holds other files and no free name beside it; choose another --out")


def save_model_dir(path: str | Path, *, config: Mapping[str, Any], weights: Mapping[str, Any] | None = None,
                   metrics: Mapping[str, Any] | None = None, data_fingerprint: str | None = None,
                   files: Mapping[str, bytes | str] | None = None, json_files: Mapping[str, Any] | None = None) -> Path:
    """Write a model directory atomically. `weights` maps names to torch tensors."""
    if "vertical" not in config or "kind" not in config:
        raise ValueError("config needs 'vertical' and 'kind' keys")
    target = _safe_model_target(Path(path))
    with atomic_dir(target) as tmp:
        atomic_write_json(tmp / "config.json", dict(config))
        atomic_write_json(tmp / "metrics.json", dict(metrics or {}))
        meta = {
            "format_version": FORMAT_VERSION,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "data_fingerprint": data_fingerprint,
            "library_versions": library_versions(),
        }
        if weights:
            from safetensors.torch import save_file

            tensors = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
            save_file(tensors, str(tmp / WEIGHTS_FILE))
        for name, content in (files or {}).items():
            data = content.encode() if isinstance(content, str) else content
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        for name, obj in (json_files or {}).items():
            atomic_write_json(tmp / name, obj)
        atomic_write_json(tmp / "meta.json", meta)
    return target


def load_model_dir(path: str | Path, *, vertical: str | None = None, kind: str | None = None) -> ModelDir:
    """Open a model directory, checking it belongs to the expected vertical/kind."""
    p = Path(path)
    if not p.is_dir():
        raise VaiError(f"{p}: not a model directory (expected a folder with config.json)")
    if not (p / "config.json").exists():
        raise VaiError(f"{p}: config.json is missing; this is not a vai model directory")
    config = read_json(p / "config.json")
    meta = read_json(p / "meta.json") if (p / "meta.json").exists() else {}
    if meta.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise VaiError(f"{p}: model format {meta['format_version']} is newer than this vai understands; upgrade vai")
    if vertical and config.get("vertical") != vertical:
        raise VaiError(f"{p}: this model belongs to vertical {config.get('vertical')!r}, not {vertical!r}")
    if kind and config.get("kind") != kind:
        raise VaiError(f"{p}: this is a {config.get('kind')!r} model, expected {kind!r}")
    metrics = read_json(p / "metrics.json") if (p / "metrics.json").exists() else {}
    return ModelDir(path=p, config=config, metrics=metrics, meta=meta)
