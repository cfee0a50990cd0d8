"""`vai schedule ...`: validate, solve, check, gantt, repair, generate, sweep, example.

OR-Tools, Matplotlib and pandas are imported inside the handlers so that `vai --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vai.core.io import kind_output_arg, output_dir_arg, table_output_arg

from .plots import CHART_KIND, CHART_SUFFIXES  # plain constants: plots imports Matplotlib and Plotly lazily

VERTICAL = "scheduling"
chart_arg = kind_output_arg(CHART_SUFFIXES, CHART_KIND)
schedule_arg = kind_output_arg((".json",), "a schedule is written as JSON (the spec's schedule format)")
instance_arg = kind_output_arg((".json", ".yaml", ".yml"), "an instance is written as JSON or YAML")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedule", help="petrochemical feed scheduling (OR-Tools CP-SAT)",
                       description="Feed scheduling per ../shared/specs/feed-scheduling.md: exact-mixing CP-SAT "
                                   "schedules, an independent checker, re-planning and scenario sweeps.")
    s = p.add_subparsers(dest="schedule_command", metavar="VERB")

    v = s.add_parser("validate", help="check an instance (JSON or YAML) and report every problem with its field path")
    v.add_argument("instance")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=cmd_validate)

    def solver_flags(q, default_tl: float):
        q.add_argument("--time-limit", type=float, default=default_tl, help=f"seconds (default {default_tl:g})")
        q.add_argument("--workers", type=int, default=2, help="CP-SAT search workers (default 2)")
        q.add_argument("--seed", type=int, default=0, help="CP-SAT random seed (default 0)")

    so = s.add_parser("solve", help="solve an instance with CP-SAT (exact mixing) and write the schedule JSON")
    so.add_argument("instance")
    so.add_argument("--out", type=schedule_arg, required=True, help="schedule JSON to write")
    solver_flags(so, 30.0)
    so.add_argument("--resolution", type=float, default=None,
                    help="volume grid (default: coarsest of 10, 5, 1, 0.5, 0.1... dividing every volume, >=100 steps per tank)")
    so.add_argument("--gantt", type=chart_arg, help="also write the Gantt chart here (.png, or .html: interactive)")
    so.add_argument("--plots", type=chart_arg,
                    help="also write the inventory/property plot here (.png, or .html: interactive)")
    so.add_argument("--table", type=table_output_arg(),
                    help="also write every operation in time order, with what it carries (.csv, .xlsx, .tsv or .parquet)")
    so.set_defaults(func=cmd_solve)

    c = s.add_parser("check", help="independently check a schedule; exit 0 only if it keeps every rule")
    c.add_argument("instance")
    c.add_argument("schedule")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)

    g = s.add_parser("gantt", help="draw a schedule's Gantt chart (PNG, or an interactive .html page)")
    g.add_argument("instance")
    g.add_argument("schedule")
    g.add_argument("--out", type=chart_arg, required=True,
                   help="chart file: .png, or .html for an interactive page (zoom, hover)")
    g.add_argument("--inventory", type=chart_arg, help="also draw tank inventories and properties here (.png or .html)")
    g.set_defaults(func=cmd_gantt)

    r = s.add_parser("repair", help="re-plan after an event, keeping the past fixed and moving as little as needed")
    r.add_argument("instance")
    r.add_argument("schedule")
    r.add_argument("--event", required=True, help="late:V1:2 | tank-out:ST2:3[-5] | demand:CT1:120")
    r.add_argument("--at", type=int, default=None, help="first period that may change (default: when the event hits)")
    r.add_argument("--out", type=schedule_arg, required=True, help="repaired schedule JSON")
    r.add_argument("--instance-out", type=instance_arg, help="also write the instance after the event (.json or .yaml)")
    r.add_argument("--table", type=table_output_arg(),
                   help="also write the repaired plan's operations in time order (.csv, .xlsx, .tsv or .parquet)")
    solver_flags(r, 30.0)
    r.set_defaults(func=cmd_repair)

    ge = s.add_parser("generate", help="write a seeded synthetic instance")
    ge.add_argument("--periods", type=int, default=30)
    ge.add_argument("--vessels", type=int, default=5)
    ge.add_argument("--storage-tanks", type=int, default=8)
    ge.add_argument("--charging-tanks", type=int, default=6)
    ge.add_argument("--cdus", type=int, default=3)
    ge.add_argument("--properties", type=int, default=2)
    ge.add_argument("--seed", type=int, default=0)
    ge.add_argument("--tight-specs", type=float, default=0.0, metavar="SHARE",
                    help="share (0-1) of charging tanks whose first spec cuts 10%% into what reaches them, so they "
                         "must blend (the benchmarks use 0.34; default 0)")
    ge.add_argument("--name")
    ge.add_argument("--out", type=instance_arg, required=True, help="instance file (.json or .yaml)")
    ge.set_defaults(func=cmd_generate)

    sw = s.add_parser("sweep", help="solve many instances or what-if variants as one batch job")
    sw.add_argument("instances", nargs="+")
    sw.add_argument("--out", type=output_dir_arg, required=True, help="output folder (schedules/, results.csv, job state for resume)")
    sw.add_argument("--engine", choices=["local", "ray"], default="local")
    sw.add_argument("--address", help="Ray cluster address (engine ray)")
    sw.add_argument("--workers", type=int, default=1, help="scenarios solved in parallel (default 1)")
    sw.add_argument("--solver-workers", type=int, default=1, help="CP-SAT workers per scenario (default 1)")
    sw.add_argument("--time-limit", type=float, default=10.0, help="seconds per scenario")
    sw.add_argument("--seed", type=int, default=0)
    sw.add_argument("--delay", help="what-if: VESSEL:N,N,... solves the (single) instance with that vessel late by each N")
    sw.set_defaults(func=cmd_sweep)

    e = s.add_parser("example", help="write an embedded example instance (lee1996-example1, ...)")
    e.add_argument("name", nargs="?", help="example name; omit to list them")
    e.add_argument("--out", type=instance_arg, help="instance file (.json or .yaml)")
    e.set_defaults(func=cmd_example)
    p.set_defaults(func=lambda args: p.print_help() or 0)


# -- handlers ----------------------------------------------------------------------------------------
def cmd_validate(args) -> int:
    from .instance import validate_instance

    rep = validate_instance(args.instance)
    if args.json:
        print(json.dumps({"ok": rep.ok, "errors": [vars(i) for i in rep.errors],
                          "infeasible": [vars(i) for i in rep.infeasible],
                          "warnings": [vars(i) for i in rep.warnings]}, indent=2))
    else:
        for line in rep.lines():
            print(line)
        print(f"{args.instance}: " + ("valid" if rep.ok else
                                       f"{len(rep.errors)} error(s), {len(rep.infeasible)} infeasibility finding(s)"))
    return 0 if rep.ok else 1


def _print_schedule_summary(sched: dict) -> None:
    print(f"status {sched['status']}  objective {sched.get('objective')}  bound {sched.get('bound')}  "
          f"gap {sched.get('gap')}  wall {sched.get('wall_seconds')} s")
    if sched.get("cost_breakdown"):
        print("costs: " + ", ".join(f"{k} {v:g}" for k, v in sched["cost_breakdown"].items()))
    for line in sched.get("diagnosis", []):
        print(f"diagnosis: {line}")


def cmd_solve(args) -> int:
    from vai.core.io import atomic_write_json
    from vai.core.store import Store

    from .instance import load_instance
    from .plots import save_chart
    from .solver import solve

    inst = load_instance(args.instance)
    params = {"instance": str(args.instance), "time_limit": args.time_limit, "workers": args.workers, "seed": args.seed}
    with Store().run(VERTICAL, "solve", params) as run:
        sched = solve(inst, time_limit=args.time_limit, workers=args.workers, seed=args.seed,
                      resolution=args.resolution)
        atomic_write_json(args.out, sched)
        run.add_output("schedule", args.out)
        if sched["status"] in ("OPTIMAL", "FEASIBLE"):
            if args.gantt:
                run.add_output("gantt", save_chart("gantt", inst, sched, args.gantt))
            if args.plots:
                run.add_output("plots", save_chart("inventory", inst, sched, args.plots))
            if args.table:
                run.add_output("operations", _write_operations(inst, sched, args.table))
        run.summary.update({k: sched.get(k) for k in ("status", "objective", "bound", "gap", "wall_seconds",
                                                      "max_spec_violation")})
        if sched.get("diagnosis"):
            run.summary["diagnosis"] = sched["diagnosis"]
    _print_schedule_summary(sched)
    print(f"schedule written to {args.out}")
    return 0 if sched["status"] in ("OPTIMAL", "FEASIBLE") else 1


def _write_operations(inst, sched, path):
    from vai.core.io import atomic_write_table

    from .operations import operations_table

    return atomic_write_table(path, operations_table(inst.to_dict(), sched))


def cmd_check(args) -> int:
    from vai.core.store import Store

    from .checker import check_schedule
    from .instance import Instance, read_document
    from .sweep import load_json

    data = read_document(args.instance)
    inst = Instance.from_dict(data, source=args.instance)  # malformed instances fail here, with paths
    sched = _matching_schedule(load_json(args.schedule), inst.name, args.schedule, args.instance)
    with Store().run(VERTICAL, "check", {"instance": args.instance, "schedule": args.schedule}) as run:
        rep = check_schedule(data, sched)
        run.summary.update({"ok": rep.ok, "violations": len(rep.violations), "objective": rep.objective})
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        for v in rep.violations:
            print(v)
        if rep.objective is not None:
            print("recomputed costs: " + ", ".join(f"{k} {v:.6g}" for k, v in rep.costs.items())
                  + f"; total {rep.objective:.6g}; max spec violation {rep.max_spec_violation:.3g}")
        print("OK: the schedule keeps every rule" if rep.ok else f"FAIL: {len(rep.violations)} violation(s)")
    return 0 if rep.ok else 1


def _matching_schedule(sched, instance_name, schedule_path, instance_path):
    """A schedule names the instance it was made for; checking, drawing or repairing it against another
    instance would report nonsense (or fail on an unknown tank), so a mismatch stops here."""
    from vai.core.errors import VaiError

    made_for = sched.get("instance") if isinstance(sched, dict) else None
    if made_for and instance_name and made_for != instance_name:
        raise VaiError(f"{schedule_path}: this schedule was made for instance {made_for!r}, but {instance_path} is "
                       f"{instance_name!r}; pass the instance it was solved for")
    return sched


def cmd_gantt(args) -> int:
    from .instance import load_instance
    from .plots import save_chart
    from .sweep import load_json

    inst = load_instance(args.instance)
    sched = _matching_schedule(load_json(args.schedule, require_object=True), inst.name, args.schedule, args.instance)
    if sched.get("status") not in ("OPTIMAL", "FEASIBLE"):
        from vai.core.errors import VaiError

        raise VaiError(f"{args.schedule}: status {sched.get('status')!r} has no operations to draw")
    save_chart("gantt", inst, sched, args.out)
    print(f"Gantt chart written to {args.out}")
    if args.inventory:
        save_chart("inventory", inst, sched, args.inventory)
        print(f"inventory/property plot written to {args.inventory}")
    return 0


def cmd_repair(args) -> int:
    from vai.core.io import atomic_write_json
    from vai.core.store import Store

    from .instance import load_instance, save_instance
    from .replan import apply_event, parse_event, repair
    from .sweep import load_json

    inst = load_instance(args.instance)
    old = _matching_schedule(load_json(args.schedule, require_object=True), inst.name, args.schedule, args.instance)
    ev = parse_event(args.event)
    params = {"instance": args.instance, "schedule": args.schedule, "event": args.event, "at": args.at,
              "time_limit": args.time_limit}
    with Store().run(VERTICAL, "repair", params) as run:
        sched = repair(inst, old, ev, at=args.at, time_limit=args.time_limit, workers=args.workers, seed=args.seed)
        atomic_write_json(args.out, sched)
        run.add_output("schedule", args.out)
        if args.instance_out:
            save_instance(apply_event(inst, ev), args.instance_out)
            run.add_output("instance", args.instance_out)
        if args.table and sched["status"] in ("OPTIMAL", "FEASIBLE"):
            run.add_output("operations", _write_operations(apply_event(inst, ev), sched, args.table))
        info = sched.get("repair", {})
        run.summary.update({"status": sched["status"], "objective": sched.get("objective"),
                            "old_objective": old.get("objective"), "n_moved": info.get("n_moved")})
    _print_schedule_summary(sched)
    info = sched.get("repair", {})
    print(f"event: {info.get('event')}; periods before {info.get('at')} kept fixed; old cost {old.get('objective')}")
    if "moved" in info:
        print(f"{info['n_moved']} operation(s) moved" + (" (proven minimal)" if info.get("moves_minimal") else ""))
        for m in info["moved"][:40]:
            print(f"  {m['operation']}: {m['old']:g} -> {m['new']:g}")
    print(f"repaired schedule written to {args.out}")
    if sched["status"] in ("OPTIMAL", "FEASIBLE"):
        # the original instance no longer describes the plant (a vessel's arrival, a demand...): its sea-waiting or
        # other costs differ, so a check against it reports them
        target = args.instance_out or "INSTANCE_AFTER_EVENT (write it with --instance-out)"
        print(f"status {sched['status']} is for the repair: the past fixed, then fewest moves, then cost. Check it "
              f"against the instance after the event: vai schedule check {target} {args.out}")
    elif any(line.startswith("what already happened before period") for line in sched.get("diagnosis", [])):
        print(f"the fixed past is part of the conflict: if periods before {info.get('at')} have not happened yet, "
              "an earlier --at lets the repair change them too")
    return 0 if sched["status"] in ("OPTIMAL", "FEASIBLE") else 1


def cmd_generate(args) -> int:
    from .generator import generate_instance
    from .instance import save_instance

    try:
        data = generate_instance(args.periods, args.vessels, args.storage_tanks, args.charging_tanks, args.cdus,
                                 args.properties, seed=args.seed, name=args.name,
                                 tight_specs=args.tight_specs)
    except ValueError as exc:
        from vai.core.errors import VaiError

        raise VaiError(f"generate: {exc}") from None
    save_instance(data, args.out)
    print(f"instance {data['name']} ({args.periods} periods, {args.vessels} vessels) written to {args.out}")
    return 0


def cmd_sweep(args) -> int:
    from vai.core.errors import VaiError
    from vai.core.io import atomic_write_table
    from vai.core.store import Store

    from .instance import read_document
    from .sweep import delay_variants, items_from_paths, run_sweep

    if args.delay:
        if len(args.instances) != 1:
            raise VaiError("--delay makes variants of ONE instance; give a single INSTANCE")
        vessel, _, ns = args.delay.partition(":")
        try:
            delays = [int(x) for x in ns.split(",") if x.strip()]
        except ValueError:
            raise VaiError(f"--delay {args.delay!r}: expected VESSEL:N,N,... e.g. V1:0,1,2") from None
        items = delay_variants(read_document(args.instances[0]), vessel, delays, source=args.instances[0])
    else:
        items = items_from_paths(args.instances)
    params = {"instances": args.instances, "engine": args.engine, "workers": args.workers,
              "time_limit": args.time_limit, "delay": args.delay}
    with Store().run(VERTICAL, "sweep", params) as run:
        result, frame = run_sweep(items, args.out, engine=args.engine, workers=args.workers,
                                  time_limit=args.time_limit, solver_workers=args.solver_workers, seed=args.seed,
                                  store_run=run)
        if not frame.empty:
            atomic_write_table(Path(args.out) / "results.csv", frame)
            run.write_table("results", frame)
        else:  # an earlier sweep's results.csv would pass for this one's
            (Path(args.out) / "results.csv").unlink(missing_ok=True)
        run.summary.update({"scenarios": len(items), "solved": int((frame.get("status", []) == "OPTIMAL").sum() +
                                                                  (frame.get("status", []) == "FEASIBLE").sum())
                            if not frame.empty else 0})
    if not frame.empty:
        cols = [c for c in ("name", "delay", "status", "objective", "gap", "wall_seconds", "check_ok") if c in frame]
        print(frame[cols].to_string(index=False))
    for k, err in result.failed.items():
        print(f"failed: {k}: {err}", file=sys.stderr)
    if frame.empty:  # nothing solved: no results file was written, so none is announced
        print(f"error: no scenario was solved ({len(result.failed)} of {len(items)} failed; see "
              f"{args.out}/job_errors.csv)", file=sys.stderr)
        return 1
    print(f"results in {args.out}/results.csv")
    if result.failed:
        print(f"{len(result.failed)} of {len(items)} scenario(s) failed; see {args.out}/job_errors.csv", file=sys.stderr)
    return 0 if result.ok else 1


def cmd_example(args) -> int:
    from .examples import example_names, load_example_dict
    from .instance import save_instance

    if not args.name:
        for n in example_names():
            print(n)
        return 0
    data = load_example_dict(args.name)
    if args.out:
        save_instance(data, args.out)
        print(f"example {args.name} written to {args.out}")
    else:
        print(json.dumps(data, indent=2))
    return 0
