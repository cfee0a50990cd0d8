"""Scheduling: load or edit a feed-scheduling instance, solve it with CP-SAT (exact mixing), see the Gantt
chart, inventories and properties, check it independently and try a what-if (a late vessel)."""
import copy
import json

import pandas as pd
import streamlit as st

from vai.core.extras import page_requires
from vai.core.store import Store
from vai.core.tables import download_buttons
from vai.verticals import scheduling as sch

st.set_page_config(page_title="Scheduling", layout="wide")
page_requires(st, "scheduling", "The scheduling page")  # an install without the [scheduling] extra: one line, not a traceback
st.title("Feed scheduling (OR-Tools CP-SAT)")
st.caption("Vessels -> storage tanks -> charging tanks -> CDUs, exact mixing; format: feed-schedule/1.")

# -- instance source ---------------------------------------------------------------------------------
src = st.radio("Instance", ["Embedded example", "Generated (synthetic)", "Upload JSON/YAML"], horizontal=True,
               key="source")
data = None
if src == "Embedded example":
    name = st.selectbox("Example", sch.example_names(), key="example")
    data = sch.load_example_dict(name)
elif src == "Generated (synthetic)":
    c1, c2, c3, c4 = st.columns(4)
    periods = c1.number_input("periods", 4, 40, 8, key="g_periods")
    vessels = c2.number_input("vessels", 1, 8, 2, key="g_vessels")
    cdus = c3.number_input("CDUs", 1, 4, 1, key="g_cdus")
    seed = c4.number_input("seed", 0, 10_000, 0, key="g_seed")
    data = sch.generate_instance(periods=int(periods), vessels=int(vessels), storage_tanks=max(3, 2 * int(vessels) - 1),
                                 charging_tanks=2 * int(cdus), cdus=int(cdus), properties=1, seed=int(seed))
else:
    up = st.file_uploader("instance file", type=["json", "yaml", "yml"], key="instance_upload")
    if up is not None:
        import tempfile
        from pathlib import Path

        from vai.core.errors import VaiError
        from vai.verticals.scheduling.instance import read_document

        path = Path(tempfile.mkdtemp(prefix="vai-instance-")) / Path(up.name).name
        path.write_bytes(up.getvalue())
        try:  # the CLI's reader: a broken file is one line naming where, not a traceback
            data = read_document(path)
        except VaiError as exc:
            st.error(str(exc).replace(str(path), up.name))
            st.stop()
if data is None:
    st.info("Upload an instance, or pick an example.")
    st.stop()
first_report = sch.validate_dict(data)  # before the edit tables, which read the instance's fields
if first_report.errors:
    for line in first_report.lines():
        (st.error if line.startswith(("error", "infeasible")) else st.warning)(line)
    st.stop()

# -- edit in tables ----------------------------------------------------------------------------------
data = copy.deepcopy(data)
st.subheader("Instance")
c1, c2 = st.columns(2)
with c1:
    st.write("Vessels (edit arrival / volume)")
    vdf = pd.DataFrame([{"id": v["id"], "crude": v["crude"], "arrival": v["arrival"], "volume": v["volume"],
                         "tanks": ", ".join(v["tanks"])} for v in data.get("vessels", [])])
    vdf = st.data_editor(vdf, disabled=["id", "crude", "tanks"], hide_index=True, key="vessels_editor")
    for v, (_, row) in zip(data.get("vessels", []), vdf.iterrows()):
        v["arrival"], v["volume"] = int(row["arrival"]), float(row["volume"])
with c2:
    st.write("Charging tanks (edit demand / capacity)")
    cdf = pd.DataFrame([{"id": c["id"], "demand": c.get("demand", 0), "max": c["max"],
                         "spec": json.dumps(c.get("spec", {})), "from": ", ".join(c.get("from", []))}
                        for c in data["charging_tanks"]])
    cdf = st.data_editor(cdf, disabled=["id", "spec", "from"], hide_index=True, key="ct_editor")
    for c, (_, row) in zip(data["charging_tanks"], cdf.iterrows()):
        c["demand"], c["max"] = float(row["demand"]), float(row["max"])
st.write("Storage tanks")
st.dataframe(pd.DataFrame([{"id": t["id"], "min": t.get("min", 0), "max": t["max"],
                            "initial": json.dumps(t.get("initial", {}))} for t in data.get("storage_tanks", [])]),
             hide_index=True)

report = sch.validate_dict(data)
for line in report.lines():
    (st.error if line.startswith(("error", "infeasible")) else st.warning)(line)
if report.errors:
    st.stop()
inst = sch.Instance.from_dict(data)

