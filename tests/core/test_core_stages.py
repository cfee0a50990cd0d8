import os
import sys

import numpy as np
import pytest

from vai.core.errors import VaiError
from vai.core.stages import run_model_stage


def make_scaler():
    # Stands in for loading a model: runs once per worker; returns a batch function.
    factor = np.float32(2.0)
    return lambda batch: [np.asarray(x, dtype=np.float32) * factor for x in batch]


def test_local_stage_keeps_order_and_batches():
    calls = []

    def make():
        calls.append("loaded")
        return lambda batch: [len(batch)] * len(batch)

    out = run_model_stage(make, range(10), batch_size=4)
    assert calls == ["loaded"]  # the model is built once
    assert out == [4, 4, 4, 4, 4, 4, 4, 4, 2, 2]


def test_stage_rejects_a_model_that_drops_outputs():
    with pytest.raises(RuntimeError, match="returned 1 outputs for a batch of 3"):
        run_model_stage(lambda: (lambda b: b[:1]), [1, 2, 3], batch_size=3)
    with pytest.raises(VaiError, match="unknown engine"):
        run_model_stage(make_scaler, [1], engine="spark")


@pytest.mark.slow
def test_ray_data_stage_matches_local():
    ray = pytest.importorskip("ray")
    items = [np.arange(3) + i for i in range(25)]
    expected = run_model_stage(make_scaler, items, batch_size=7)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
    try:
        out = run_model_stage(make_scaler, items, batch_size=7, engine="ray", concurrency=1)
    finally:
        ray.shutdown()
    assert len(out) == 25
    for a, b in zip(out, expected):
        np.testing.assert_allclose(a, b)
