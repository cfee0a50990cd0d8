"""Reading molecules (CSV with any SMILES column, SDF, .smi) and RDKit standardisation.

Every input row survives: a row whose SMILES does not parse or standardise keeps its columns, gets an
empty `smiles_std` and a non-empty `error`, so a batch run never stops on one bad molecule.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.progress import get_logger
from vai.core.tables import open_text, read_user_table

log = get_logger("vai.discovery")

SMILES_CANDIDATES = ("smiles", "canonical_smiles", "smi", "chromophore", "structure", "mol")


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError:  # pragma: no cover - rdkit is a declared dependency of the vertical
        from vai.core.errors import MissingDependencyError

        raise MissingDependencyError("the discovery vertical needs RDKit: pip install 'vai-platform[discovery]'") from None
    RDLogger.DisableLog("rdApp.*")  # parse failures are reported per row in `error`, not as log spam
    return Chem


def _is_organic(frag) -> bool:
    """A carbon bonded to hydrogen or to another carbon: carbonate, cyanide and CO2 count as inorganic."""
    return any(a.GetAtomicNum() == 6 and (a.GetTotalNumHs() > 0 or any(n.GetAtomicNum() == 6 for n in a.GetNeighbors()))
               for a in frag.GetAtoms())


def _has_metal_centre(mol) -> bool:
    """Aluminium, a transition or a post-transition metal (not a group 1-2 counter-ion such as Na+ or Ca2+)."""
    return any(n == 13 or 21 <= n <= 31 or 39 <= n <= 50 or 57 <= n <= 84 or n >= 89
               for n in (a.GetAtomicNum() for a in mol.GetAtoms()))


class Standardizer:
    """Largest organic fragment (an inorganic salt: all its ions), neutralised, canonical SMILES; canonical
    tautomer optional. `keep_salts`: an organic salt keeps its counter-ions (sodium and calcium citrate stay two
    substances), for properties of the salt itself such as solubility; water of crystallisation still goes."""

    def __init__(self, tautomers: bool = False, keep_salts: bool = False):
        Chem = _rdkit()
        from rdkit.Chem.MolStandardize import rdMolStandardize

        self.Chem = Chem
        self.chooser = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
        self.uncharger = rdMolStandardize.Uncharger()
        self.tautomer = rdMolStandardize.TautomerEnumerator() if tautomers else None
        self.keep_salts = keep_salts

    def __call__(self, smiles) -> tuple[str, str]:
        """Returns (standardised SMILES, error); exactly one of them is empty."""
        if smiles is None or (isinstance(smiles, float) and np.isnan(smiles)) or not str(smiles).strip():
            return "", "empty SMILES"
        text = str(smiles).strip()
        try:
            mol = self.Chem.MolFromSmiles(text)
            if mol is None:
                return "", f"RDKit cannot parse SMILES {text[:80]!r}{self._why_unparsable(text)}"
            return self.standardize_mol(mol), ""
        except Exception as exc:  # noqa: BLE001 - RDKit raises assorted errors on exotic inputs
            return "", f"standardisation failed for {text[:80]!r}: {type(exc).__name__}: {exc}"

    def _parent(self, mol):
        """The substance a row stands for: the largest organic fragment (counter-ions and solvents of an organic
        salt dropped). An inorganic salt has no organic parent, and its largest ion is not the substance
        (KI -> HI, calcium nitrate -> nitric acid, sodium and calcium carbonate -> carbonic acid, and KCl and
        NaCl would be one molecule), so it is kept whole, less any water of crystallisation; with `keep_salts`,
        so is an organic salt."""
        frags = self.Chem.GetMolFrags(mol, asMols=True)
        if len(frags) == 1 or (not self.keep_salts and any(_is_organic(f) for f in frags)):
            return self.chooser.choose(mol)
        kept = [f for f in frags if self.Chem.MolToSmiles(f) != "O"]
        if not kept:
            return frags[0]
        parent = kept[0]
        for f in kept[1:]:
            parent = self.Chem.CombineMols(parent, f)
        return parent

    def _uncharge(self, frag, whole):
        """Neutralise. An aromatic carbanion (sodium dehydroacetate, a cosmetic preservative, writes its ring
        [C-] aromatic) neutralised in aromatic form gives a ring RDKit cannot kekulise, so the Kekule form is
        neutralised instead. Not for metal complexes: ferrocene's rings would become cyclopentadiene, a
        different substance, so those keep failing with their own message."""
        Chem = self.Chem
        out = self.uncharger.uncharge(frag)
        if Chem.MolFromSmiles(Chem.MolToSmiles(out)) is not None or _has_metal_centre(whole):
            return out
        try:
            kek = Chem.RWMol(frag)
            Chem.Kekulize(kek, clearAromaticFlags=True)
            fixed = self.uncharger.uncharge(kek.GetMol())
            Chem.SanitizeMol(fixed)
            return fixed
        except Exception:  # noqa: BLE001 - RDKit's kekulisation/sanitisation errors have no common base
            return out

    def _why_unparsable(self, text: str) -> str:
        """RDKit's reason (syntax, or the valence or aromaticity problem found when sanitising), for the row's error."""
        raw = self.Chem.MolFromSmiles(text, sanitize=False)
        if raw is None:
            return " (not valid SMILES syntax)"
        try:
            self.Chem.SanitizeMol(raw)
        except Exception as exc:  # noqa: BLE001 - RDKit's sanitisation errors have no common base class
            return f": {str(exc).strip()}"
        return ""

    def standardize_mol(self, mol) -> str:
        frag = self._parent(mol)
        mol = self._uncharge(frag, whole=mol)
        if self.tautomer is not None:
            mol = self.tautomer.Canonicalize(mol)
        if mol.GetNumAtoms() == 0:
            raise ValueError("no atoms left after standardisation")
        smiles = self.Chem.MolToSmiles(mol)
        if self.Chem.MolFromSmiles(smiles) is None:  # e.g. the cyclopentadienyl ring of a metallocene
            raise ValueError(f"the largest organic fragment {self.Chem.MolToSmiles(frag)!r} has no valid neutral form "
                             f"({smiles!r} does not parse); metal complexes and organometallics are outside what "
                             "these models cover")
        return smiles


def standardize_smiles(smiles, tautomers: bool = False, keep_salts: bool = False) -> tuple[list[str], list[str]]:
    """Standardise a sequence of SMILES; returns (standardised, errors), aligned with the input."""
    std = Standardizer(tautomers, keep_salts)
    out = [std(s) for s in smiles]
    return [o[0] for o in out], [o[1] for o in out]


def find_smiles_column(frame: pd.DataFrame, smiles_col: str | None, source: str = "input") -> str:
    """The SMILES column: the one named, else the first whose name looks like SMILES (case-insensitive)."""
    if smiles_col:
        if smiles_col in frame.columns:
            return smiles_col
        lower = {c.lower(): c for c in frame.columns}
        if smiles_col.lower() in lower:
            return lower[smiles_col.lower()]
        raise VaiError(f"{source}: no column {smiles_col!r} (columns: {', '.join(map(str, frame.columns))}); "
                       "pass the SMILES column with --smiles-col")
    lower = {str(c).lower(): c for c in frame.columns}
    for cand in SMILES_CANDIDATES:
        if cand in lower:
            return lower[cand]
    raise VaiError(f"{source}: cannot tell which column holds SMILES (columns: {', '.join(map(str, frame.columns))}); "
                   "pass it with --smiles-col")


def read_table(path: str | Path, smiles_col: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read CSV/TSV, SDF or .smi into a DataFrame; returns (frame, SMILES column name)."""
    p = Path(path)
    if not p.exists():
        raise VaiError(f"{p}: file not found")
    kind = table_kind(p)
    if kind == "sdf":
        return _read_sdf(p), "smiles"
    if kind == "smi":
        return _read_smi(p), "smiles"
    frame = read_user_table(p)
    return frame, find_smiles_column(frame, smiles_col, str(p))


