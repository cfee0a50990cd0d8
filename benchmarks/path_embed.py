"""End-to-end tile + embed throughput vs the backbone's own forward throughput (same batch size, same
tile size), on CMU-1-Small-Region.svs at 0.5 µm/px. The target: tile+embed within 20% of the forward
alone (reading and decoding never the bottleneck, thanks to DataLoader workers).

    python -m benchmarks.path_embed [--tile 256] [--batch-size 32] [--workers 0 1] [--device cpu|cuda] [--compile]

`--compile`: the backbone through torch.compile (what `vai path embed --compile on` does); the one-off build
happens in the untimed warm-up and is reported separately.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slide", default=None)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=1, help="passes over the slide's tiles")
    ap.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    args = ap.parse_args(argv)
    import torch

    from vai.core.settings import get_settings
    from vai.verticals.path import SlideReader, TileEmbedder, Tiler

    slide = args.slide or str(get_settings().require_data_dir("path/slides") / "CMU-1-Small-Region.svs")
    emb = TileEmbedder(batch_size=args.batch_size, num_workers=0, device=args.device,
                       compile=True if args.compile else False)
    with SlideReader(slide) as s:
        grid, _ = Tiler(0.5, args.tile, 0.0).grid(s)
    if args.repeats > 1:
        import numpy as np

        grid.coords = np.concatenate([grid.coords] * args.repeats)
    n = len(grid)
    print(f"device {emb.info.name} ({emb.info.precision}), torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}; {n} tiles of {args.tile} px, batch {args.batch_size}")
    model = emb.model
    x = torch.randn(args.batch_size, 3, args.tile, args.tile)
    t_warm = time.perf_counter()
    emb._forward(x)  # warm-up (and, with --compile, the one-off build)
    print(f"compile: {bool(args.compile)}; warm-up {time.perf_counter() - t_warm:.1f} s")
    t0 = time.perf_counter()
    done = 0
    while done < n:
        emb._forward(x)
        done += args.batch_size
    fwd = done / (time.perf_counter() - t0)
    print("| pipeline | tiles/s | vs forward |")
    print("|---|---|---|")
    print(f"| backbone forward only (random tensors) | {fwd:.1f} | 100% |")
    for w in args.workers:
        emb.num_workers = w
        with tempfile.TemporaryDirectory() as td:
            t0 = time.perf_counter()
            emb.embed_slide(slide, grid, Path(td) / "x.h5")
            rate = n / (time.perf_counter() - t0)
        print(f"| read + decode + resize + embed + HDF5 write, {w} DataLoader workers | {rate:.1f} | {100 * rate / fwd:.0f}% |")
    del model
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
