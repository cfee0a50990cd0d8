"""Screening throughput (molecules/s) of `screen_library`, on real SMILES (Lipophilicity + AqSolDB) as the
library, with two GBM property models trained on embedded synthetic labels (the speed does not depend on
the labels).

    python -m benchmarks.discovery_screen_speed --n 5000 --workers 1
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=1000)
    args = ap.parse_args()
    os.environ.setdefault("VAI_TORCH_THREADS", "1")
    import pandas as pd

    from vai.core.settings import get_settings
    from vai.verticals.discovery.sample_data import synthetic_logp_frame
    from vai.verticals.discovery.screen import screen_library
    from vai.verticals.discovery.workflows import train_table

    base = get_settings().require_data_dir("discovery")
    smiles = pd.concat([pd.read_csv(base / "moleculenet/lipophilicity.csv")["smiles"],
                        pd.read_csv(base / "solubility/aqsoldb_data_curated.csv")["SMILES"]]).head(args.n)
    tmp = Path(tempfile.mkdtemp(prefix="vai-screen-bench-"))
    lib = tmp / "library.smi"
    lib.write_text("\n".join(smiles) + "\n")
    frame = synthetic_logp_frame()
    t = time.perf_counter()
    train_table(frame, smiles_col="smiles", target_cols=["logp_crippen"], out=tmp / "m1", model="gbm", split="random")
    train_table(frame, smiles_col="smiles", target_cols=["heavy_atoms"], out=tmp / "m2", model="gbm", split="random")
    train_s = time.perf_counter() - t
    models = {"logp": str(tmp / "m1"), "size": str(tmp / "m2")}
    rows = []
    for label, kwargs in [
        ("2 GBM models + constraints + applicability domain", dict(models=models, constraints=["logp=1:4", "size<30"])),
        ("2 GBM models + constraints, no domain", dict(models=models, constraints=["logp=1:4", "size<30"], domain=False)),
        ("similarity search only", dict(similar_to=["OCCOc1ccccc1"])),
    ]:
        res = screen_library(lib, tmp / label.replace(" ", "_"), chunk_size=args.chunk_size, workers=args.workers, **kwargs)
        rows.append({"case": label, "molecules": res.rows, "seconds": res.seconds, "molecules_per_s": res.molecules_per_s})
    print(json.dumps({"n": args.n, "workers": args.workers, "train_two_small_gbm_s": round(train_s, 1), "rows": rows}, indent=2))
