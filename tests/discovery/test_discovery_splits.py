import numpy as np
import pytest

from vai.verticals.discovery.splits import make_split, murcko_scaffold

from discovery_testlib import sample_frame


@pytest.mark.parametrize("kind", ["random", "scaffold", "cluster"])
def test_splits_partition_and_are_seeded(kind):
    smiles = sample_frame()["smiles"].tolist()
    sizes = (0.6, 0.2, 0.2)
    tr, va, te = make_split(kind, smiles, sizes, seed=1)
    all_idx = np.concatenate([tr, va, te])
    assert sorted(all_idx.tolist()) == list(range(len(smiles)))
    assert len(tr) and len(va) and len(te)
    again = make_split(kind, smiles, sizes, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    other = make_split(kind, smiles, sizes, seed=2)
    if kind == "random":
        assert not np.array_equal(tr, other[0])


def test_scaffold_split_keeps_scaffolds_apart():
    smiles = sample_frame()["smiles"].tolist()
    tr, va, te = make_split("scaffold", smiles, (0.6, 0.2, 0.2), seed=0)
    scaf = [murcko_scaffold(s) for s in smiles]
    train_scaf = {scaf[i] for i in tr}
    assert not train_scaf & {scaf[i] for i in te}
    assert not train_scaf & {scaf[i] for i in va}
