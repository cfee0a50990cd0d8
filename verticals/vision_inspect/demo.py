"""`vai demo` for vision inspection: generated woven textures with planted scratches and spots (synthetic,
embedded: nothing is read from the data dir or downloaded), run through fit -> score (with heatmaps) ->
evaluate -> defect typing, each recorded in the store."""
from __future__ import annotations

from pathlib import Path


def run_demo(out_dir: Path) -> dict:
    import torch

    # One torch thread: on a busy 2-core box two OpenMP threads were measured 8x slower than one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(Path(out_dir))
    finally:
        torch.set_num_threads(before)


def _run(out_dir: Path) -> dict:
    from .pipeline import evaluate_model, fit_model, score_images, types_fit, types_predict
    from .synthetic import write_dataset

    folders = write_dataset(out_dir / "data", n_train=4, n_test_good=8, n_defect=12, size=128, seed=0)
    model = out_dir / "model"
    fit_model(folders["train"], model, k=4, seed=0, image_size=128)
    frame, bad = score_images(model, out_dir / "data" / "test", out_dir / "scores.csv", heatmaps=out_dir / "heatmaps")
    result = evaluate_model(model, folders["test_good"], folders["test_defect"], masks=folders["masks"],
                            out_dir=out_dir / "evaluation")
    # typing: learn from the first half of each defect type, predict the rest
    typing_root = out_dir / "typing"
    for kind_dir in sorted(p for p in folders["test_defect"].iterdir() if p.is_dir()):
        files = sorted(kind_dir.glob("*.png"))
        for i, f in enumerate(files):
            dest = typing_root / ("train" if i < len(files) // 2 else "test") / kind_dir.name / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.read_bytes())
    types_fit(model, typing_root / "train", out_dir / "typer")
    types = types_predict(out_dir / "typer", typing_root / "test", out_dir / "types.csv")
    truth = types["path"].map(lambda p: Path(p).parent.name)
    return {"images_scored": len(frame), "flagged": int(frame["is_defect"].sum()),
            "synthetic_image_auroc": round(result["image_auroc"], 3),
            "synthetic_pixel_auroc": round(result.get("pixel_auroc", float("nan")), 3),
            "synthetic_aupro": round(result.get("aupro", float("nan")), 3),
            "synthetic_typing_accuracy": round(float((types["type"] == truth).mean()), 3),
            "synthetic_typing_unknown": int((types["type"] == "unknown").sum()),
            "synthetic_typing_nearest_accuracy": round(float((types["nearest_type"] == truth).mean()), 3)}


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys
    import tempfile

    print(json.dumps(run_demo(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())), indent=2))
