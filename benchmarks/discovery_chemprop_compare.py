"""Discovery vs chemprop on ESOL, FreeSolv, Cheruvu log Kp (scaffold-balanced 80/10/10, seeds 0,1,2).

    python -m benchmarks.discovery_chemprop_compare --model ensemble --out /tmp/discovery_bench
    # also --datasets tox21 (12 assays) or uv_lambda_max (the published Deep4Chem split, solvent as 2nd input):
    python -m benchmarks.discovery_chemprop_compare --model gbm --gbm-members 1 --datasets uv_lambda_max --seeds 0

Writes the rows both tools read (`data_<dataset>.csv`) and the split indices into them (`splits_<dataset>.json`,
chemprop's --splits-file format), so chemprop 2.3.1 runs on the same splits from its own virtual environment:
    python -m benchmarks.discovery_chemprop_run --splits-dir /tmp/discovery_bench --out /tmp/chemprop_bench
"""
import argparse
import json
import os
from pathlib import Path

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ensemble", choices=["gbm", "mpnn", "ensemble", "gp"])
    ap.add_argument("--datasets", default="esol,freesolv,cheruvu_logkp")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--gbm-members", type=int, default=None, help="LightGBM members (default: the model's own)")
    ap.add_argument("--out", default="/tmp/discovery_bench")
    args = ap.parse_args()
    os.environ.setdefault("VAI_TORCH_THREADS", "1")
    from vai.core.settings import get_settings
    from vai.verticals.discovery.benchmark import run_benchmark

    res = run_benchmark(get_settings().require_data_dir(), Path(args.out), datasets=args.datasets.split(","),
                        seeds=[int(s) for s in args.seeds.split(",")], model=args.model, epochs=args.epochs,
                        **({"gbm_members": args.gbm_members} if args.gbm_members else {}))
    print(json.dumps(res["summary"], indent=2))
    print((Path(args.out) / "results.md").read_text())
