"""A schedule as one table of operations, the way a scheduler reads it in a spreadsheet: one row per
unload, transfer and CDU charge, in time order, with what each movement carries. Compositions come from the
independent checker's exact simulation, so the table shows what the crude really is, not what the solver
assumed."""
from __future__ import annotations

from typing import Any

from .checker import check_schedule

KIND_ORDER = {"unload": 0, "transfer": 1, "charge": 2}


def operations_table(instance: dict[str, Any], schedule: dict[str, Any], report=None):
    """Columns: period, start_hour, operation (unload / transfer / charge), source, destination, volume, then one
    column per property: the property of the material moved (the vessel's crude, or the sending tank's mix at
    the start of the period, which a proportional withdrawal carries unchanged), and `crudes`: its make-up as
    crude shares (e.g. "C1 60%, C2 40%"). A pandas DataFrame. `report`: the schedule's `check_schedule` report
    when the caller has one already (the simulation is not run twice)."""
    import pandas as pd

    if report is None:
        report = check_schedule(instance, schedule, check_reported=False)
    crudes = instance["crudes"]
    props = list(instance.get("properties", []))
    hours = float(instance.get("period_hours", 24))
    tanks = {t["id"]: t for t in instance.get("storage_tanks", []) + instance.get("charging_tanks", [])}
    vessels = {v["id"]: v for v in instance.get("vessels", [])}

    def mix_at_start(tank: str, period: int) -> dict[str, float]:
        if period == 0:
            return {c: float(x) for c, x in tanks[tank].get("initial", {}).items()}
        return report.inventory[tank][period - 1]

    rows = []
    for kind, key, src_key, dst_key in (("unload", "unloads", "vessel", "tank"), ("transfer", "transfers", "from", "to"),
                                        ("charge", "charges", "tank", "cdu")):
        for r in schedule.get(key, []):
            t = int(r["period"])
            mix = ({vessels[r["vessel"]]["crude"]: 1.0} if kind == "unload" else mix_at_start(r[src_key], t))
            total = sum(mix.values())
            row = {"period": t, "start_hour": t * hours, "operation": kind, "source": r[src_key],
                   "destination": r[dst_key], "volume": float(r["volume"])}
            for p in props:
                value = sum(x * float(crudes[c][p]) for c, x in mix.items()) / total if total > 1e-12 else None
                row[p] = None if value is None else float(f"{value:.10g}")  # 0.025, not 0.024999999999999998
            row["crudes"] = ", ".join(f"{c} {x / total:.0%}" for c, x in sorted(mix.items(), key=lambda kv: -kv[1])
                                      if x / total >= 0.005) if total > 1e-12 else ""
            rows.append(row)
    columns = ["period", "start_hour", "operation", "source", "destination", "volume", *props, "crudes"]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame = frame.sort_values(["period", "operation", "source", "destination"],
                                  key=lambda s: s.map(KIND_ORDER) if s.name == "operation" else s).reset_index(drop=True)
    return frame
