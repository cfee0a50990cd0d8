"""Screening a molecule library against several property models with constraints.

The library is streamed in chunks (written as Parquet parts, never held whole in memory); each chunk is
one item of a `vai.core.jobs.run_job` (engine local or ray, resumable, per-chunk errors recorded). Each
chunk is standardised, predicted by every model, checked against the constraints and scored by a
desirability (geometric mean of smooth per-constraint scores). Pareto flags come from the chunk fronts
(the front of a union is the front of the union of the fronts), so the merge stays small.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vai.core.device import usable_cpus
from vai.core.errors import VaiError
from vai.core.io import atomic_write_json, atomic_write_table
from vai.core.progress import get_logger

log = get_logger("vai.discovery")
# below this many molecules worker start-up (imports, model loading: seconds each) outweighs the parallel gain
PARALLEL_FROM_ROWS = 20_000

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(>=|<=|>|<|=|in)\s*(.+?)\s*$")


@dataclass
class Constraint:
    name: str
    op: str                 # ">", "<" or "range"
    low: float | None = None
    high: float | None = None
    scale: float | None = None

    def passes(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            if self.op == ">":
                return x > self.low
            if self.op == "<":
                return x < self.high
            return (x >= self.low) & (x <= self.high)

    def desirability(self, x: np.ndarray, scale: float) -> np.ndarray:
        """Smooth in [0, 1]; 0.5 at a threshold, -> 1 well inside the allowed side."""
        s = self.scale or scale
        with np.errstate(over="ignore", invalid="ignore"):
            if self.op == ">":
                d = 1 / (1 + np.exp(-(x - self.low) / s))
            elif self.op == "<":
                d = 1 / (1 + np.exp((x - self.high) / s))
            else:
                d = (1 / (1 + np.exp(-(x - self.low) / s))) * (1 / (1 + np.exp((x - self.high) / s)))
        return np.nan_to_num(d, nan=0.0)

    def objective(self, x: np.ndarray) -> np.ndarray:
        """Higher is better (for Pareto): the value, its negative, or minus the distance to the range centre."""
        if self.op == ">":
            return x
        if self.op == "<":
            return -x
        return -np.abs(x - (self.low + self.high) / 2)


def parse_constraint(text: str) -> Constraint:
    """`logS>-3`, `logkp<-2.5`, `sens<0.5` (probability), `lambda_max=290:320` or `lambda_max in 290..320`."""
    m = _CONSTRAINT.match(text)
    if not m:
        raise VaiError(f"constraint {text!r}: write NAME>VALUE, NAME<VALUE or NAME=LOW:HIGH (e.g. logS>-3)")
    name, op, value = m.groups()
    try:
        if op in ("=", "in"):
            lo, hi = re.split(r"\s*(?:\.\.|:|,)\s*", value.strip("[]() "))
            lo, hi = float(lo), float(hi)
            if lo > hi:
                raise VaiError(f"constraint {text!r}: the range low end {lo} is above the high end {hi}")
            return Constraint(name, "range", lo, hi)
        v = float(value)
    except ValueError:
        raise VaiError(f"constraint {text!r}: {value!r} is not a number or LOW:HIGH range") from None
    return Constraint(name, ">", low=v) if op in (">", ">=") else Constraint(name, "<", high=v)


def parse_model_specs(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        if "=" not in spec:
            raise VaiError(f"--model {spec!r}: write NAME=MODEL_DIR (e.g. logS=models/solubility)")
        name, path = spec.split("=", 1)
        if not Path(path).is_dir():
            raise VaiError(f"--model {spec!r}: {path} is not a model directory")
        out[name.strip()] = path
    return out


def pareto_mask(objectives: np.ndarray) -> np.ndarray:
    """True for rows no other row dominates (all objectives maximised)."""
    n = len(objectives)
    keep = np.ones(n, dtype=bool)
    if n == 0 or objectives.shape[1] == 0:
        return keep
    order = np.argsort(-objectives.sum(axis=1))
    obj = objectives[order]
    front: list[int] = []
    for i in range(n):
        row = obj[i]
        dominated = False
        for j in front:
            if np.all(obj[j] >= row) and np.any(obj[j] > row):
                dominated = True
                break
        if not dominated:
            front.append(i)
    mask = np.zeros(n, dtype=bool)
    mask[order[front]] = True
    return mask


_MODEL_CACHE: dict[str, Any] = {}


def _load(path: str):
    from .models import PropertyPredictor

    if path not in _MODEL_CACHE:
        _MODEL_CACHE[path] = PropertyPredictor.load(path)
    return _MODEL_CACHE[path]


def model_outputs(name: str, model) -> list[tuple[str, str, int]]:
    """(library column, prediction-column suffix, target index) for each value a model adds to the library.

    One column `name` for a single-target or multiclass model; one `name.TARGET` per target for a multi-task
    model (e.g. `tox.NR-AR`), so a constraint can name any one of its targets."""
    if len(model.targets) == 1 or model.task == "multiclass":
        return [(name, "", 0)]
    return [(f"{name}.{t}", f"_{t}", i) for i, t in enumerate(model.targets)]


def prediction_columns(name: str, model, pred: pd.DataFrame, in_domain: bool = True) -> dict[str, np.ndarray]:
    """The columns a model's predictions add to a table, named as `model_outputs` names them: the value
    (`prob` for a binary model), for regression also `<column>_interval_low` / `_interval_high`,
    `<name>_in_domain`, and `<name>_alerts` for a model trained with structural alerts. Shared by the screen and the page; an empty `pred` (no valid molecule) gives empty
    columns of the same names."""
    def col(c: str) -> np.ndarray:
        return pred[c].to_numpy() if len(pred) else np.empty(0)

    value = "prob" if model.task == "binary" else "prediction"
    cols: dict[str, np.ndarray] = {}
    for out_col, sfx, _ in model_outputs(name, model):
        cols[out_col] = col(value + sfx)
        if model.task == "regression":
            for c in ("interval_low", "interval_high"):
                cols[f"{out_col}_{c}"] = col(c + sfx)
    if in_domain:
        cols[f"{name}_in_domain"] = col("in_domain")
    if getattr(model, "alerts", False):  # the structural alerts the molecule raises (see alerts.py)
        cols[f"{name}_alerts"] = col("alerts")
    return cols


def _constraint_columns(models: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Library column -> (model name, target index), for every column the models add."""
    return {col: (name, t) for name, path in models.items() for col, _, t in model_outputs(name, _load(path))}


