"""`vai demo` for scheduling: runs end to end on embedded data, every schedule passes the checker."""
from vai.core.store import Store
from vai.verticals.scheduling.demo import run_demo


def test_demo_runs_and_records(tmp_path):
    summary = run_demo(tmp_path)
    assert summary["lee1996-example1"]["check_ok"] is True
    assert summary["generated-synthetic"]["check_ok"] is True
    assert summary["repair late:V2:2"]["check_ok"] is True
    assert all(r["check_ok"] for r in summary["sweep (synthetic, delay V1 by 0/1/2)"] if r["status"] != "INFEASIBLE")
    assert (tmp_path / "lee1996-example1.gantt.png").stat().st_size > 5000
    runs = Store().runs(vertical="scheduling")
    assert {"solve", "repair", "sweep"} <= set(runs["command"])
