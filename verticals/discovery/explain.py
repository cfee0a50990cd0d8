"""Atom contributions from the model that predicted, drawn on the molecule (PNG or SVG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vai.core.errors import VaiError
from vai.core.io import atomic_write_bytes, atomic_write_text

from . import features as F


def gbm_atom_weights(predictor, feat, booster) -> np.ndarray:
    """LightGBM's tree SHAP contribution of each Morgan bit, spread evenly over every occurrence of the bit
    and, within an occurrence, over the atoms within its radius; a structural alert's contribution (models
    trained with alerts) over the atoms of its matches. Descriptor and solvent contributions are molecule-level
    and are not drawn on atoms."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    mol = feat.mols[0]
    contrib = np.asarray(booster.predict(feat.tabular[:1], pred_contrib=True))
    if predictor.task == "multiclass":  # [1, K*(n_features+1)]: explain the predicted class
        k = predictor.n_classes
        block = contrib.reshape(k, -1)
        probs = np.asarray(booster.predict(feat.tabular[:1]))[0]
        contrib = block[int(np.argmax(probs))]
    contrib = contrib.reshape(-1)
    ao = rdFingerprintGenerator.AdditionalOutput()
    ao.AllocateBitInfoMap()
    F.morgan_generator().GetCountFingerprintAsNumPy(mol, additionalOutput=ao)
    dist = Chem.GetDistanceMatrix(mol)
    weights = np.zeros(mol.GetNumAtoms())
    for bit, envs in ao.GetBitInfoMap().items():
        share = contrib[bit] / len(envs)
        for center, radius in envs:
            atoms = np.flatnonzero(dist[center] <= radius)
            weights[atoms] += share / len(atoms)
    if getattr(predictor, "alerts", False):
        from .alerts import _patterns

        start = F.FP_SIZE + (len(F.descriptor_names()) if predictor.use_descriptors else 0)
        for k, pattern in enumerate(_patterns()):
            matches = mol.GetSubstructMatches(pattern)
            atoms = sorted({a for match in matches for a in match})
            if atoms:
                weights[atoms] += contrib[start + k] / len(atoms)
    return weights


def gp_atom_weights(predictor, feat, gp) -> np.ndarray:
    """Fingerprint occlusion (after Riniker & Landrum, J. Cheminform. 2013, the atomic weights of RDKit's
    similarity maps): an atom's weight is the GP's predicted mean minus its mean with the Morgan environments
    centred on the atom (radius 0 to 2) taken out of the counts. Target units; the descriptors are molecule-level
    and stay as they are, so what is drawn is what the substructures add. One GP call for all atoms."""
    from rdkit.Chem import rdFingerprintGenerator

    mol = feat.mols[0]
    x = predictor._gp_input(feat)[:1]
    ao = rdFingerprintGenerator.AdditionalOutput()
    ao.AllocateBitInfoMap()
    F.morgan_generator().GetCountFingerprintAsNumPy(mol, additionalOutput=ao)
    occluded = np.repeat(x, mol.GetNumAtoms(), axis=0)
    for bit, envs in ao.GetBitInfoMap().items():
        for center, _radius in envs:
            occluded[center, bit] -= 1
    np.clip(occluded[:, :F.FP_SIZE], 0, None, out=occluded[:, :F.FP_SIZE])
    base, _ = gp.predict(x)
    means, _ = gp.predict(occluded)
    return float(base[0]) - np.asarray(means, float)


def mpnn_atom_weights(predictor, feat, module, task_index: int = 0) -> np.ndarray:
    """Gradient x input on the atom features, summed per atom (target units for regression)."""
    import torch

    from .mpnn import collate_graphs

    extra = predictor._extra(feat)
    batch = collate_graphs([(feat.graphs[0], None if extra is None else extra[0], None)])
    x = batch["x"].clone().requires_grad_(True)
    with torch.enable_grad():
        out = module(batch, x=x).float()
        if predictor.task == "multiclass":
            target = out[0, int(out[0].argmax())]
        else:
            target = out[0, task_index]
        target.backward()
    w = (x.grad * x).sum(dim=1).detach().numpy()
    if predictor.task == "regression":
        w = w * float(module.y_std[task_index])
    return w


def draw_atom_weights(smiles: str, weights, out_path: str | Path, size: int = 400) -> Path:
    """Similarity-map style heatmap (RDKit colours: green raises the prediction, pink lowers it); .svg or .png."""
    from rdkit import Chem
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise VaiError(f"cannot draw {smiles!r}: RDKit cannot parse it")
    weights = [float(w) for w in weights]
    if len(weights) != mol.GetNumAtoms():
        raise VaiError(f"{len(weights)} weights for {mol.GetNumAtoms()} atoms in {smiles!r}")
    out = Path(out_path)
    svg = out.suffix.lower() == ".svg"
    if out.suffix.lower() not in (".svg", ".png"):
        raise VaiError(f"{out}: explanation images are .png or .svg")
    d = rdMolDraw2D.MolDraw2DSVG(size, size) if svg else rdMolDraw2D.MolDraw2DCairo(size, size)
    scale = max(1e-9, max(abs(w) for w in weights)) if weights else 1.0
    # RDKit colours weights in [-1, 1]; scale so the strongest atom is fully coloured
    SimilarityMaps.GetSimilarityMapFromWeights(mol, [w / scale for w in weights], draw2d=d)
    d.FinishDrawing()
    out.parent.mkdir(parents=True, exist_ok=True)
    if svg:
        atomic_write_text(out, d.GetDrawingText())
    else:
        atomic_write_bytes(out, d.GetDrawingText())
    return out
