"""One place for paths and seeds.

Precedence: explicit overrides (CLI flags, `configure()`) > environment variables > defaults.

| setting   | env var        | default                                                    |
|-----------|----------------|------------------------------------------------------------|
| home      | VAI_HOME       | ~/.vai                                                     |
| models    | VAI_MODELS_DIR | <home>/models                                              |
| cache     | VAI_CACHE_DIR  | <home>/cache                                               |
| store     | VAI_STORE_URL  | sqlite:///<home>/store.sqlite                              |
| data dir  | VAI_DATA_DIR   | ../shared/data beside the checkout (or the cwd), if present |
| seed      | VAI_SEED       | 0                                                          |
"""
from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import numpy as np

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path | None:
    for base in (_REPO_ROOT, Path.cwd()):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    models_dir: Path
    cache_dir: Path
    store_url: str
    data_dir: Path | None
    seed: int

    @property
    def runs_dir(self) -> Path:
        """Where batch jobs write outputs by default."""
        return self.home / "runs"

    def ensure_dirs(self) -> None:
        for d in (self.home, self.models_dir, self.cache_dir, self.runs_dir):
            d.mkdir(parents=True, exist_ok=True)

    def require_data_dir(self, sub: str | None = None) -> Path:
        """The data dir (or a sub-folder of it), or a clear error saying how to point to one."""
        from vai.core.errors import VaiError

        if self.data_dir is None:
            raise VaiError("no data dir: set VAI_DATA_DIR or pass --data-dir (default ../shared/data was not found)")
        path = self.data_dir / sub if sub else self.data_dir
        if not path.exists():
            raise VaiError(f"data folder {path} does not exist: check VAI_DATA_DIR / --data-dir")
        return path


_overrides: dict[str, object] = {}


def _from_env() -> Settings:
    home = Path(_overrides.get("home") or os.environ.get("VAI_HOME") or Path.home() / ".vai").expanduser()
    models = Path(_overrides.get("models_dir") or os.environ.get("VAI_MODELS_DIR") or home / "models")
    cache = Path(_overrides.get("cache_dir") or os.environ.get("VAI_CACHE_DIR") or home / "cache")
    store = str(_overrides.get("store_url") or os.environ.get("VAI_STORE_URL") or f"sqlite:///{home / 'store.sqlite'}")
    data = _overrides.get("data_dir") or os.environ.get("VAI_DATA_DIR")
    data_dir = Path(data).expanduser().resolve() if data else _default_data_dir()
    seed = int(_overrides.get("seed") if _overrides.get("seed") is not None else os.environ.get("VAI_SEED", 0))
    return Settings(home=home, models_dir=models, cache_dir=cache, store_url=store, data_dir=data_dir, seed=seed)


def get_settings() -> Settings:
    """The current settings (read fresh each call, so tests and CLI flags can change them)."""
    return _from_env()


def configure(**overrides: object) -> Settings:
    """Override settings for this process (CLI flags use this). `None` values are ignored."""
    for key, value in overrides.items():
        if key not in {f.name for f in dataclasses.fields(Settings)}:
            raise KeyError(f"unknown setting {key!r}")
        if value is not None:
            _overrides[key] = value
    return get_settings()


def reset() -> None:
    """Drop overrides made with `configure` (tests)."""
    _overrides.clear()


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and torch (and Lightning's workers) for reproducible runs."""
    seed = get_settings().seed if seed is None else int(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import lightning as L

        L.seed_everything(seed, workers=True, verbose=False)
    except ImportError:  # pragma: no cover - lightning is a core dependency
        import torch

        torch.manual_seed(seed)
    return seed
