"""Few-shot visual defect inspection: a PatchCore-style detector from a handful of good images, thresholds
without defect samples, dataset-normalised heatmaps, and defect typing with an "unknown" outcome.

    from vai.verticals.vision_inspect import FewShotDetector, DefectTyper
    det = FewShotDetector(image_size=224).fit("parts/good")       # folder, glob, paths or uint8 array
    res = det.score("parts/new")                                   # res.scores, res.maps, res.bad
    heat = det.heatmap("parts/new/0001.png")                       # [0, 1] on the model's fixed scale
    det.save("models/line3")
"""
from __future__ import annotations

__all__ = ["FewShotDetector", "DefectTyper", "ScoreResult", "fit_model", "score_images", "evaluate_model",
           "types_fit", "types_predict", "list_images"]


def __getattr__(name: str):
    # Lazy: importing the package (e.g. for the CLI) must not import torch.
    if name in ("FewShotDetector", "ScoreResult"):
        from . import detector

        return getattr(detector, name)
    if name == "DefectTyper":
        from .defect_types import DefectTyper

        return DefectTyper
    if name in ("fit_model", "score_images", "evaluate_model", "types_fit", "types_predict"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "list_images":
        from .data import list_images

        return list_images
    raise AttributeError(name)
