"""Petrochemical feed scheduling with OR-Tools CP-SAT (format: ../shared/specs/feed-scheduling.md).

    from vai.verticals.scheduling import load_instance, solve, check_schedule, save_gantt_png
    inst = load_instance("plant.json")
    sched = solve(inst, time_limit=30, workers=2)          # exact mixing; status, objective, bound, gap
    report = check_schedule(inst.to_dict(), sched)        # independent exact simulation, every rule
    save_gantt_png(inst, sched, "gantt.png")

OR-Tools and Matplotlib load lazily: importing this package is cheap.
"""
from __future__ import annotations

from .checker import CheckReport, Violation, check_schedule
from .examples import example_names, load_example, load_example_dict
from .generator import generate_instance
from .instance import (Instance, Issue, ValidationReport, load_instance, precheck, save_instance, validate_dict,
                       validate_instance)

__all__ = ["Instance", "Issue", "ValidationReport", "load_instance", "save_instance", "validate_instance",
           "validate_dict", "precheck", "check_schedule", "CheckReport", "Violation", "generate_instance",
           "example_names", "load_example", "load_example_dict", "solve", "diagnose_infeasibility", "repair",
           "parse_event", "apply_event", "run_sweep", "delay_variants", "save_gantt_png", "gantt_figure",
           "inventory_figure", "gantt_plotly", "inventory_plotly", "operations_table"]

_LAZY = {"solve": "solver", "diagnose_infeasibility": "solver", "FeedModel": "solver", "repair": "replan",
         "parse_event": "replan", "apply_event": "replan", "moved_operations": "replan", "run_sweep": "sweep",
         "delay_variants": "sweep", "save_gantt_png": "plots", "gantt_figure": "plots",
         "inventory_figure": "plots", "gantt_plotly": "plots", "inventory_plotly": "plots", "save_png": "plots",
         "operations_table": "operations"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