def table_kind(p: Path) -> str:
    """The file kind from its name: sdf, smi, or table (CSV/TSV/Excel); `.gz` is looked through (`lib.smi.gz`)."""
    suffix = Path(p.name[:-3]).suffix.lower() if p.name.lower().endswith(".gz") else p.suffix.lower()
    return {".sdf": "sdf", ".sd": "sdf", ".smi": "smi", ".smiles": "smi"}.get(suffix, "table")


def _smi_rows(p: Path) -> Iterator[dict]:
    """A .smi file's rows: the first whitespace-separated token is the SMILES (`#` is a triple bond inside
    it), the rest of the line is the name (spaces allowed); blank lines, `#` comment lines and a header skipped."""
    with open_text(p) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if parts[0].lower() == "smiles":  # a header line
                continue
            yield {"smiles": parts[0], "name": parts[1] if len(parts) > 1 else ""}


def _read_smi(p: Path) -> pd.DataFrame:
    return pd.DataFrame(list(_smi_rows(p)), columns=["smiles", "name"])


def _sdf_records(p: Path, **kwargs):
    """RDKit's streaming reader over a plain or gzipped SD file."""
    Chem = _rdkit()
    if p.suffix.lower() != ".gz":
        return Chem.ForwardSDMolSupplier(str(p), **kwargs)
    import gzip

    return Chem.ForwardSDMolSupplier(gzip.open(p), **kwargs)


