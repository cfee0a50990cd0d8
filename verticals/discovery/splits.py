"""Seeded data splits: random, scaffold (balanced, as chemprop's `scaffold_balanced`) and cluster."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from vai.core.errors import VaiError

SPLITS = ("random", "scaffold", "cluster")


def murcko_scaffold(smiles: str) -> str:
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return smiles
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def _sizes(n: int, sizes: tuple[float, float, float]) -> tuple[int, int]:
    if abs(sum(sizes) - 1.0) > 1e-6:
        raise VaiError(f"split sizes {sizes} must sum to 1")
    return int(round(sizes[0] * n)), int(round((sizes[0] + sizes[1]) * n))


def random_split(n: int, sizes=(0.8, 0.1, 0.1), seed: int = 0):
    perm = np.random.default_rng(seed).permutation(n)
    a, b = _sizes(n, sizes)
    return np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])


def _group_split(groups: list[list[int]], n: int, sizes, seed: int):
    """chemprop's balanced scaffold split: groups larger than half the val/test size go first (shuffled),
    the small ones after (shuffled), each filling train, then val, then test (see the one change below)."""
    train_size, val_size = int(sizes[0] * n), int(sizes[1] * n)
    test_size = n - train_size - val_size
    rng = np.random.default_rng(seed)
    big = [g for g in groups if len(g) > val_size / 2 or len(g) > test_size / 2]
    small = [g for g in groups if not (len(g) > val_size / 2 or len(g) > test_size / 2)]
    rng.shuffle(big)
    rng.shuffle(small)
    # One change to chemprop: a group too large for both val and test (e.g. all acyclic molecules) always
    # goes to train first; otherwise it can land in test whole, or leave val empty.
    huge = sorted((g for g in big if len(g) > val_size and len(g) > test_size), key=len, reverse=True)
    big = [g for g in big if not (len(g) > val_size and len(g) > test_size)]
    train, val, test = [], [], []
    for g in huge + big + small:
        if len(train) + len(g) <= train_size:
            train += g
        elif len(val) + len(g) <= val_size:
            val += g
        else:
            test += g
    if (sizes[1] > 0 and not val) or (sizes[2] > 0 and not test):
        largest = max(len(g) for g in groups)
        raise VaiError(f"the group split left the {'validation' if not val else 'test'} set empty (the largest "
                       f"scaffold/cluster holds {largest} of {n} molecules); use --split random or more diverse data")
    return np.array(sorted(train), dtype=int), np.array(sorted(val), dtype=int), np.array(sorted(test), dtype=int)


def scaffold_split(smiles: list[str], sizes=(0.8, 0.1, 0.1), seed: int = 0):
    by_scaffold: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(smiles):
        by_scaffold[murcko_scaffold(s)].append(i)
    return _group_split(list(by_scaffold.values()), len(smiles), sizes, seed)


def cluster_split(smiles: list[str], sizes=(0.8, 0.1, 0.1), seed: int = 0, threshold: float = 0.6):
    """Butina clusters on Morgan fingerprints (Tanimoto distance `threshold`), then split by cluster."""
    from rdkit import DataStructs
    from rdkit.ML.Cluster import Butina

    from .chem import to_mols
    from .features import morgan_bitvects

    fps = morgan_bitvects(to_mols(smiles))
    n = len(fps)
    dists = []
    for i in range(1, n):
        sims = DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])
        dists.extend(1.0 - np.asarray(sims))
    clusters = Butina.ClusterData(dists, n, threshold, isDistData=True)
    return _group_split([list(c) for c in clusters], n, sizes, seed)


def make_split(kind: str, smiles: list[str], sizes=(0.8, 0.1, 0.1), seed: int = 0):
    """(train, val, test) index arrays."""
    if kind == "random":
        return random_split(len(smiles), sizes, seed)
    if kind == "scaffold":
        return scaffold_split(smiles, sizes, seed)
    if kind == "cluster":
        return cluster_split(smiles, sizes, seed)
    raise VaiError(f"split {kind!r} is not one of: {', '.join(SPLITS)}")
