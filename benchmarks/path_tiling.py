"""Tiling throughput on the real CMU-1-Small-Region.svs at 0.5 µm/px, 256 px tiles.

Reports separately: tissue detection (once per slide), coordinates (grid + coverage filter: what
`vai path tile` writes), tile reading + resizing (the fast JPEG-tile path and OpenSlide's read_region; strip
reads vs tile-by-tile; 1 and 2 processes), and the ceiling set by OpenSlide's own JPEG decoding (one read of
the whole level, in 256x256-tile equivalents). Every read pass opens the slide afresh, so the decoded-tile
cache starts cold and each pass pays the fast path's open and validation cost.

    python -m benchmarks.path_tiling [--repeats 10] [--min-tissue 0.5]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import time


def _read_pass(args) -> tuple[int, float]:
    """Reads every kept tile `repeats` times; returns (tiles, seconds spent reading, grid excluded)."""
    slide_path, min_tissue, rows, repeats, fast = args
    os.environ["VAI_SLIDE_FASTPATH"] = "1" if fast else "0"
    from vai.verticals.path import SlideReader, Tiler

    n = 0
    with SlideReader(slide_path) as s:
        tiler = Tiler(0.5, 256, min_tissue)
        grid, _ = tiler.grid(s)
    seconds = cpu = 0.0
    for _ in range(repeats):
        with SlideReader(slide_path) as s:  # a fresh reader per pass: cold tile cache
            t0, c0 = time.perf_counter(), time.process_time()
            for _i, _t in tiler.iter_tiles(s, grid, rows=rows):
                n += 1
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
    return n, seconds, cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slide", default=None)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--min-tissue", type=float, default=0.5)
    args = ap.parse_args(argv)
    import openslide

    from vai.core.settings import get_settings
    from vai.verticals.path import SlideReader, Tiler, TissueDetector

    slide = args.slide or str(get_settings().require_data_dir("path/slides") / "CMU-1-Small-Region.svs")
    print(f"slide {os.path.basename(slide)}, 0.5 µm/px, 256 px tiles, min tissue {args.min_tissue}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    # tiles per CPU-second: what one core delivers when the machine is not shared (wall figures drop under load)
    print("| step | processes | tiles | seconds | tiles/s | tiles per CPU-second |")
    print("|---|---|---|---|---|---|")
    with SlideReader(slide) as s:
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            mask = TissueDetector().detect(s)
        det = (time.perf_counter() - t0) / args.repeats
        print(f"| tissue detection (thumbnail 1024 px), per slide | 1 | - | {det:.3f} | - | - |")
        t0 = time.perf_counter()
        n = sum(len(Tiler(0.5, 256, args.min_tissue).grid(s, mask)[0]) for _ in range(args.repeats * 10))
        dt = time.perf_counter() - t0
        print(f"| coordinates (grid + coverage filter) | 1 | {n} | {dt:.3f} | {n / dt:.0f} | - |")
    for fast in (True, False):
        for rows in ((True,) if fast else (True, False)):  # the fast path always reads tile by tile (own cache)
            for procs in (1, 2):
                job = (slide, args.min_tissue, rows, args.repeats, fast)
                if procs == 1:
                    n, dt, cpu = _read_pass(job)
                else:
                    # processes read concurrently: throughput = all tiles / the slowest process's reading time
                    with cf.ProcessPoolExecutor(procs) as pool:
                        parts = list(pool.map(_read_pass, [job] * procs))
                    n, dt, cpu = sum(p[0] for p in parts), max(p[1] for p in parts), sum(p[2] for p in parts)
                mode = ("fast JPEG path (decoded-tile cache)" if fast else
                        "OpenSlide read_region" + (", strip reads" if rows else ", tile by tile"))
                print(f"| read (+ resize when needed) kept tiles, {mode} | {procs} | {n} | {dt:.2f} | {n / dt:.0f} | {n / cpu:.0f} |")
    o = openslide.OpenSlide(slide)
    w, h = o.dimensions
    t0 = time.perf_counter()
    for _ in range(3):
        o.read_region((0, 0), 0, (w, h))
    dt = (time.perf_counter() - t0) / 3
    print(f"| OpenSlide decode ceiling (whole level read) | 1 | {w * h / 65536:.0f} equiv. | {dt:.3f} | "
          f"{w * h / 65536 / dt:.0f} | - |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
