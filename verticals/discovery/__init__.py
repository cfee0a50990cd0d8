"""Discovery vertical: property prediction for cosmetic ingredients (RDKit, LightGBM, a D-MPNN on the shared
Lightning core), with conformal intervals, applicability domain, explanations, screening and mixtures.

    from vai.verticals.discovery import PropertyPredictor, screen_library, MixtureModel

Submodules import RDKit/torch lazily, so importing this package is cheap.
"""
from __future__ import annotations

__all__ = ["PropertyPredictor", "Standardizer", "load_molecules", "make_split", "screen_library",
           "parse_constraint", "model_outputs", "prediction_columns", "MixtureModel", "train_table", "predict_file", "PROPERTIES", "load_zoo"]


def __getattr__(name):  # lazy exports: keep `import vai.verticals.discovery` light
    if name == "PropertyPredictor":
        from .models import PropertyPredictor
        return PropertyPredictor
    if name in ("Standardizer", "load_molecules"):
        from . import chem
        return getattr(chem, name)
    if name == "make_split":
        from .splits import make_split
        return make_split
    if name in ("screen_library", "parse_constraint", "model_outputs", "prediction_columns"):
        from . import screen
        return getattr(screen, name)
    if name == "MixtureModel":
        from .mixtures import MixtureModel
        return MixtureModel
    if name in ("train_table", "predict_file"):
        from . import workflows
        return getattr(workflows, name)
    if name in ("PROPERTIES", "load_zoo"):
        from . import zoo
        return getattr(zoo, name)
    raise AttributeError(name)
