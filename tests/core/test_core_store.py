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


def test_a_run_whose_process_was_killed_reads_as_interrupted(tmp_path):
    import sqlite3
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    killed = ("import os, signal; from vai.core.store import Store; s = Store(%r); r = s.start('path', 'embed', {}); "
              "print(r.run_id, flush=True); os.kill(os.getpid(), signal.SIGKILL)" % url)
    res = subprocess.run([sys.executable, "-c", killed], capture_output=True, text=True, timeout=60)
    run_id = res.stdout.split()[0]
    store = Store(url)
    live = store.start("path", "tile", {})  # this process: alive, so still running
    rec = store.get(run_id)
    assert rec["status"] == "interrupted" and "ended without finishing" in rec["error"], rec
    listed = store.runs().set_index("run_id")
    assert listed.loc[run_id, "status"] == "interrupted" and listed.loc[live.run_id, "status"] == "running"
    assert len(store.runs(status="interrupted")) == 1
    store.finish(live, "succeeded")
    # a store written before pids were recorded gains the column and keeps its rows
    old = tmp_path / "old.sqlite"
    con = sqlite3.connect(old)
    con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, vertical TEXT NOT NULL, command TEXT NOT NULL, params TEXT "
                "NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, duration_s REAL, outputs "
                "TEXT NOT NULL DEFAULT '{}', summary TEXT NOT NULL DEFAULT '{}', error TEXT, host TEXT)")
    con.execute("INSERT INTO runs (run_id, vertical, command, params, status, started_at) VALUES "
                "('r1', 'path', 'tile', '{}', 'running', '2026-01-01T00:00:00+00:00')")
    con.commit()
    con.close()
    assert Store(f"sqlite:///{old}").get("r1")["status"] == "running"  # no pid: nothing to judge it by


def test_a_pid_given_to_a_later_process_does_not_keep_an_old_run_alive():
    import datetime as dt
    import os

    from vai.core.store import _process_alive

    now = dt.datetime.now(dt.timezone.utc).isoformat()
    assert _process_alive(os.getpid(), now)
    assert not _process_alive(os.getpid(), "2000-01-01T00:00:00+00:00")  # this process began long after that run