def score_chunk(chunk_path: str, *, models: dict[str, str], constraints: list[dict], smiles_col: str,
                out_dir: str, similar_to: list[str] | None = None, solvent: str | None = None,
                domain: bool = True) -> dict[str, Any]:
    """One job item: score a Parquet chunk, write `<out_dir>/scored/<chunk>.parquet`, return counts."""
    from .chem import standardize_frame, to_mols
    from .features import morgan_bitvects

    frame = pd.read_parquet(chunk_path)
    frame = standardize_frame(frame, smiles_col)
    ok = frame["error"] == ""
    cons = [Constraint(**c) for c in constraints]
    by_rules = {False: frame.loc[ok, "smiles_std"].tolist()}  # the valid rows' SMILES per keep_salts setting
    if any(_load(p).keep_salts for p in models.values()):
        salts = standardize_frame(frame.loc[ok, [smiles_col]], smiles_col, keep_salts=True)
        # a row valid by default rules is valid with its counter-ions too (they only add fragments)
        by_rules[True] = [s or p for s, p in zip(salts["smiles_std"], by_rules[False])]
    valid_smiles = by_rules[False]
    shared: dict[tuple, Any] = {}  # features computed once per chunk and reused by every compatible model
    kinds = {(bool(_load(p).gbms or _load(p).gps), bool(_load(p).mpnns)) for p in models.values()}  # tabular, graphs
    full = len({k for kind in kinds for k, on in zip(("gbm", "mpnn"), kind) if on}) > 1  # graphs only if needed
    for name, path in models.items():
        model = _load(path)
        if model.solvent and not solvent:
            raise VaiError(f"model {name!r} needs a solvent: pass --solvent SMILES (e.g. CCO for ethanol)")
        solvents = [solvent] * len(valid_smiles) if model.solvent else None
        smiles = by_rules[model.keep_salts]
        key = (model.use_descriptors, bool(model.solvent), model.alerts, model.keep_salts)
        if key not in shared and smiles:
            shared[key] = model.featurize(smiles, solvents, full=full)
        pred = model.predict_smiles(smiles, solvents, domain=domain, features=shared.get(key))
        for col, values in prediction_columns(name, model, pred, in_domain=domain).items():
            frame[col] = False if col.endswith("_in_domain") else "" if col.endswith("_alerts") else np.nan
            frame.loc[ok, col] = values
    passes = ok.to_numpy().copy()
    desir = np.ones(len(frame))
    columns = _constraint_columns(models)
    for c in cons:
        if c.name not in columns:
            raise VaiError(f"constraint on {c.name!r} but no model gives {c.name!r} (columns: {', '.join(columns)})")
        x = frame[c.name].to_numpy(dtype=float)
        passes &= np.nan_to_num(c.passes(x), nan=False).astype(bool)
        name, t = columns[c.name]
        model = _load(models[name])
        scale = 0.05 if model.task != "regression" else max(0.05, 0.25 * float(model.target_sd(t) or 1.0))
        desir *= c.desirability(x, scale)
    frame["desirability"] = np.where(ok, desir ** (1.0 / max(1, len(cons))), np.nan) if cons else np.nan
    frame["passes"] = passes
    if similar_to:
        queries = [f for f in morgan_bitvects(to_mols(similar_to)) if f is not None]
        from rdkit import DataStructs

        sims = np.full(len(frame), np.nan)
        for i, fp in zip(np.flatnonzero(ok.to_numpy()), morgan_bitvects(to_mols(frame.loc[ok, "smiles_std"].tolist()))):
            if fp is not None:
                sims[i] = max(max(DataStructs.BulkTanimotoSimilarity(q, [fp])) for q in queries) if len(queries) > 1 \
                    else DataStructs.TanimotoSimilarity(queries[0], fp)
        frame["similarity"] = sims
    frame["pareto_local"] = False
    if cons and passes.any():
        obj = np.stack([c.objective(frame.loc[passes, c.name].to_numpy(dtype=float)) for c in cons], axis=1)
        frame.loc[passes, "pareto_local"] = pareto_mask(obj)
    scored = Path(out_dir) / "scored" / (Path(chunk_path).stem + ".parquet")
    atomic_write_table(scored, frame)
    return {"rows": int(len(frame)), "valid": int(ok.sum()), "passing": int(passes.sum()), "scored": str(scored)}


