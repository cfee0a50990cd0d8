"""Molecular features: Morgan count fingerprints, RDKit 2D descriptors, and graphs for the D-MPNN."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chem import _rdkit

FP_RADIUS = 2
FP_SIZE = 2048
# Dropped from RDKit's 2D descriptor list: slow ones (qed, BCUT2D, SPS) and Ipc, which overflows.
_SKIP_DESCRIPTORS = {"qed", "SPS", "Ipc", "AvgIpc"}


def descriptor_names() -> list[str]:
    _rdkit()
    from rdkit.Chem import Descriptors

    return [n for n, _ in Descriptors._descList if n not in _SKIP_DESCRIPTORS and not n.startswith("BCUT2D")]


_DESC_FNS = None


def _desc_fns():
    global _DESC_FNS
    if _DESC_FNS is None:
        import functools
        import inspect

        from rdkit.Chem import Descriptors

        def shares_cache(f) -> bool:
            try:
                return "force" in inspect.signature(f).parameters
            except (TypeError, ValueError):
                return False

        # The four E-state and four partial-charge descriptors each recompute the same per-atom values unless
        # called with force=False, which caches them on the molecule: the same numbers, ~17% less descriptor time.
        keep = set(descriptor_names())
        _DESC_FNS = [(n, functools.partial(f, force=False) if shares_cache(f) else f)
                     for n, f in Descriptors._descList if n in keep]
    return _DESC_FNS


def descriptors(mols) -> np.ndarray:
    """[n, n_descriptors] float32; NaN where RDKit fails or the value is not finite."""
    fns = _desc_fns()
    out = np.full((len(mols), len(fns)), np.nan, dtype=np.float64)
    for i, m in enumerate(mols):
        if m is None:
            continue
        for j, (_, f) in enumerate(fns):
            try:
                out[i, j] = f(m)
            except Exception:  # noqa: BLE001 - a descriptor that fails on one molecule stays NaN
                pass
    out[~np.isfinite(out)] = np.nan
    np.clip(out, -1e6, 1e6, out=out)
    return out.astype(np.float32)


_GEN = {}


def morgan_generator(radius: int = FP_RADIUS, size: int = FP_SIZE):
    key = (radius, size)
    if key not in _GEN:
        _rdkit()
        from rdkit.Chem import rdFingerprintGenerator

        _GEN[key] = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=size)
    return _GEN[key]


def morgan_counts(mols, radius: int = FP_RADIUS, size: int = FP_SIZE) -> np.ndarray:
    gen = morgan_generator(radius, size)
    out = np.zeros((len(mols), size), dtype=np.float32)
    for i, m in enumerate(mols):
        if m is not None:
            out[i] = gen.GetCountFingerprintAsNumPy(m)
    return out


def morgan_bitvects(mols, radius: int = FP_RADIUS, size: int = FP_SIZE) -> list:
    """RDKit ExplicitBitVects for Tanimoto search (None for unparsable molecules)."""
    gen = morgan_generator(radius, size)
    return [gen.GetFingerprint(m) if m is not None else None for m in mols]


def tabular_features(mols, use_descriptors: bool = True) -> np.ndarray:
    """Morgan counts (+ RDKit descriptors): the input of the gradient-boosted model."""
    fp = morgan_counts(mols)
    if not use_descriptors:
        return fp
    return np.hstack([fp, descriptors(mols)])


def tabular_feature_names(use_descriptors: bool = True) -> list[str]:
    names = [f"morgan_{i}" for i in range(FP_SIZE)]
    return names + (descriptor_names() if use_descriptors else [])


# -- graphs for the D-MPNN (chemprop-style atom and bond features) -------------------------------------
_ELEMENTS = [1, 5, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 19, 20, 26, 29, 30, 33, 34, 35, 50, 53]
_DEGREES = [0, 1, 2, 3, 4, 5]
_CHARGES = [-2, -1, 0, 1, 2]
_CHIRAL = [0, 1, 2, 3]
_NUM_HS = [0, 1, 2, 3, 4]


def _one_hot(value, choices) -> list[float]:
    v = [0.0] * (len(choices) + 1)  # the last slot means "other"
    v[choices.index(value) if value in choices else len(choices)] = 1.0
    return v


def _hybridizations():
    from rdkit import Chem

    H = Chem.rdchem.HybridizationType
    return [H.S, H.SP, H.SP2, H.SP3, H.SP3D, H.SP3D2]


ATOM_DIM = len(_ELEMENTS) + 1 + len(_DEGREES) + 1 + len(_CHARGES) + 1 + len(_CHIRAL) + 1 + len(_NUM_HS) + 1 + 6 + 1 + 2
BOND_DIM = 4 + 1 + 2 + 7


def atom_features(atom, hybs) -> list[float]:
    return (_one_hot(atom.GetAtomicNum(), _ELEMENTS) + _one_hot(atom.GetTotalDegree(), _DEGREES)
            + _one_hot(atom.GetFormalCharge(), _CHARGES) + _one_hot(int(atom.GetChiralTag()), _CHIRAL)
            + _one_hot(atom.GetTotalNumHs(), _NUM_HS) + _one_hot(atom.GetHybridization(), hybs)
            + [1.0 if atom.GetIsAromatic() else 0.0, atom.GetMass() * 0.01])


def bond_features(bond) -> list[float]:
    from rdkit import Chem

    bt = bond.GetBondType()
    B = Chem.rdchem.BondType
    return ([float(bt == B.SINGLE), float(bt == B.DOUBLE), float(bt == B.TRIPLE), float(bt == B.AROMATIC)]
            + [0.0]  # slot kept so the layout matches chemprop's "bond is None" flag
            + [float(bond.GetIsConjugated()), float(bond.IsInRing())]
            + _one_hot(int(bond.GetStereo()), [0, 1, 2, 3, 4, 5]))


@dataclass
class MolGraph:
    x: np.ndarray          # [n_atoms, ATOM_DIM]
    edge_attr: np.ndarray  # [n_edges, BOND_DIM], directed: bond k gives edges 2k (a->b) and 2k+1 (b->a)
    src: np.ndarray        # [n_edges]
    dst: np.ndarray        # [n_edges]


def mol_graph(mol) -> MolGraph:
    hybs = _hybridizations()
    x = np.asarray([atom_features(a, hybs) for a in mol.GetAtoms()], dtype=np.float32).reshape(-1, ATOM_DIM)
    src, dst, feats = [], [], []
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        f = bond_features(b)
        src += [i, j]
        dst += [j, i]
        feats += [f, f]
    return MolGraph(x=x, edge_attr=np.asarray(feats, dtype=np.float32).reshape(-1, BOND_DIM),
                    src=np.asarray(src, dtype=np.int64), dst=np.asarray(dst, dtype=np.int64))


class DescriptorScaler:
    """Maps each descriptor to its training CDF (0..1, minus 0.5), like chemprop's `rdkit_2d_normalized`:
    robust to the heavy tails many RDKit descriptors have. NaN becomes 0 (the training median)."""

    N_QUANTILES = 101

    def __init__(self, quantiles=None, **_legacy):
        self.quantiles = None if quantiles is None else np.asarray(quantiles, dtype=np.float64)

    @property
    def mean(self):  # the number of columns, for callers sizing inputs
        return self.quantiles[0]

    def fit(self, X: np.ndarray) -> "DescriptorScaler":
        with np.errstate(all="ignore"):
            q = np.nanquantile(X.astype(np.float64), np.linspace(0, 1, self.N_QUANTILES), axis=0)
        self.quantiles = np.nan_to_num(q)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        grid = np.linspace(0, 1, self.N_QUANTILES)
        out = np.zeros(X.shape, dtype=np.float32)
        for j in range(X.shape[1]):
            q = self.quantiles[:, j]
            if q[-1] - q[0] <= 0:
                continue  # a constant column carries nothing
            # ties in the quantiles: interp on the unique knots, averaging their CDF values
            u, inv = np.unique(q, return_inverse=True)
            g = np.bincount(inv, weights=grid) / np.bincount(inv)
            col = np.interp(X[:, j], u, g)
            out[:, j] = np.where(np.isnan(X[:, j]), 0.5, col) - 0.5
        return out

    def to_json(self) -> dict:
        return {"quantiles": self.quantiles.tolist()}
