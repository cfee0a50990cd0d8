"""`vai demo` for scheduling: solve the embedded Lee et al. (1996)-style example and a small generated
(synthetic) instance, check both independently, draw the Gantt charts, repair after a late vessel and run a
small what-if sweep. Every step records a run in the store. About 30 s on 2 cores."""
from __future__ import annotations

from pathlib import Path

from vai.core.io import atomic_write_json
from vai.core.store import Store

VERTICAL = "scheduling"


def run_demo(out_dir: Path) -> dict:
    from .checker import check_schedule
    from .examples import load_example
    from .generator import generate_instance
    from .instance import Instance, save_instance
    from .plots import inventory_figure, save_gantt_png, save_png
    from .replan import apply_event, parse_event, repair
    from .solver import solve
    from .sweep import delay_variants, run_sweep

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = Store()
    summary: dict = {}
    lee = load_example("lee1996-example1")
    gen = Instance.from_dict(generate_instance(periods=8, vessels=2, storage_tanks=3, charging_tanks=2, cdus=1,
                                               properties=1, seed=0), source="generated")
    for label, inst, tl in (("lee1996-example1", lee, 12.0), ("generated-synthetic", gen, 6.0)):
        save_instance(inst, out / f"{label}.instance.json")
        with store.run(VERTICAL, "solve", {"instance": label, "time_limit": tl, "demo": True}) as run:
            sched = solve(inst, time_limit=tl, workers=2, seed=0)
            atomic_write_json(out / f"{label}.schedule.json", sched)
            run.add_output("schedule", out / f"{label}.schedule.json")
            check = check_schedule(inst.to_dict(), sched) if sched["status"] in ("OPTIMAL", "FEASIBLE") else None
            if check is not None:
                run.add_output("gantt", save_gantt_png(inst, sched, out / f"{label}.gantt.png"))
                run.add_output("plots", save_png(inventory_figure(inst, sched), out / f"{label}.inventory.png"))
            run.summary.update({"status": sched["status"], "objective": sched["objective"], "gap": sched["gap"],
                                "check_ok": None if check is None else check.ok})
        summary[label] = {"status": sched["status"], "objective": sched["objective"], "bound": sched["bound"],
                          "gap": sched["gap"], "check_ok": None if check is None else check.ok}
        if label == "lee1996-example1":
            lee_sched = sched
    if lee_sched["status"] in ("OPTIMAL", "FEASIBLE"):
        with store.run(VERTICAL, "repair", {"instance": "lee1996-example1", "event": "late:V2:2", "demo": True}) as run:
            fixed = repair(lee, lee_sched, "late:V2:2", time_limit=8.0, workers=2)
            atomic_write_json(out / "lee1996-example1.repaired.json", fixed)
            run.add_output("schedule", out / "lee1996-example1.repaired.json")
            ok = None
            if fixed["status"] in ("OPTIMAL", "FEASIBLE"):
                ok = check_schedule(apply_event(lee, parse_event("late:V2:2")).to_dict(), fixed).ok
            run.summary.update({"status": fixed["status"], "n_moved": fixed.get("repair", {}).get("n_moved"),
                                "check_ok": ok})
        summary["repair late:V2:2"] = {"status": fixed["status"], "objective": fixed["objective"],
                                       "n_moved": fixed.get("repair", {}).get("n_moved"), "check_ok": ok}
    items = delay_variants(gen.to_dict(), gen.vessels[0].id, [0, 1, 2])
    with store.run(VERTICAL, "sweep", {"instance": "generated-synthetic", "delay": [0, 1, 2], "demo": True}) as run:
        _, frame = run_sweep(items, out / "sweep", engine="local", workers=1, time_limit=3.0, store_run=run)
        run.write_table("results", frame)
    summary["sweep (synthetic, delay V1 by 0/1/2)"] = frame[["delay", "status", "objective", "check_ok"]].to_dict("records")
    return summary
