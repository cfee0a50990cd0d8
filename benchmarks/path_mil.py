"""MIL training speed and streaming memory.

1. Seconds per training epoch over bags of 2,000 tiles x 1,280 features (EfficientNet-Lite0 size), through
   the core Lightning `fit` (ABMIL and TransMIL). `--bags` are timed; the 1,000-bag epoch figure is that
   time scaled by 1000/bags (bags are independent steps of equal size, so the scaling is linear).
2. Peak memory predicting one slide of `--tiles` tiles (default 100,000): ABMIL streaming its features
   from HDF5 in chunks vs loading the whole bag; and embedding a large synthetic slide vs a small one
   (tiles are streamed through the DataLoader and written batch by batch, never held together).

    python -m benchmarks.path_mil [--bags 50] [--tiles 100000] [--skip-embed]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class RandomBags:
    def __init__(self, n_bags: int, n_tiles: int, dim: int):
        self.n_bags, self.n_tiles, self.dim = n_bags, n_tiles, dim

    def __len__(self):
        return self.n_bags

    def __getitem__(self, i):
        import torch

        g = torch.Generator().manual_seed(i)
        return (torch.randn(self.n_tiles, self.dim, generator=g), torch.tensor([float(i % 2), float(i % 3 == 0)]),
                torch.ones(2))


def _single(b):
    return b[0]


def epoch_time(kind: str, bags: int, tiles: int, dim: int) -> float:
    import torch

    from vai.core.training import fit
    from vai.verticals.path.models import MILModule

    loader = torch.utils.data.DataLoader(RandomBags(bags, tiles, dim), batch_size=1, shuffle=True, collate_fn=_single)
    module = MILModule(dim, 2, kind=kind)
    t0 = time.perf_counter()
    fit(module, loader, None, max_epochs=1, progress=False, checkpoints=False)
    return time.perf_counter() - t0


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, h5: str, model_dir: str) -> None:
    """Runs in a fresh process so that its peak RSS belongs to this measurement only."""
    import torch

    from vai.verticals.path.genotype import BagSet, GenotypeModel

    base = _peak_rss_mb()
    bags = BagSet({Path(h5).stem: Path(h5)}, cache=False)
    model = GenotypeModel.load(model_dir)
    t0 = time.perf_counter()
    if mode == "stream":
        probs, att = model.predict_slide(bags, Path(h5).stem, chunk=8192)
    else:
        with torch.no_grad():
            model.module.net(torch.from_numpy(bags.features(Path(h5).stem)))
    print(json.dumps({"mode": mode, "seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_rss_mb(),
                      "baseline_rss_mb": base}))


def _embed_child(size: int, out: str) -> None:
    from vai.verticals.path.embed import embed_slide_job
    from vai.verticals.path.synth import make_synthetic_slide

    slide = Path(out) / f"big_{size}.tiff"
    make_synthetic_slide(slide, size=size, seed=1)
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    info = embed_slide_job(str(slide), out_dir=out, target_mpp=0.5, tile_size=64, num_workers=0, min_tissue=0.5)
    print(json.dumps({"size": size, "tiles": info["tiles"], "seconds": time.perf_counter() - t0,
                      "rss_before_embed_mb": before, "peak_rss_mb": _peak_rss_mb()}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bags", type=int, default=50)
    ap.add_argument("--bag-tiles", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--tiles", type=int, default=100_000)
    ap.add_argument("--models", default="abmil,transmil")
    ap.add_argument("--skip-embed", action="store_true")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.child[0] == "embed":
            _embed_child(int(args.child[1]), args.child[2])
        else:
            _child(*args.child)
        return 0
    import torch

    print(f"cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print("| model | bags timed | tiles/bag | seconds | s/epoch at 1,000 bags (scaled) |")
    print("|---|---|---|---|---|")
    for kind in args.models.split(","):
        dt = epoch_time(kind, args.bags, args.bag_tiles, args.dim)
        print(f"| {kind} | {args.bags} | {args.bag_tiles} | {dt:.1f} | {dt * 1000 / args.bags:.0f} |")

    import h5py

    from vai.verticals.path.genotype import GenotypeModel
    from vai.verticals.path.models import MILModule

    with tempfile.TemporaryDirectory() as td:
        h5 = Path(td) / "huge.h5"
        with h5py.File(h5, "w") as f:
            d = f.create_dataset("features", (args.tiles, args.dim), "float32", chunks=(4096, args.dim))
            f.create_dataset("coords", data=np.zeros((args.tiles, 2), np.int64))
            rng = np.random.default_rng(0)
            for i in range(0, args.tiles, 8192):
                d[i:i + 8192] = rng.standard_normal((min(8192, args.tiles - i), args.dim), np.float32)
        config = {"vertical": "path", "kind": "genotype_mil", "model": "abmil", "targets": ["a", "b"],
                  "in_dim": args.dim, "model_kwargs": {}}
        GenotypeModel(MILModule(args.dim, 2), ["a", "b"], config).save(Path(td) / "model")
        print(f"\nfeatures of one slide: {args.tiles} x {args.dim} float32 = {args.tiles * args.dim * 4 / 2**20:.0f} MiB")
        print("| predict | seconds | RSS after imports MiB | peak RSS MiB |")
        print("|---|---|---|---|")
        for mode in ("stream", "full"):
            out = subprocess.run([sys.executable, "-m", "benchmarks.path_mil", "--child", mode, str(h5), str(Path(td) / "model")],
                                 capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            label = "ABMIL streaming (8,192-tile chunks)" if mode == "stream" else "whole bag loaded (for comparison)"
            print(f"| {label} | {r['seconds']:.1f} | {r['baseline_rss_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
        if not args.skip_embed:
            print("\n| embed synthetic slide | tiles (64 px) | seconds | peak RSS MiB |")
            print("|---|---|---|---|")
            for size in (1024, 4096):
                out = subprocess.run([sys.executable, "-m", "benchmarks.path_mil", "--child", "embed", str(size), td],
                                     capture_output=True, text=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {size} x {size} px | {r['tiles']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
