import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobs_fixtures import add_offset, crash_on, not_json, remember_offset, square
from vai.core.errors import VaiError
from vai.core.jobs import fork_is_safe, map_in_processes, run_job
from vai.core.store import Store


def calls(log_dir: Path, item: str) -> int:
    return len(list(log_dir.glob(f"called-{item}-*")))


@pytest.mark.parametrize("workers", [1, 2])
def test_local_job_maps_items_and_captures_a_bad_one(tmp_path, workers):
    res = run_job(square, ["1", "2", "bad", "3"], out_dir=tmp_path / "out", workers=workers)
    assert sorted(res.done) == ["1", "2", "3"]
    assert res.results["3"] == {"value": 9}
    assert list(res.failed) == ["bad"] and "corrupt item" in res.failed["bad"]
    errors = (tmp_path / "out" / "job_errors.csv").read_text()
    assert "bad" in errors and "corrupt item" in errors
    summary = json.loads((tmp_path / "out" / "job.json").read_text())
    assert summary["failed"] == 1 and summary["done"] == 3


def test_resume_skips_done_items_and_retries_failed_ones(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    out = tmp_path / "out"
    run_job(square, ["1", "2", "bad"], out_dir=out, fn_kwargs={"log_dir": str(log)})
    res = run_job(square, ["1", "2", "bad", "4"], out_dir=out, fn_kwargs={"log_dir": str(log)})
    assert sorted(res.resumed) == ["1", "2"]
    assert res.done == ["4"]
    assert calls(log, "1") == 1 and calls(log, "2") == 1  # not recomputed
    assert calls(log, "bad") == 2  # failed items are retried
    assert res.results["1"] == {"value": 1}  # results of earlier runs are returned too


def test_resume_after_the_driver_is_killed_mid_job(tmp_path):
    """A job killed hard (no cleanup) resumes where it stopped: done items are not redone."""
    log = tmp_path / "log"
    log.mkdir()
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from vai.core.jobs import run_job
        import jobs_fixtures

        run_job(jobs_fixtures.square_or_die, ["1", "2", "3", "4"], out_dir={str(out)!r},
                fn_kwargs={{"log_dir": {str(log)!r}}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "VAI_TEST_DIE_ON": "3"})  # the driver dies mid-job
    assert proc.returncode == 9
    assert not (out / "job.json").exists()  # never finished
    from jobs_fixtures import square_or_die

    res = run_job(square_or_die, ["1", "2", "3", "4"], out_dir=out, fn_kwargs={"log_dir": str(log)})
    assert sorted(res.resumed) == ["1", "2"] and sorted(res.done) == ["3", "4"]
    assert calls(log, "1") == 1 and calls(log, "2") == 1


def test_ctrl_c_in_the_driver_stops_the_workers_items_at_once(tmp_path):
    """A local-engine job of long items (a sweep of 30 s solves) stopped with Ctrl-C: the driver neither waits for
    the items in flight nor starts the queued ones; no worker process is left behind."""
    import signal
    import time

    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from vai.core.jobs import run_job
        import jobs_fixtures

        print("started", flush=True)
        try:
            run_job(jobs_fixtures.slow_item, ["1", "2", "3", "4", "5", "6"], out_dir={str(tmp_path / "out")!r},
                    workers=2, fn_kwargs={{"seconds": 30.0}})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: the pgrep below sees only its workers
    assert proc.stdout.readline().strip() == "started"
    time.sleep(4)  # the workers have started their first items
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)  # to the driver only, as a scheduler's stop reaches the main process
    out, err = proc.communicate(timeout=60)
    assert "interrupted" in out, err[-2000:]
    assert time.monotonic() - t0 < 15  # not the 30 s of the items in flight, nor 60 s more for the queued ones
    for _ in range(30):  # the pool's helper processes go with the driver
        left = subprocess.run(["ps", "-o", "pid=,cmd=", "-g", str(proc.pid)], capture_output=True, text=True).stdout
        if not left.strip():
            break
        time.sleep(0.1)
    assert not left.strip(), left


def test_a_worker_process_that_dies_is_reported_and_the_rest_finish(tmp_path):
    res = run_job(crash_on, [str(i) for i in range(6)], out_dir=tmp_path / "out", workers=2,
                  fn_kwargs={"crash_item": "2"})
    assert list(res.failed) == ["2"] and "died" in res.failed["2"]  # only the culprit is blamed
    assert sorted(res.done) == ["0", "1", "3", "4", "5"]


def test_damaged_done_marker_means_the_item_is_redone(tmp_path):
    out = tmp_path / "out"
    run_job(square, ["1", "2"], out_dir=out)
    marker = out / ".vai_job" / "square" / "done" / "1.json"
    marker.write_text('{"key": "1", "res')  # an interrupted (non-atomic) write
    res = run_job(square, ["1", "2"], out_dir=out)
    assert res.done == ["1"] and res.resumed == ["2"]


def test_result_that_is_not_json_is_a_failure_not_a_crash(tmp_path):
    res = run_job(not_json, ["a"], out_dir=tmp_path / "out")
    assert "JSON" in res.failed["a"]


def test_duplicate_keys_and_unknown_engine_are_clear_errors(tmp_path):
    with pytest.raises(VaiError, match="share the key"):
        run_job(square, ["1", "1"], out_dir=tmp_path / "o")
    with pytest.raises(VaiError, match="engine"):
        run_job(square, ["1"], out_dir=tmp_path / "o", engine="spark")


