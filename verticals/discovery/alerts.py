"""Structural alerts for skin sensitisation: substructures that make a molecule react with skin proteins (the
molecular initiating event of the OECD adverse outcome pathway for skin sensitisation), grouped by the
reaction-mechanistic domains of Aptula & Roberts (Chem. Res. Toxicol. 2006, 19, 1097) and the SMARTS-based
scheme of Enoch, Madden & Cronin (SAR QSAR Environ. Res. 2008, 19, 555), plus the pre-/pro-haptens that become
reactive by air oxidation or skin metabolism.

An alert is evidence, not a verdict: potency depends on reactivity and skin penetration, and many alerted
molecules are weak or non-sensitisers. It is shown next to a model's prediction so a chemist sees the mechanism
a molecule could act by, and can be given to a model as features (`PropertyPredictor(..., alerts=True)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Alert:
    name: str
    domain: str   # reaction-mechanistic domain
    smarts: str


ALERTS: tuple[Alert, ...] = (
    # Michael acceptors: conjugated double/triple bonds next to an electron-withdrawing group
    Alert("alpha,beta-unsaturated aldehyde", "Michael acceptor", "[CX3]=[CX3][CX3H1]=O"),
    Alert("alpha,beta-unsaturated ketone", "Michael acceptor", "[CX3]=[CX3]C(=O)[#6]"),
    Alert("acrylate / alpha,beta-unsaturated ester", "Michael acceptor", "[CX3;H1,H2]=[CX3]C(=O)[OX2][#6]"),
    Alert("acrylamide", "Michael acceptor", "[CX3;H2]=[CX3]C(=O)[NX3]"),
    Alert("quinone", "Michael acceptor", "O=[#6]1[#6]=,:[#6][#6](=O)[#6]=,:[#6]1"),
    Alert("ortho-quinone", "Michael acceptor", "O=[#6]1[#6](=O)[#6]=,:[#6][#6]=,:[#6]1"),
    Alert("maleimide", "Michael acceptor", "O=C1C=CC(=O)N1"),
    Alert("vinyl sulfone", "Michael acceptor", "[CX3]=[CX3]S(=O)(=O)"),
    Alert("nitroalkene", "Michael acceptor", "[CX3]=[CX3][N+](=O)[O-]"),
    Alert("alkynone / propiolate", "Michael acceptor", "[CX2]#[CX2]C(=O)"),
    Alert("vinyl pyridine", "Michael acceptor", "[CX3;H2]=[CX3]c1ccccn1"),
    # nucleophilic aromatic substitution: a leaving group activated by nitro groups or ring nitrogens
    Alert("halo-nitroarene (ortho/para)", "SNAr electrophile",
          "[F,Cl,Br,I][c;$(c:c[N+](=O)[O-]),$(c1:c:c:c([N+](=O)[O-]):c:c1)]"),
    Alert("halo-azine (pyrimidine, triazine)", "SNAr electrophile", "[F,Cl,Br,I]c1n[c,n][c,n][c,n]n1"),
    # bimolecular nucleophilic substitution
    Alert("primary alkyl halide", "SN2 electrophile", "[CH2X4;!$(C([F,Cl,Br,I])[F,Cl,Br,I])][Cl,Br,I]"),
    Alert("benzylic or allylic halide", "SN2 electrophile", "[CH2X4]([Cl,Br,I])[$(c),$(C=C)]"),
    Alert("epoxide", "SN2 electrophile", "C1OC1"),
    Alert("aziridine", "SN2 electrophile", "C1NC1"),
    Alert("alkyl sulfonate or sulfate ester", "SN2 electrophile", "[CX4]O[SX4](=O)(=O)[#6,O]"),
    Alert("beta-lactone", "SN2 electrophile", "O=C1CCO1"),
    # Schiff base formers: carbonyls that condense with lysine amino groups
    Alert("aldehyde", "Schiff base former", "[CX3H1](=O)[#6]"),
    Alert("formaldehyde", "Schiff base former", "[CX3H2]=O"),
    Alert("1,2-dicarbonyl", "Schiff base former", "[#6]C(=O)C(=O)[#6]"),
    # acyl transfer agents
    Alert("acid anhydride", "acyl transfer agent", "[CX3](=O)O[CX3](=O)"),
    Alert("acyl halide", "acyl transfer agent", "[CX3](=O)[F,Cl,Br,I]"),
    Alert("isocyanate / isothiocyanate", "acyl transfer agent", "N=C=[O,S]"),
    Alert("phenyl ester", "acyl transfer agent", "c[OX2][CX3](=O)[#6]"),
    Alert("isothiazolinone", "acyl transfer agent", "O=[#6]1[#6]=,:[#6][#16][#7]1"),
    # thiol reactive
    Alert("disulfide", "thiol exchange", "[#16X2][#16X2]"),
    Alert("thiol", "thiol exchange", "[SX2H1][#6]"),
    # pre-/pro-haptens: become protein-reactive after air oxidation or metabolism
    Alert("catechol", "pro-hapten (oxidation to quinone)", "[OX2H]c:c[OX2H]"),
    Alert("hydroquinone", "pro-hapten (oxidation to quinone)", "[OX2H]c1ccc([OX2H])cc1"),
    Alert("para-phenylenediamine / para-aminophenol", "pro-hapten (oxidation to quinone imine)",
          "[NX3;H2,H1;!$(NC=O)]c1ccc([$([NX3;H2,H1;!$(NC=O)]),$([OX2H])])cc1"),
    Alert("hydroperoxide", "pre-hapten (autoxidation product)", "[OX2H][OX2]"),
)


@lru_cache(maxsize=1)
def _patterns():
    from rdkit import Chem

    pats = []
    for a in ALERTS:
        p = Chem.MolFromSmarts(a.smarts)
        if p is None:  # a typo here would silently disable an alert
            raise ValueError(f"alert {a.name!r}: SMARTS {a.smarts!r} does not parse")
        pats.append(p)
    return pats


def alert_matrix(mols) -> np.ndarray:
    """(molecules x alerts) 0/1 matrix, columns in `ALERTS` order; a None molecule gives a row of zeros."""
    pats = _patterns()
    out = np.zeros((len(mols), len(ALERTS)), dtype=np.float32)
    for i, m in enumerate(mols):
        if m is not None:
            out[i] = [m.HasSubstructMatch(p) for p in pats]
    return out


def alerts_for(mol) -> list[Alert]:
    """The alerts a molecule (RDKit Mol) raises, in `ALERTS` order."""
    return [a for a, hit in zip(ALERTS, alert_matrix([mol])[0]) if hit]


def describe(mol) -> str:
    """'name [domain]; ...' for a molecule's alerts, '' when it raises none."""
    return "; ".join(f"{a.name} [{a.domain}]" for a in alerts_for(mol))