def _read_sdf(p: Path) -> pd.DataFrame:
    """One row per record, with the SD tags as columns; a record RDKit cannot read keeps an `error`."""
    Chem = _rdkit()
    supplier = _sdf_records(p, sanitize=True, removeHs=True)
    rows = []
    for i, mol in enumerate(supplier):
        if mol is None:
            rows.append({"smiles": "", "sdf_record": i + 1, "read_error": f"SDF record {i + 1} cannot be read by RDKit"})
            continue
        row = {"smiles": Chem.MolToSmiles(mol), "sdf_record": i + 1}
        if mol.HasProp("_Name") and mol.GetProp("_Name"):
            row["name"] = mol.GetProp("_Name")
        row.update(mol.GetPropsAsDict())
        rows.append(row)
    return pd.DataFrame(rows)


def write_sdf(path: str | Path, frame: pd.DataFrame, smiles_col: str, source_sdf: str | Path | None = None) -> Path:
    """Results as an SD file, atomically: one record per row in row order (a row whose SMILES cannot be read gets
    an empty molecule, so records still line up with the input and its `error` tag says why), every column as an
    SD tag (blank values left out), `name` as the record title, 2D coordinates for drawing. Tools such as
    DataWarrior, KNIME or Pipeline Pilot open it with the predictions beside the structures; gzipped for `.sdf.gz`.
    `source_sdf`: the SD file the rows were read from (`frame` has its `sdf_record` column): each record keeps its
    own structure as given (coordinates, 3D conformers, explicit hydrogens) instead of one redrawn from SMILES."""
    import math

    from vai.core.io import atomic_path

    Chem = _rdkit()
    originals = _original_structures(source_sdf, frame) if source_sdf is not None else None
    with atomic_path(path) as tmp, contextlib.ExitStack() as stack:
        if str(path).lower().endswith(".gz"):  # `hits.sdf.gz`: RDKit writes through a gzip text stream
            import gzip

            writer = Chem.SDWriter(stack.enter_context(gzip.open(tmp, "wt", encoding="utf-8")))
        else:
            writer = Chem.SDWriter(str(tmp))
        try:
            for i, row in enumerate(frame.itertuples(index=False, name=None)):
                values = dict(zip(frame.columns, row))
                mol = originals[i] if originals is not None else _drawn(values.get(smiles_col))
                if mol is None:
                    mol = Chem.Mol()
                for name in list(mol.GetPropNames()):  # an original's tags: the row's columns carry them
                    mol.ClearProp(name)
                if isinstance(values.get("name"), str):
                    mol.SetProp("_Name", values["name"])
                for col, value in values.items():
                    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
                        continue
                    mol.SetProp(str(col), " ".join(str(value).splitlines()))  # a blank line would end the tag's data
                writer.write(mol)
        finally:
            writer.close()
    return Path(path)


