import pandas as pd
import pytest

from vai.core.errors import VaiError
from vai.verticals.discovery.chem import (Standardizer, find_smiles_column, iter_chunks, load_molecules,
                                          read_table, standardize_frame)


def test_standardizer_strips_salt_neutralises_and_canonicalises():
    std = Standardizer()
    smi, err = std("CCCCCCCCCCCCOS(=O)(=O)[O-].[Na+]")
    assert err == "" and smi == "CCCCCCCCCCCCOS(=O)(=O)O"
    assert std("OC(=O)c1ccccc1")[0] == std("c1ccccc1C(O)=O")[0]
    assert std("C[NH3+].[Cl-]")[0] == "CN"


def test_an_inorganic_salt_is_kept_whole_not_reduced_to_its_largest_ion():
    """AqSolDB lists hundreds of inorganic salts: KCl and NaCl must stay two substances (not both 'Cl'), KI must
    not become HI; water of crystallisation goes, and an organic salt still gives its organic parent."""
    std = Standardizer()
    nacl, kcl, ki = (std(s)[0] for s in ("[Na+].[Cl-]", "[K+].[Cl-]", "[K+].[I-]"))
    assert nacl == "[Cl-].[Na+]" and kcl == "[Cl-].[K+]" and ki == "[I-].[K+]"
    assert std("O.O.O=[N+]([O-])[O-].O=[N+]([O-])[O-].[Mg+2]")[0] == "O=[N+]([O-])[O-].O=[N+]([O-])[O-].[Mg+2]"
    assert std("CC(=O)[O-].[Na+].O")[0] == "CC(=O)O" and std("O.O")[0] == "O"
    assert std("[Na+].[Na+].[O-]C([O-])=O")[0] != std("[Ca+2].[O-]C([O-])=O")[0]  # carbonates are inorganic
    assert std("[Na+].[C-]#N")[0] == "[C-]#N.[Na+]"


def test_an_aromatic_carbanion_salt_is_neutralised_in_kekule_form():
    """Sodium dehydroacetate (a cosmetic preservative) as AqSolDB writes it: its parent is dehydroacetic acid."""
    std = Standardizer()
    smi, err = std("[Na+].CC(=O)[C-]1C(=O)OC(=CC1=O)C")
    assert err == "" and smi == std("CC1=CC(=O)C(C(C)=O)C(=O)O1")[0]


def test_bad_and_empty_smiles_are_kept_with_errors():
    frame = pd.DataFrame({"Molecule": ["CCO", "C1CC((", "", None, "c1ccccc1"], "x": [1, 2, 3, 4, 5]})
    out = standardize_frame(frame, "Molecule")
    assert len(out) == 5 and list(out["x"]) == [1, 2, 3, 4, 5]
    assert (out["error"] != "").tolist() == [False, True, True, True, False]
    assert "C1CC((" in out["error"][1]
    assert out["smiles_std"][0] == "CCO"


def test_any_smiles_column_name(tmp_path):
    p = tmp_path / "lib.csv"
    pd.DataFrame({"id": [1, 2], "Canonical_SMILES": ["CCO", "CCN"]}).to_csv(p, index=False)
    frame, col = read_table(p)
    assert col == "Canonical_SMILES"
    frame, col = read_table(p, "canonical_smiles")
    assert col == "Canonical_SMILES"
    with pytest.raises(VaiError, match="no column 'nope'"):
        read_table(p, "nope")
    with pytest.raises(VaiError, match="which column"):
        find_smiles_column(pd.DataFrame({"a": [1]}), None)


def test_sdf_and_smi_inputs(tmp_path):
    from rdkit import Chem

    sdf = tmp_path / "mols.sdf"
    w = Chem.SDWriter(str(sdf))
    for i, s in enumerate(["CCO", "c1ccccc1O"]):
        m = Chem.MolFromSmiles(s)
        m.SetProp("_Name", f"m{i}")
        m.SetProp("activity", str(i))
        w.write(m)
    w.close()
    with open(sdf, "a") as fh:  # a broken record must become a row with an error
        fh.write("broken\n\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0 0.0 0.0 Xx  0  0\nM  END\n$$$$\n")
    frame, col = load_molecules(sdf)
    assert len(frame) == 3
    assert frame["error"].tolist()[:2] == ["", ""] and frame["error"][2] != ""
    assert float(frame["activity"][1]) == 1
    smi = tmp_path / "lib.smi"
    smi.write_text("smiles name\nCCO ethanol\nnot_a_smiles bad\nc1ccccc1\n")
    frame, col = load_molecules(smi)
    assert frame["name"].tolist() == ["ethanol", "bad", ""]
    assert (frame["error"] != "").tolist() == [False, True, False]