@dataclass
class ScreenResult:
    rows: int
    valid: int
    passing: int
    ranked_path: Path
    seconds: float
    failed_chunks: dict[str, str]
    molecules_per_s: float

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["ranked_path"] = str(self.ranked_path)
        return d


def plot_ranked(ranked: pd.DataFrame, properties: list[str], path: Path) -> Path | None:
    """What the ranked table holds, as a picture: two predicted properties against each other (the Pareto front
    marked), or one property's histogram; nothing to draw without predicted properties."""
    if ranked.empty or not properties:
        return None
    from vai.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    if len(properties) >= 2:
        x, y = properties[:2]
        front = ranked["pareto"].to_numpy(bool) if "pareto" in ranked else np.zeros(len(ranked), bool)
        ax.scatter(ranked.loc[~front, x], ranked.loc[~front, y], s=10, alpha=0.6, label="ranked")
        if front.any():
            ax.scatter(ranked.loc[front, x], ranked.loc[front, y], s=22, color="crimson", label="Pareto front")
        ax.set_xlabel(f"predicted {x}")
        ax.set_ylabel(f"predicted {y}")
        ax.legend(fontsize=8)
    else:
        ax.hist(ranked[properties[0]].dropna(), bins=30)
        ax.set_xlabel(f"predicted {properties[0]}")
        ax.set_ylabel("molecules")
    ax.set_title(f"{len(ranked)} molecules in ranked.csv", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


RANKED_SDF_MAX = 10_000  # ranked.sdf and ranked.xlsx beside ranked.csv up to this many rows (~0.15 ms a molecule: BENCHMARKS.md)


def screen_library(library: str | Path, out_dir: str | Path, *, models: dict[str, str] | None = None,
                   constraints: Sequence[str | Constraint] = (), smiles_col: str | None = None,
                   similar_to: Sequence[str] | None = None, solvent: str | None = None, top: int = 1000,
                   chunk_size: int = 5000, engine: str = "local", workers: int | None = None,
                   address: str | None = None, domain: bool = True, store_run=None) -> ScreenResult:
    """Score a library (CSV/.smi/SDF); writes `ranked.csv` (passing molecules by desirability with a
    `pareto` flag; the most similar molecules when only a similarity query is given; every molecule's
    predictions in library order when models are given without constraints or query). `workers=None`: one
    process per usable CPU for libraries of `PARALLEL_FROM_ROWS` molecules or more, in-process below that."""
    import time

    from vai.core.jobs import run_job

    from .chem import iter_chunks, to_mols

    models = dict(models or {})
    cons = [c if isinstance(c, Constraint) else parse_constraint(c) for c in constraints]
    if not models and not similar_to:
        raise VaiError("nothing to screen for: pass --model NAME=DIR (with --constraint) and/or --similar-to SMILES")
    for query in similar_to or []:  # fail before screening, not in every chunk
        if not query or not query.strip() or to_mols([query])[0] is None:
            raise VaiError(f"--similar-to {query!r}: RDKit cannot parse this SMILES")
    for path in models.values():  # fail early on a bad model directory, before reading the library
        m = _load(path)
        if m.solvent and not solvent:
            raise VaiError(f"model {path} takes the solvent as an input: pass --solvent SMILES (e.g. CCO)")
    columns = _constraint_columns(models)
    for c in cons:
        if c.name not in columns:
            targets = [k for k in columns if k.startswith(c.name + ".")]
            hint = (f"model {c.name!r} predicts several targets: name one, e.g. {targets[0]!r}" if targets
                    else f"pass --model {c.name}=MODEL_DIR")
            raise VaiError(f"constraint on {c.name!r} but no model gives {c.name!r} "
                           f"(columns: {', '.join(columns) or 'none'}); {hint}")
    out = Path(out_dir)
    chunks_dir = out / "chunks"
    chunks_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    items, col, n_rows = [], None, 0
    for i, (chunk, col) in enumerate(iter_chunks(library, smiles_col, chunk_size)):
        n_rows += len(chunk)
        p = chunks_dir / f"chunk_{i:06d}.parquet"
        if not p.exists():
            chunk = chunk.copy()
            chunk.insert(0, "row", np.arange(i * chunk_size, i * chunk_size + len(chunk)))
            atomic_write_table(p, chunk.astype({c: str for c in chunk.columns if chunk[c].dtype == object}))
        items.append(str(p))
    if not items:
        raise VaiError(f"{library}: the library has no rows")
    if workers is None and engine == "local":
        workers = 1 if n_rows < PARALLEL_FROM_ROWS else min(usable_cpus(), len(items))
        log.info("screening %d molecules in %d chunks with %d worker process%s", n_rows, len(items), workers,
                 "" if workers == 1 else "es")
    job = run_job(score_chunk, items, out_dir=out / "job", key=lambda p: Path(p).stem, engine=engine,
                  workers=workers, address=address, desc="library chunks", store_run=store_run,
                  fn_kwargs={"models": models, "constraints": [asdict(c) for c in cons], "smiles_col": col,
                             "out_dir": str(out), "similar_to": list(similar_to or []), "solvent": solvent,
                             "domain": domain})
    rows = valid = passing = 0
    keep = []
    for key, res in sorted(job.results.items()):
        if not res:
            continue
        rows += res["rows"]
        valid += res["valid"]
        passing += res["passing"]
        frame = pd.read_parquet(res["scored"])
        if cons:
            # the chunk's top passing rows, plus its Pareto-front rows (needed for the global front)
            passing_rows = frame[frame["passes"]]
            frame = pd.concat([passing_rows.nlargest(top, "desirability"), passing_rows[passing_rows["pareto_local"]]])
            frame = frame.drop_duplicates("row")
        elif similar_to:
            frame = frame.nlargest(top, "similarity")
        keep.append(frame)  # models alone (no constraint, no query): every molecule's predictions, library order
    ranked = pd.concat(keep, ignore_index=True) if keep else pd.DataFrame()
    if len(ranked) and cons:
        obj = np.stack([c.objective(ranked[c.name].to_numpy(dtype=float)) for c in cons], axis=1)
        cand = ranked["pareto_local"].to_numpy()
        flags = np.zeros(len(ranked), dtype=bool)
        flags[np.flatnonzero(cand)] = pareto_mask(obj[cand])
        ranked["pareto"] = flags
        ranked = ranked.drop(columns=["pareto_local"]).sort_values(["desirability", "row"], ascending=[False, True])
        ranked = ranked.head(max(top, int(flags.sum())))
    elif len(ranked):
        ranked = ranked.drop(columns=["pareto_local", "desirability", "passes"], errors="ignore")
        if similar_to:
            ranked = ranked.sort_values(["similarity", "row"], ascending=[False, True]).head(top)
    ranked_path = out / "ranked.csv"
    ranked = ranked.reset_index(drop=True)
    atomic_write_table(ranked_path, ranked, like=library)  # in the library's separator and decimal mark
    if 0 < len(ranked) <= RANKED_SDF_MAX:
        atomic_write_table(out / "ranked.xlsx", ranked)  # the hits in a workbook, as a chemist opens them
    else:
        (out / "ranked.xlsx").unlink(missing_ok=True)  # an earlier run's hits must not pass for this run's
    if 0 < len(ranked) <= RANKED_SDF_MAX and "smiles_std" in ranked.columns:
        from .chem import write_sdf  # the hits with their structures, for DataWarrior, KNIME, a sketcher

        write_sdf(out / "ranked.sdf", ranked, "smiles_std")
    else:
        (out / "ranked.sdf").unlink(missing_ok=True)
        if len(ranked) > RANKED_SDF_MAX:
            log.info("ranked.sdf and ranked.xlsx not written: %d rows (more than %d; rank with constraints or --top "
                     "to get them)", len(ranked), RANKED_SDF_MAX)
    plot_ranked(ranked, [n for n in (models or {}) if n in ranked.columns], out / "ranked.png")
    seconds = time.perf_counter() - t0
    result = ScreenResult(rows=rows, valid=valid, passing=passing, ranked_path=ranked_path, seconds=round(seconds, 3),
                          failed_chunks=job.failed, molecules_per_s=round(rows / seconds, 1) if seconds else 0.0)
    atomic_write_json(out / "screen_summary.json", {**result.summary(), "constraints": [asdict(c) for c in cons],
                                                    "models": models, "similar_to": list(similar_to or [])})
    return result