def test_job_records_summary_in_store_run(tmp_path):
    store = Store()
    with store.run("core", "test-job", {"n": 3}) as run:
        run_job(square, ["1", "bad"], out_dir=tmp_path / "out", store_run=run)
    rec = store.get(run.run_id)
    assert rec["status"] == "partial"
    assert rec["summary"]["job"]["failed"] == 1


def test_ray_engine_runs_the_same_job_on_a_local_ray(tmp_path):
    ray = pytest.importorskip("ray")
    try:
        # Ray workers do not inherit the driver's sys.path: ship it so they can import the test's functions.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
        res = run_job(square, ["1", "bad", "3"], out_dir=tmp_path / "out", engine="ray")
        assert sorted(res.done) == ["1", "3"] and res.results["3"] == {"value": 9}
        assert "corrupt item" in res.failed["bad"]
        again = run_job(square, ["1", "bad", "3", "5"], out_dir=tmp_path / "out", engine="ray")
        assert sorted(again.resumed) == ["1", "3"] and again.done == ["5"]
    finally:
        ray.shutdown()


def test_pool_started_from_a_page_script_does_not_re_run_the_page(tmp_path, monkeypatch):
    """A Streamlit page runs as `__main__` inside the server (or an AppTest): spawned workers must not
    re-execute it. This page script raises if imported, so a worker that re-ran it would die."""
    import types

    page = tmp_path / "page.py"
    page.write_text("raise SystemExit('the page was re-executed in a worker')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    res = run_job(square, ["1", "2", "3"], out_dir=tmp_path / "out", workers=2)
    assert sorted(res.done) == ["1", "2", "3"] and not res.failed
    assert sys.modules["__main__"] is fake_main  # restored afterwards


@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_map_in_processes_keeps_order_runs_initializer_and_uses_workers(start):
    if start == "fork" and not fork_is_safe():
        pytest.skip("fork is only used on Linux")
    chunks = [[i, 10 * i] for i in range(7)]
    out = map_in_processes(add_offset, chunks, workers=2, initializer=remember_offset, initargs=(100,),
                           start=start, sizes=[2] * 7)
    assert [r[0] for r in out] == [[100 + i, 100 + 10 * i] for i in range(7)]
    assert os.getpid() not in {r[1] for r in out}


def test_map_in_processes_reraises_a_worker_error_and_reports_a_dead_worker():
    with pytest.raises(ValueError, match="bad chunk"):
        map_in_processes(add_offset, [[1], "boom"], workers=2, initializer=remember_offset, initargs=(0,))
    with pytest.raises(VaiError, match="worker process died"):
        map_in_processes(add_offset, [[1], "die"], workers=2, initializer=remember_offset, initargs=(0,))


def test_resume_redoes_items_made_with_other_settings_or_whose_output_is_gone(tmp_path):
    from jobs_fixtures import write_square

    out = tmp_path / "out"
    exists = lambda r: Path(r["path"]).exists()  # noqa: E731
    run_job(write_square, ["1", "2", "3"], out_dir=out, fn_kwargs={"out_dir": str(out)}, complete=exists)
    res = run_job(write_square, ["1", "2", "3"], out_dir=out, fn_kwargs={"out_dir": str(out)}, complete=exists)
    assert sorted(res.resumed) == ["1", "2", "3"] and not res.done
    (out / "2.txt").unlink()  # a user deleted one result
    res = run_job(write_square, ["1", "2", "3"], out_dir=out, fn_kwargs={"out_dir": str(out)}, complete=exists)
    assert res.done == ["2"] and (out / "2.txt").read_text() == "4"
    # another option: every item is redone, not reported as done with the old results
    res = run_job(write_square, ["1", "2", "3"], out_dir=out, fn_kwargs={"out_dir": str(out), "scale": 10},
                  complete=exists)
    assert sorted(res.done) == ["1", "2", "3"] and (out / "3.txt").read_text() == "90"
    # settings that only change speed can be left out of what resume compares
    res = run_job(write_square, ["1"], out_dir=out, fn_kwargs={"out_dir": str(out), "scale": 10},
                  settings={"out_dir": str(out), "scale": 10, "batch": None}, complete=exists)
    assert res.done == ["1"]  # the recorded settings were the full kwargs
    res = run_job(write_square, ["1"], out_dir=out, fn_kwargs={"out_dir": str(out), "scale": 10},
                  settings={"out_dir": str(out), "scale": 10, "batch": 7}, complete=exists)
    assert res.done == ["1"]
    res = run_job(write_square, ["1"], out_dir=out, fn_kwargs={"out_dir": str(out), "scale": 10},
                  settings={"out_dir": str(out), "scale": 10, "batch": 7}, complete=exists)
    assert res.resumed == ["1"]


def test_two_job_functions_in_one_folder_keep_separate_resume_markers(tmp_path):
    from jobs_fixtures import write_square

    out = tmp_path / "out"
    run_job(square, ["1", "2"], out_dir=out)
    res = run_job(write_square, ["1", "2"], out_dir=out, fn_kwargs={"out_dir": str(out)})
    assert sorted(res.done) == ["1", "2"]  # not skipped because `square` finished them
    assert sorted(run_job(square, ["1", "2"], out_dir=out).resumed) == ["1", "2"]