# -- solve -------------------------------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
time_limit = c1.number_input("time limit (s)", 1.0, 120.0, 10.0, key="time_limit")
workers = c2.number_input("CP-SAT workers", 1, 8, 2, key="workers")
seed = c3.number_input("seed", 0, 10_000, 0, key="solve_seed")
if st.button("Solve", key="solve"):
    with st.spinner("solving..."):
        with Store().run("scheduling", "solve", {"instance": inst.name, "source": "page", "time_limit": time_limit}) as run:
            sched = sch.solve(inst, time_limit=float(time_limit), workers=int(workers), seed=int(seed))
            run.summary.update({k: sched.get(k) for k in ("status", "objective", "bound", "gap")})
    st.session_state["schedule"] = sched
    st.session_state["schedule_data"] = data

sched = st.session_state.get("schedule")
if sched is not None and st.session_state.get("schedule_data") == data:
    st.subheader("Schedule")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("status", sched["status"])
    m2.metric("cost", "-" if sched["objective"] is None else f"{sched['objective']:.2f}")
    m3.metric("lower bound", "-" if sched["bound"] is None else f"{sched['bound']:.2f}")
    m4.metric("gap", "-" if sched["gap"] is None else f"{100 * sched['gap']:.1f}%")
    for line in sched.get("diagnosis", []):
        st.error(f"diagnosis: {line}")
    if sched["status"] in ("OPTIMAL", "FEASIBLE"):
        rep = sch.check_schedule(data, sched)
        if rep.ok:
            st.success(f"Independent check: every rule kept; recomputed cost {rep.objective:.2f}")
        else:
            st.error(f"Independent check: {len(rep.violations)} violation(s)")
            st.write([str(v) for v in rep.violations[:20]])
        st.json(sched["cost_breakdown"])
        st.plotly_chart(sch.gantt_plotly(inst, sched), use_container_width=True)
        st.plotly_chart(sch.inventory_plotly(inst, sched), use_container_width=True)
        st.download_button("Download schedule JSON", json.dumps(sched, indent=2), file_name=f"{inst.name}.schedule.json")
        with st.expander("Operations in time order (what each movement carries, from the exact simulation)"):
            ops = sch.operations_table(data, sched, report=rep)
            st.dataframe(ops, hide_index=True, use_container_width=True)
            download_buttons(st, ops, f"{inst.name}.operations", "download_operations")

        # -- what-if: a late vessel ------------------------------------------------------------------
        st.subheader("What-if: a vessel is late")
        c1, c2 = st.columns(2)
        vessel = c1.selectbox("vessel", [v.id for v in inst.vessels], key="whatif_vessel")
        delay = c2.number_input("late by (periods)", 1, max(1, inst.periods - 1), 1, key="whatif_delay")
        if st.button("Repair the schedule", key="whatif"):
            event = f"late:{vessel}:{int(delay)}"
            try:
                with Store().run("scheduling", "repair", {"instance": inst.name, "event": event, "source": "page"}) as run:
                    fixed = sch.repair(inst, sched, event, time_limit=float(time_limit), workers=int(workers))
                    run.summary.update({"status": fixed["status"], "objective": fixed.get("objective")})
            except Exception as exc:  # noqa: BLE001 - shown to the user, e.g. arrival after the horizon
                st.error(str(exc))
            else:
                st.session_state["whatif_result"] = (event, fixed)
        if "whatif_result" in st.session_state:
            event, fixed = st.session_state["whatif_result"]
            st.write(f"Event {event}: status {fixed['status']}")
            st.dataframe(pd.DataFrame([{"plan": "original", "cost": sched["objective"]},
                                       {"plan": f"repaired ({event})", "cost": fixed.get("objective")}]),
                         hide_index=True)
            if fixed.get("repair", {}).get("moved") is not None:
                st.write(f"{fixed['repair']['n_moved']} operation(s) moved")
                st.dataframe(pd.DataFrame(fixed["repair"]["moved"]), hide_index=True)
            for line in fixed.get("diagnosis", []):
                st.error(f"diagnosis: {line}")

# -- recent runs -------------------------------------------------------------------------------------
st.subheader("Recent scheduling runs")
runs = Store().runs(vertical="scheduling", limit=20)
if runs.empty:
    st.info("No scheduling runs yet: solve above, or run `vai schedule solve` / `vai demo`.")
else:
    runs = runs.assign(status_=runs["summary"].map(lambda s: s.get("status")),
                       objective=runs["summary"].map(lambda s: s.get("objective")))
    st.dataframe(runs[["run_id", "command", "status", "status_", "objective", "started_at", "duration_s"]],
                 hide_index=True)
