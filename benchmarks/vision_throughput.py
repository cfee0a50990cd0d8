"""Fit time and scoring throughput of the vision-inspection detector (generated 8-bit PNG textures, so it
needs no data set). Scoring is measured through the real batch job (`score_images`: PNG decode, resize,
features, nearest-neighbour search, CSV, store), and split into feature extraction and kNN search.

    python -m benchmarks.vision_throughput --sizes 128,224 --k 8 --n-images 64
On a CUDA machine, `VAI_DISABLE_TRITON=1` runs the same with the PyTorch reference kNN instead of the kernel.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def bench(size: int, k: int, n_images: int, augment: str, work: Path) -> dict:
    import torch

    from vai.verticals.vision_inspect.detector import FewShotDetector
    from vai.verticals.vision_inspect.pipeline import fit_model, score_images
    from vai.verticals.vision_inspect.synthetic import make_set, write_dataset

    folders = write_dataset(work / f"data{size}", n_train=k, n_test_good=n_images // 2, n_defect=n_images // 2,
                            size=size, seed=1)
    FewShotDetector(image_size=size).extractor  # load the backbone once, outside the timings
    t = time.perf_counter()
    det, summary = fit_model(folders["train"], work / f"model{size}", image_size=size, augment=augment)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    frame, _ = score_images(work / f"model{size}", folders["root"] / "test", work / f"scores{size}.csv", chunk_size=32)
    job_s = time.perf_counter() - t
    imgs, _, _, _ = make_set(n_images, 0, size=size, seed=2)
    t = time.perf_counter()
    feats = det.extractor(imgs)
    feat_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(feats), 32):
        det.score_features(feats[i:i + 32])  # the path `score` takes: bf16 scan + exact top patches, or fp32
    knn_s = time.perf_counter() - t
    return {"image_size": size, "k": k, "augment": augment, "bank_size": summary["bank_size"],
            "fit_s": round(fit_s, 2), "n_images": len(frame), "score_job_images_per_s": round(len(frame) / job_s, 1),
            "features_ms_per_image": round(1000 * feat_s / n_images, 1),
            "knn_ms_per_image": round(1000 * knn_s / n_images, 1), "device": str(det.device),
            "precision": det.config["precision"], "knn": "bf16 scan + fp32 top patches" if det.uses_bank_scan else "fp32 search",
            "torch_threads": torch.get_num_threads(), "triton_disabled": os.environ.get("VAI_DISABLE_TRITON", "")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="128,224")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--n-images", type=int, default=64)
    ap.add_argument("--augment", default="flip")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is far faster on a busy box)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.environ.setdefault("VAI_HOME", tempfile.mkdtemp(prefix="vai-bench-"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(bench(size, args.k, args.n_images, args.augment, Path(tmp)))
            print(json.dumps(rows[-1]))
    print("| size | k | bank | fit s | score job img/s | features ms/img | kNN ms/img |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['image_size']} | {r['k']} | {r['bank_size']} | {r['fit_s']} | {r['score_job_images_per_s']} | "
              f"{r['features_ms_per_image']} | {r['knn_ms_per_image']} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
