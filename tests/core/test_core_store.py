import threading

import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.core.store import Store


def test_run_lifecycle_and_tables(tmp_path):
    store = Store()
    with store.run("discovery", "train", {"seed": 1, "path": tmp_path}) as run:
        run.write_table("preds", pd.DataFrame({"a": [1, 2]}))
        run.summary["rmse"] = 0.5
    rec = store.get(run.run_id)
    assert rec["status"] == "succeeded" and rec["summary"]["rmse"] == 0.5
    assert rec["params"]["seed"] == 1 and rec["duration_s"] >= 0
    assert store.read_table(run.run_id, "preds")["a"].tolist() == [1, 2]
    with pytest.raises(VaiError, match="no output"):
        store.read_table(run.run_id, "nope")


def test_failed_run_is_recorded_with_its_error():
    store = Store()
    with pytest.raises(VaiError):
        with store.run("path", "tile", {}) as run:
            raise VaiError("slide x.svs is truncated")
    rec = store.get(run.run_id)
    assert rec["status"] == "failed" and "truncated" in rec["error"]


def test_runs_listing_filters_and_orders():
    store = Store()
    for v in ("a", "b", "a"):
        with store.run(v, "cmd", {}):
            pass
    runs = store.runs()
    assert len(runs) == 3 and runs["started_at"].is_monotonic_decreasing
    assert set(store.runs(vertical="a")["vertical"]) == {"a"}
    assert len(store.runs(limit=1)) == 1


def test_store_survives_concurrent_writers():
    store = Store()

    def work():
        s = Store(store.url)
        for _ in range(10):
            with s.run("core", "c", {}):
                pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.runs(limit=100)) == 40


def test_corrupt_store_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(VaiError, match="unreadable|cannot open"):
        Store(f"sqlite:///{path}")


def test_unsupported_url_scheme():
    with pytest.raises(VaiError, match="not supported"):
        Store("postgresql://db/vai")