def _drawn(smiles):
    """A molecule from SMILES with 2D coordinates, or None."""
    if not isinstance(smiles, str) or not smiles:
        return None
    Chem = _rdkit()
    from rdkit.Chem import rdDepictor

    mol = Chem.MolFromSmiles(smiles)
    if mol is not None:
        rdDepictor.Compute2DCoords(mol)
    return mol


def _original_structures(source_sdf, frame: pd.DataFrame) -> list:
    """Each row's own record from the SD file it came from (by its `sdf_record` number), unsanitised and with its
    hydrogens, so nothing about the structure changes; None where the record could not be read."""
    if "sdf_record" not in frame.columns:
        raise VaiError(f"{source_sdf}: the rows carry no sdf_record numbers to find their records by")
    wanted = pd.to_numeric(frame["sdf_record"], errors="coerce")
    records = {}
    needed = set(int(x) for x in wanted.dropna())
    for k, mol in enumerate(_sdf_records(Path(source_sdf), sanitize=False, removeHs=False), start=1):
        if k in needed:
            records[k] = mol
    return [records.get(int(x)) if not pd.isna(x) else None for x in wanted]


# columns standardisation and prediction write; an input column of the same name is renamed, never lost
OUTPUT_COLUMNS = frozenset({"smiles_std", "error", "prediction", "prob", "uncertainty", "interval_low", "interval_high",
                            "in_domain", "max_similarity", "prediction_set", "alerts"})


def standardize_frame(frame: pd.DataFrame, smiles_col: str, tautomers: bool = False,
                      keep_salts: bool = False) -> pd.DataFrame:
    """Add `smiles_std` and `error` columns (all input columns kept, row order kept). An input column named
    like one the predictor writes is kept as `input_<name>` rather than overwritten."""
    out = frame.copy()
    clash = [c for c in out.columns if c in OUTPUT_COLUMNS and c != smiles_col]
    if clash:
        out = out.rename(columns={c: f"input_{c}" for c in clash})
        log.warning("input column(s) %s share a name with output columns: kept as %s", ", ".join(clash),
                    ", ".join(f"input_{c}" for c in clash))
    std, err = standardize_smiles(out[smiles_col].tolist(), tautomers, keep_salts)
    if "read_error" in out.columns:  # SDF records that never became molecules
        err = [re if isinstance(re, str) and re else e for re, e in zip(out["read_error"], err)]
        out = out.drop(columns=["read_error"])
    out["smiles_std"] = std
    out["error"] = err
    return out


def load_molecules(path: str | Path, smiles_col: str | None = None, tautomers: bool = False) -> tuple[pd.DataFrame, str]:
    frame, col = read_table(path, smiles_col)
    return standardize_frame(frame, col, tautomers), col


def iter_chunks(path: str | Path, smiles_col: str | None = None, chunk_size: int = 10_000) -> Iterator[tuple[pd.DataFrame, str]]:
    """Stream a CSV/.smi library in chunks (the whole file never sits in memory); SDF is read in one go."""
    p = Path(path)
    if not p.exists():
        raise VaiError(f"{p}: file not found")
    kind = table_kind(p)
    if kind == "sdf":
        frame, col = read_table(p, smiles_col)
        for start in range(0, len(frame), chunk_size):
            yield frame.iloc[start:start + chunk_size].reset_index(drop=True), col
        return
    if kind == "smi":  # the same line rules as read_table, streamed
        rows: list[dict] = []
        for row in _smi_rows(p):
            rows.append(row)
            if len(rows) == chunk_size:
                yield pd.DataFrame(rows, columns=["smiles", "name"]), "smiles"
                rows = []
        if rows:
            yield pd.DataFrame(rows, columns=["smiles", "name"]), "smiles"
        return
    col = None
    chunks = read_user_table(p, chunksize=chunk_size)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:  # a malformed row deep in the file
            raise VaiError(f"{p}: cannot read as CSV: {str(exc).strip()}") from None
        col = col or find_smiles_column(chunk, smiles_col, str(p))
        yield chunk, col


def to_mols(smiles: list[str]):
    Chem = _rdkit()
    return [Chem.MolFromSmiles(s) if s else None for s in smiles]
