"""Few-shot image AUROC on ELPV solar cells (`<data dir>/vision/elpv_mono_subset`, 400 good / 313 defective).

Protocol (issue 5): a fixed held-out test set of good images (`--n-test-good`, drawn with seed 12345 from the
sorted good list) plus every defect image; for each seed, a permutation of the REMAINING good images gives
nested support sets (the first k of it, so k=2 contains k=1's image, ...). Image AUROC over the test set,
mean +- SD and the worst seed per k. `--random-weights` adds the same protocol with a randomly initialised
backbone as a control (what ImageNet pretraining adds). Only held-out images are ever scored.

    python -m benchmarks.vision_elpv --ks 1,2,4,8,16 --seeds 5 --size 224 --random-weights
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vai.verticals.vision_inspect.fewshot_eval import run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="1,2,4,8,16")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--augment", default="flip")
    ap.add_argument("--n-test-good", type=int, default=100)
    ap.add_argument("--n-test-defect", type=int, default=None, help="subsample the defects (default: all 313)")
    ap.add_argument("--random-weights", action="store_true", help="also run the random-backbone control")
    ap.add_argument("--data-dir", type=Path, default=None, help="elpv_mono_subset folder")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is far faster on a busy box)")
    ap.add_argument("--out", type=Path, default=None, help="write the results JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ks = [int(x) for x in args.ks.split(",")]
    results = [run(ks, args.seeds, args.size, args.n_test_good, args.n_test_defect, True, args.augment, args.data_dir)]
    if args.random_weights:
        results.append(run(ks, args.seeds, args.size, args.n_test_good, args.n_test_defect, False, args.augment,
                           args.data_dir))
    for r in results:
        print(f"\n{r['backbone']} @ {r['image_size']}px, {r['n_test_good']} good + {r['n_test_defect']} defect test images")
        print("| k | image AUROC mean ± SD | worst seed | bank size | fit s |")
        print("|---|---|---|---|---|")
        for k, v in r["per_k"].items():
            print(f"| {k} | {v['auroc_mean']:.3f} ± {v['auroc_sd']:.3f} | {v['auroc_worst']:.3f} | {v['bank_size']} | "
                  f"{v['fit_s_mean']:.1f} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
