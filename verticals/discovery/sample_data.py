"""Embedded sample molecules for the demo, the page and the tests (no data files needed).

`COSMETIC_INGREDIENTS` are real structures (UV filters, emollients, preservatives, fragrance and
active ingredients). `generated_library()` adds simple homologous series built from SMILES fragments.
Targets derived from them with RDKit (Crippen logP, heavy-atom count) are SYNTHETIC labels: they
exercise the pipeline end to end; they are not measurements.
"""
from __future__ import annotations

import pandas as pd

COSMETIC_INGREDIENTS = {
    "avobenzone": "COc1ccc(cc1)C(=O)CC(=O)c1ccc(cc1)C(C)(C)C",
    "octocrylene": "CCCCC(CC)COC(=O)C(=C(c1ccccc1)c1ccccc1)C#N",
    "octinoxate": "CCCCC(CC)COC(=O)/C=C/c1ccc(OC)cc1",
    "oxybenzone": "COc1ccc(C(=O)c2ccccc2)c(O)c1",
    "homosalate": "CC1CC(CC(C)(C)C1)OC(=O)c1ccccc1O",
    "octisalate": "CCCCC(CC)COC(=O)c1ccccc1O",
    "ensulizole": "OS(=O)(=O)c1ccc2[nH]c(-c3ccccc3)nc2c1",
    "padimate_o": "CCCCC(CC)COC(=O)c1ccc(N(C)C)cc1",
    "methylparaben": "COC(=O)c1ccc(O)cc1",
    "propylparaben": "CCCOC(=O)c1ccc(O)cc1",
    "butylparaben": "CCCCOC(=O)c1ccc(O)cc1",
    "phenoxyethanol": "OCCOc1ccccc1",
    "benzyl_alcohol": "OCc1ccccc1",
    "sorbic_acid": "C/C=C/C=C/C(=O)O",
    "benzoic_acid": "OC(=O)c1ccccc1",
    "glycerol": "OCC(O)CO",
    "propylene_glycol": "CC(O)CO",
    "butylene_glycol": "CC(O)CCO",
    "urea": "NC(N)=O",
    "panthenol": "CC(C)(CO)C(O)C(=O)NCCCO",
    "niacinamide": "NC(=O)c1cccnc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "salicylic_acid": "OC(=O)c1ccccc1O",
    "lactic_acid": "CC(O)C(=O)O",
    "glycolic_acid": "OCC(=O)O",
    "azelaic_acid": "OC(=O)CCCCCCCC(=O)O",
    "kojic_acid": "OCc1cc(=O)c(O)co1",
    "arbutin": "OC[C@H]1O[C@@H](Oc2ccc(O)cc2)[C@H](O)[C@@H](O)[C@@H]1O",
    "ascorbic_acid": "OC[C@H](O)[C@H]1OC(=O)C(O)=C1O",
    "tocopherol_core": "Cc1c(C)c2OC(C)(CCCC(C)CCCC(C)CCCC(C)C)CCc2c(C)c1O",
    "squalane": "CC(C)CCCC(C)CCCC(C)CCCCC(C)CCCC(C)CCCC(C)C",
    "isopropyl_myristate": "CCCCCCCCCCCCCC(=O)OC(C)C",
    "cetyl_alcohol": "CCCCCCCCCCCCCCCCO",
    "stearic_acid": "CCCCCCCCCCCCCCCCCC(=O)O",
    "oleic_acid": "CCCCCCCC/C=C\\CCCCCCCC(=O)O",
    "dimethicone_unit": "C[Si](C)(C)O[Si](C)(C)C",
    "linalool": "CC(C)=CCCC(C)(O)C=C",
    "limonene": "CC1=CCC(CC1)C(C)=C",
    "geraniol": "CC(C)=CCC/C(C)=C/CO",
    "citral": "CC(C)=CCC/C(C)=C/C=O",
    "eugenol": "COc1cc(CC=C)ccc1O",
    "isoeugenol": "COc1cc(/C=C/C)ccc1O",
    "cinnamal": "O=C/C=C/c1ccccc1",
    "coumarin": "O=c1ccc2ccccc2o1",
    "vanillin": "COc1cc(C=O)ccc1O",
    "menthol": "CC(C)[C@@H]1CC[C@@H](C)C[C@H]1O",
    "camphor": "CC1(C)C2CCC1(C)C(=O)C2",
    "hydroquinone": "Oc1ccc(O)cc1",
    "resorcinol": "Oc1cccc(O)c1",
    "p_phenylenediamine": "Nc1ccc(N)cc1",
    "triclosan": "Oc1cc(Cl)ccc1Oc1ccc(Cl)cc1Cl",
    "chlorphenesin": "OCC(O)COc1ccc(Cl)cc1",
    "ethylhexylglycerin": "CCCCC(CC)COCC(O)CO",
    "allantoin": "NC(=O)NC1NC(=O)NC1=O",
    "bisabolol": "CC(C)=CCCC(C)(O)C1CCC(C)=CC1",
    "retinol": "CC1=C(/C=C/C(C)=C/C=C/C(C)=C/CO)C(C)(C)CCC1",
    "ethanol": "CCO",
    "sodium_lauryl_sulfate": "CCCCCCCCCCCCOS(=O)(=O)[O-].[Na+]",
}

_CHAINS = ["C", "CC", "CCC", "CCCC", "CCCCCC", "CCCCCCCC", "CCCCCCCCCC", "CC(C)", "CC(C)C", "CCC(C)C"]
_HEADS = ["O", "C(=O)O", "OC(=O)C", "N", "C(=O)N", "Oc1ccccc1", "OC(=O)c1ccccc1", "c1ccc(O)cc1", "C#N", "Cl"]


def generated_library() -> list[str]:
    """Homologous series (chain + head group): 100 simple, valid molecules."""
    return [chain + head for chain in _CHAINS for head in _HEADS]


def sample_molecules(n: int | None = None) -> pd.DataFrame:
    """Real ingredients first, then generated molecules: columns name, smiles."""
    rows = [{"name": k, "smiles": v} for k, v in COSMETIC_INGREDIENTS.items()]
    rows += [{"name": f"generated_{i}", "smiles": s} for i, s in enumerate(generated_library())]
    frame = pd.DataFrame(rows).drop_duplicates("smiles").reset_index(drop=True)
    return frame if n is None else frame.head(n)


def synthetic_logp_frame(n: int | None = None) -> pd.DataFrame:
    """Sample molecules with SYNTHETIC targets computed by RDKit: `logp_crippen` and `heavy_atoms`, plus
    `logp_high` (1 when Crippen logP > 2.5) for classification."""
    from rdkit import Chem
    from rdkit.Chem import Crippen

    frame = sample_molecules(n)
    mols = [Chem.MolFromSmiles(s) for s in frame["smiles"]]
    frame["logp_crippen"] = [Crippen.MolLogP(m) for m in mols]
    frame["heavy_atoms"] = [m.GetNumHeavyAtoms() for m in mols]
    frame["logp_high"] = (frame["logp_crippen"] > 2.5).astype(int)
    return frame
