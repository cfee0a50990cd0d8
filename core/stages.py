"""Model stages: run a model over many inputs in batches, holding the model once per worker.

`run_job` (core.jobs) is right for per-item work (a slide, an instance); a stage that holds a model on a GPU
wants the model loaded once and fed batches. `run_model_stage` does that in-process (`engine="local"`) or
with Ray Data actors (`engine="ray"`: `concurrency` actors, each with `num_gpus` GPUs), returning outputs in
input order either way.

    def make_embedder():                    # runs once per worker
        model = load_model(...)
        return lambda batch: model(batch)   # list of inputs -> list of outputs (same length)

    outputs = run_model_stage(make_embedder, paths, batch_size=64, engine="ray", num_gpus=1, concurrency=4)
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from vai.core.errors import MissingDependencyError, VaiError
from vai.core.progress import Progress

BatchFn = Callable[[list], list]


def run_model_stage(make_model: Callable[[], BatchFn], items: Sequence[Any], *, batch_size: int = 64,
                    engine: str = "local", concurrency: int = 1, num_gpus: float = 0,
                    address: str | None = None, desc: str = "stage") -> list:
    items = list(items)
    if batch_size < 1:
        raise VaiError(f"batch_size must be >= 1, got {batch_size}")
    if engine == "local":
        fn = make_model()
        out: list = []
        with Progress(len(items), desc) as bar:
            for i in range(0, len(items), batch_size):
                batch = items[i:i + batch_size]
                res = list(fn(batch))
                _check_len(res, batch)
                out.extend(res)
                bar.update(len(batch))
        return out
    if engine == "ray":
        return _run_ray_data(make_model, items, batch_size, concurrency, num_gpus, address)
    raise VaiError(f"unknown engine {engine!r}: use 'local' or 'ray'")


def _check_len(res: list, batch: list) -> None:
    if len(res) != len(batch):
        raise RuntimeError(f"the model returned {len(res)} outputs for a batch of {len(batch)}")


class _StageActor:
    def __init__(self, make_model: Callable[[], BatchFn]):
        self.fn = make_model()

    def __call__(self, batch: dict) -> dict:
        inputs = list(batch["item"])
        res = list(self.fn(inputs))
        _check_len(res, inputs)
        return {"index": batch["index"], "output": _as_column(res)}


def _as_column(res: list):
    import numpy as np

    col = np.empty(len(res), dtype=object)
    col[:] = res  # keeps arrays and dicts as objects, one per row
    return col


def _run_ray_data(make_model, items, batch_size, concurrency, num_gpus, address):
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("the ray engine needs Ray: pip install 'vai-platform[distributed]'") from None
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["include_dashboard"] = False
        ray.init(**kwargs)
    if not items:
        return []
    ds = ray.data.from_items([{"index": i, "item": it} for i, it in enumerate(items)])
    ds = ds.map_batches(_StageActor, fn_constructor_args=(make_model,), batch_size=batch_size,
                        concurrency=concurrency, num_gpus=num_gpus, batch_format="numpy")
    rows = ds.take_all()
    rows.sort(key=lambda r: int(r["index"]))
    return [r["output"] for r in rows]
