"""Scenario sweeps: many instances or what-if variants solved as one batch job through `vai.core.jobs.run_job`
(engine local or ray; per-item errors recorded; a re-run resumes)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from vai.core.errors import VaiError


def delay_variants(data: dict[str, Any], vessel: str, delays: list[int], source: str = "instance") -> list[dict[str, Any]]:
    """What-if items: the instance with `vessel` late by each of `delays` periods (0 = as planned). A malformed
    instance is a VaiError with every field path (`source` names it), not a crash or one failure per variant."""
    from .instance import Instance

    Instance.from_dict(data, source=source)
    ids = [v["id"] for v in data.get("vessels", [])]
    if vessel not in ids:
        raise VaiError(f"--delay: no vessel {vessel!r} (vessels: {', '.join(ids)})")
    items = []
    for n in delays:
        d = copy.deepcopy(data)
        for v in d["vessels"]:
            if v["id"] == vessel:
                v["arrival"] = int(v["arrival"]) + int(n)
                if v.get("depart_by") is not None:
                    v["depart_by"] = int(v["depart_by"]) + int(n)
        d["name"] = f"{data.get('name', 'instance')}+{vessel}late{n}"
        items.append({"key": d["name"], "instance": d, "variant": {"vessel": vessel, "delay": int(n)}})
    return items


def solve_item(item: dict[str, Any], out_dir: str, time_limit: float = 10.0, workers: int = 1, seed: int = 0) -> dict:
    """One sweep item (top-level, picklable): solve, check independently, write the schedule atomically."""
    from vai.core.io import atomic_write_json

    from .checker import check_schedule
    from .instance import Instance
    from .solver import solve

    data = item["instance"]
    if not isinstance(data, dict):
        from .instance import read_document

        data = read_document(data)
    inst = Instance.from_dict(data, source=item["key"])
    sched = solve(inst, time_limit=time_limit, workers=workers, seed=seed)
    path = Path(out_dir) / "schedules" / f"{item['key']}.json"
    atomic_write_json(path, sched)
    ok = None
    if sched["status"] in ("OPTIMAL", "FEASIBLE"):
        ok = check_schedule(data, sched).ok
    return {"name": item["key"], **item.get("variant", {}), "status": sched["status"], "objective": sched["objective"],
            "bound": sched["bound"], "gap": sched["gap"], "wall_seconds": sched["wall_seconds"], "check_ok": ok,
            "periods": inst.periods, "vessels": len(inst.vessels), "schedule": str(path),
            "diagnosis": "; ".join(sched.get("diagnosis", []))[:300], "instance_hash": instance_hash(data)}


def instance_hash(data: dict[str, Any]) -> str:
    """What a sweep result was solved from: a re-run redoes an item whose instance changed since."""
    from vai.core.jobs import settings_hash

    return settings_hash(data)


def run_sweep(items: list[dict[str, Any]], out_dir: str | Path, engine: str = "local", workers: int = 1,
              time_limit: float = 10.0, solver_workers: int = 1, seed: int = 0, store_run=None):
    """Solve every item; returns (JobResult, DataFrame of per-item results)."""
    import pandas as pd

    from vai.core.jobs import run_job

    out_dir = Path(out_dir)
    current = {it["key"]: instance_hash(it["instance"]) for it in items if isinstance(it["instance"], dict)}
    result = run_job(solve_item, items, out_dir=out_dir, key=lambda it: it["key"], engine=engine, workers=workers,
                     fn_kwargs={"out_dir": str(out_dir), "time_limit": time_limit, "workers": solver_workers,
                                "seed": seed}, desc="scenarios", store_run=store_run,
                     complete=lambda r: (r.get("instance_hash") == current.get(r["name"], r.get("instance_hash"))
                                         and Path(r["schedule"]).exists()))
    frame = pd.DataFrame([result.results[k] for k in (it["key"] for it in items) if k in result.results])
    return result, frame


def items_from_paths(paths: list[str]) -> list[dict[str, Any]]:
    from .instance import read_document

    items = []
    for p in paths:
        data = read_document(p)
        items.append({"key": Path(p).stem, "instance": data})
    return items


def load_json(path: str | Path, require_object: bool = False) -> dict:
    """A schedule JSON file. Unreadable, empty, binary or malformed files are a VaiError naming the file (and the
    line and column); `require_object`: a top level that is not an object is one too (the checker reports it as a
    format finding instead, so `check` leaves it False)."""
    from .instance import read_text

    text = read_text(path, "a schedule is the JSON file `vai schedule solve --out` wrote")
    if not text.strip():
        raise VaiError(f"{path}: the file is empty; pass the schedule JSON `vai schedule solve --out` wrote")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VaiError(f"{path}: not a schedule JSON file (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                       "pass the file `vai schedule solve --out` wrote") from None
    if require_object and not isinstance(data, dict):
        raise VaiError(f"{path}: the top level must be a JSON object (a schedule), got {type(data).__name__}")
    return data