def test_iter_chunks_streams(tmp_path):
    p = tmp_path / "lib.csv"
    pd.DataFrame({"smiles": ["C" * (i % 5 + 1) for i in range(23)]}).to_csv(p, index=False)
    sizes = [len(c) for c, _ in iter_chunks(p, None, chunk_size=10)]
    assert sizes == [10, 10, 3]


def test_descriptors_with_shared_per_atom_caches_equal_rdkits_own_calls():
    """E-state and partial-charge descriptors reuse values cached on the molecule: the numbers must be RDKit's."""
    import numpy as np
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    from vai.verticals.discovery.features import descriptor_names, descriptors

    smiles = ["CCO", "OC(=O)c1ccccc1", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "FC(F)(F)c1ccc(Cl)cc1", "C"]
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    got = descriptors(mols)
    fns = dict(Descriptors._descList)
    names = descriptor_names()
    for i, s in enumerate(smiles):
        fresh = Chem.MolFromSmiles(s)  # a molecule without caches, every function forced to recompute
        want = np.array([fns[n](fresh) for n in names], dtype=np.float64)
        want[~np.isfinite(want)] = np.nan
        np.testing.assert_array_equal(got[i], np.clip(want, -1e6, 1e6).astype(np.float32), err_msg=s)
    assert {"MaxEStateIndex", "MinAbsPartialCharge"} <= set(names)


def test_errors_say_why_a_molecule_was_rejected():
    from vai.verticals.discovery.chem import Standardizer

    std = Standardizer()
    assert std("C1CC((")[1].endswith("(not valid SMILES syntax)")
    assert "Explicit valence for atom # 4 Al" in std("CC(=O)O[AlH3](O)O")[1]  # as Tox21 writes aluminium salts
    assert "kekulize" in std("c1cccc1")[1]
    smiles, error = std("[Fe+2].c1cc[cH-]c1.c1cc[cH-]c1")  # ferrocene: no neutral cyclopentadienyl exists
    assert smiles == "" and "'c1cc[cH-]c1' has no valid neutral form" in error and "organometallics" in error


def test_sdf_output_keeps_each_input_records_own_structure(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from vai.verticals.discovery.chem import write_sdf

    source = tmp_path / "conformers.sdf"
    w = Chem.SDWriter(str(source))
    for i, s in enumerate(["OCCOc1ccccc1", "c1ccccc1O"]):
        m = Chem.AddHs(Chem.MolFromSmiles(s))
        AllChem.EmbedMolecule(m, randomSeed=1)
        m.SetProp("_Name", f"m{i}")
        m.SetProp("lot", f"L{i}")
        w.write(m)
    w.close()
    with open(source, "a") as fh:  # an unreadable third record
        fh.write("broken\n\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0 0.0 0.0 Xx  0  0\nM  END\n$$$$\n")
    frame, col = load_molecules(source)
    frame["prediction"] = [1.5, -0.25, float("nan")]
    write_sdf(tmp_path / "out.sdf", frame, col, source_sdf=source)
    out = list(Chem.SDMolSupplier(str(tmp_path / "out.sdf"), removeHs=False))
    assert len(out) == 3
    for i, m in enumerate(out[:2]):  # the 3D conformer and explicit hydrogens as given, the tags plus predictions
        given = Chem.SDMolSupplier(str(source), removeHs=False)[i]
        assert m.GetConformer().Is3D() and any(a.GetSymbol() == "H" for a in m.GetAtoms())
        assert m.GetProp("_Name") == f"m{i}" and m.GetProp("lot") == f"L{i}"
        assert float(m.GetProp("prediction")) == frame["prediction"][i]
        assert m.GetConformer().GetPositions() == pytest.approx(given.GetConformer().GetPositions(), abs=1e-4)
    assert out[2].GetNumAtoms() == 0 and out[2].GetProp("error") != "" and not out[2].HasProp("prediction")
    # without the source: structures drawn in 2D from SMILES
    write_sdf(tmp_path / "flat.sdf", frame, col)
    flat = next(iter(Chem.SDMolSupplier(str(tmp_path / "flat.sdf"))))
    assert not flat.GetConformer().Is3D()
