"""Formulation (mixture) properties from ingredients and their fractions.

Model: each ingredient -> a learned embedding (MLP on Morgan counts + CDF-scaled RDKit descriptors); the
formulation embedding is the fraction-weighted sum of its ingredients' embeddings; a head MLP maps it to the
property. Because the head is non-linear in the weighted sum it can learn excess (non-ideal) terms that a
fraction-weighted mean of pure-component values cannot. That mean is reported beside it as the baseline.

Input table: `smiles_1..smiles_K`, `frac_1..frac_K` (blank for unused slots; fractions are renormalised to
sum to 1) and the target column. Rows with a single ingredient at fraction 1 give the pure-component values
the baseline needs.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from vai.core.errors import VaiError
from vai.core.progress import get_logger
from vai.core.training import VaiModule

from . import features as F
from .chem import Standardizer, to_mols

log = get_logger("vai.discovery")
KIND = "mixture_model"


def mixture_columns(frame: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = []
    for c in frame.columns:
        m = re.fullmatch(r"smiles_(\d+)", str(c))
        if m and f"frac_{m.group(1)}" in frame.columns:
            pairs.append((c, f"frac_{m.group(1)}"))
    if not pairs:
        raise VaiError("mixture table needs column pairs smiles_1/frac_1, smiles_2/frac_2, ...")
    # an ingredient under another name would be silently left out and the rest renormalised: refuse instead
    paired = {c for pair in pairs for c in pair}
    stray = [str(c) for c in frame.columns if str(c) not in paired
             and ("smiles" in str(c).lower() or re.fullmatch(r"frac\w*|(w|wt|weight)_\w+", str(c).lower()))]
    if stray:
        raise VaiError(f"column(s) {', '.join(stray)} look like ingredients but are not smiles_N/frac_N pairs "
                       f"(found pairs: {', '.join(sc for sc, _ in pairs)}); rename them, or drop them if they are "
                       "not ingredients")
    return sorted(pairs, key=lambda p: int(p[0].split("_")[1]))


SUM_TOLERANCE = 0.02  # rounding drift in a recipe's fractions (0.333 x 3); beyond it a row is reported


def off_sum_rows(totals: list[float | None]) -> tuple[list[tuple[int, float]], float]:
    """Rows whose fractions do not add up to the table's scale (1, or 100 for a table in percent), as
    (row number, sum), and that scale. They are still renormalised, but said: a recipe summing to 0.6 usually
    lacks its balance ingredient (water q.s.), where renormalising overstates every other one."""
    valid = [t for t in totals if t is not None and t > 0]
    if not valid:
        return [], 1.0
    scale = 100.0 if 90 <= float(np.median(valid)) <= 110 else 1.0
    return [(r + 1, t) for r, t in enumerate(totals)
            if t is not None and t > 0 and abs(t / scale - 1) > SUM_TOLERANCE], scale


def warn_off_sums(totals: list[float | None]) -> int:
    """Warn about the rows of `off_sum_rows` (named, with their sums) and return how many there are. A row on
    the other scale (summing to 100 in a table of fractions, or to 1 in a table in percent) is a complete recipe
    written in other units: renormalising reads it right, and the warning says so instead of suggesting a
    missing ingredient."""
    off, scale = off_sum_rows(totals)
    other = 1.0 if scale == 100 else 100.0
    units = [r for r in off if abs(r[1] / other - 1) <= SUM_TOLERANCE]
    rest = [r for r in off if r not in units]
    unit = "%" if scale == 100 else ""

    def shown(rows) -> str:  # in a table of fractions, a sum like 60 is probably percent short of its balance
        text = ", ".join(f"row {r} sums to {t:g}{unit}" + (" (percentages?)" if scale == 1 and t > 2 else "")
                         for r, t in rows[:5])
        return text + (", ..." if len(rows) > 5 else "")

    if rest:
        log.warning("%d formulation row(s) whose fractions do not add up to %g%s (%s): renormalised; if an "
                    "ingredient is the balance (e.g. water q.s.), list it with its fraction", len(rest), scale, unit,
                    shown(rest))
    if units:
        log.warning("%d formulation row(s) %s (%s): read as such (renormalised); write every row in one unit",
                    len(units), "look like percentages in a table of fractions: divided by 100" if scale == 1
                    else "look like fractions in a table in percent: multiplied by 100",
                    ", ".join(f"row {r} sums to {t:g}" for r, t in units[:5]) + (", ..." if len(units) > 5 else ""))
    return len(off)


def parse_mixtures(frame: pd.DataFrame, totals: list | None = None) -> tuple[list[list[tuple[str, float]]], list[str]]:
    """Per row: [(standardised SMILES, fraction)], and an error string ('' when fine). `totals`, when given, is
    filled with each row's fraction sum before renormalising (None for a row in error)."""
    std = Standardizer()
    pairs = mixture_columns(frame)
    mixes, errors = [], []
    for r, row in frame.reset_index(drop=True).iterrows():
        items, err = [], ""
        for sc, fc in pairs:
            s, f = row[sc], pd.to_numeric(row[fc], errors="coerce")
            if not isinstance(s, str) or not s.strip():
                if np.isfinite(f) and f > 0:  # a fraction without its ingredient: renormalising would hide it
                    err = f"row {r + 1}: {fc} is {f:g} but {sc} is empty; give the ingredient or a zero fraction"
                    break
                continue
            smi, e = std(s)
            if e or not np.isfinite(f) or f < 0:
                why = e or (f"has a negative fraction in {fc} ({f:g})" if np.isfinite(f)
                            else f"has no valid fraction in {fc} ({row[fc]!r})")
                err = f"row {r + 1}: {sc} {why}"
                break
            items.append((smi, float(f)))
        total = sum(f for _, f in items)
        if not err and (not items or total <= 0):
            err = f"row {r + 1}: no ingredient with a positive fraction"
        mixes.append([(s, f / total) for s, f in items] if not err else [])
        errors.append(err)
        if totals is not None:
            totals.append(None if err else float(total))
    return mixes, errors


class MixtureNet(VaiModule):
    def __init__(self, in_dim: int, emb_dim: int = 64, hidden: int = 128, lr: float = 3e-3,
                 y_mean: float = 0.0, y_std: float = 1.0):
        super().__init__(lr=lr, weight_decay=1e-4)
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, emb_dim))
        self.head = nn.Sequential(nn.Linear(emb_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))

    def forward(self, batch):
        # ingredient features [n_ingredients, D]; weights [n_mix, n_ingredients] (fractions)
        emb = self.encoder(batch["ing"])
        return self.head(batch["w"] @ emb).squeeze(1)

    def loss_step(self, batch):
        pred = self(batch)
        return nn.functional.mse_loss(pred, (batch["y"] - self.y_mean) / self.y_std), {}


class _MixData(torch.utils.data.Dataset):
    def __init__(self, rows, ing_feat, y):
        self.rows, self.ing_feat, self.y = rows, ing_feat, y

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i], (self.y[i] if self.y is not None else np.nan)


def _collate(ing_feat):
    def collate(items):
        used = sorted({j for row, _ in items for j, _ in row})
        local = {j: k for k, j in enumerate(used)}
        w = torch.zeros(len(items), len(used))
        for r, (row, _) in enumerate(items):
            for j, f in row:
                w[r, local[j]] += f
        return {"ing": torch.from_numpy(ing_feat[used]), "w": w,
                "y": torch.tensor([float(y) for _, y in items], dtype=torch.float32)}
    return collate


class MixtureModel:
    """fit(frame, target) / predict(frame) / save / load; `baseline` is the fraction-weighted mean."""

    def __init__(self, emb_dim: int = 64, epochs: int = 150, seed: int = 0):
        self.emb_dim, self.epochs, self.seed = emb_dim, epochs, seed
        self.vocab: list[str] = []
        self.scaler: F.DescriptorScaler | None = None
        self.net: MixtureNet | None = None
        self.pure: dict[str, float] = {}
        self.metrics: dict[str, Any] = {}

    def _ingredient_features(self, smiles: list[str]) -> np.ndarray:
        mols = to_mols(smiles)
        fp = np.log1p(F.morgan_counts(mols, 2, 1024))
        return np.hstack([fp, self.scaler.transform(F.descriptors(mols))]).astype(np.float32)

    def _index(self, mixes):
        rows = []
        for mix in mixes:
            rows.append([(self._vocab_index[s], f) for s, f in mix])
        return rows

    def baseline(self, mixes) -> np.ndarray:
        out = []
        for mix in mixes:
            vals = [self.pure.get(s) for s, _ in mix]
            out.append(np.nan if not mix or any(v is None for v in vals) else sum(f * v for (_, f), v in zip(mix, vals)))
        return np.asarray(out, dtype=float)

    def fit(self, frame: pd.DataFrame, target: str, test_fraction: float = 0.2) -> dict[str, Any]:
        from vai.core.training import fit

        from .models import _limit_torch_threads

        _limit_torch_threads()
        if target not in frame.columns:
            raise VaiError(f"no target column {target!r} in the mixture table")
        totals: list = []
        mixes, errors = parse_mixtures(frame, totals)
        off_sums = warn_off_sums(totals)
        y = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
        ok = [i for i, e in enumerate(errors) if not e and np.isfinite(y[i])]
        skipped = len(frame) - len(ok)
        if skipped:
            first = next((e for e in errors if e), f"no numeric value in {target}")
            log.warning("%d formulation row(s) skipped (bad ingredient, fraction or %s), e.g. %s", skipped, target,
                        first)
        self.skipped_rows = skipped
        if len(ok) < 20:
            raise VaiError(f"only {len(ok)} usable formulations; need at least 20")
        rng = np.random.default_rng(self.seed)
        # pure-component rows always train (they are the baseline's reference values); formulations are split
        pure_rows = [i for i in ok if len(mixes[i]) == 1]
        perm = rng.permutation([i for i in ok if len(mixes[i]) > 1])
        n_test = max(2, int(len(perm) * test_fraction))
        n_val = max(2, int(len(perm) * 0.1))
        test, val = perm[:n_test], perm[n_test:n_test + n_val]
        train = np.concatenate([perm[n_test + n_val:], np.asarray(pure_rows, dtype=int)]).astype(int)
        self.pure = {mixes[i][0][0]: float(y[i]) for i in train if len(mixes[i]) == 1}
        self.vocab = sorted({s for i in ok for s, _ in mixes[i]})
        self._vocab_index = {s: k for k, s in enumerate(self.vocab)}
        self.scaler = F.DescriptorScaler().fit(F.descriptors(to_mols(self.vocab)))
        ing = self._ingredient_features(self.vocab)
        rows = self._index(mixes)
        torch.manual_seed(self.seed)
        self.net = MixtureNet(ing.shape[1], self.emb_dim, y_mean=float(np.mean(y[train])), y_std=float(np.std(y[train]) or 1.0))
        loader = lambda idx, shuffle: torch.utils.data.DataLoader(  # noqa: E731
            _MixData([rows[i] for i in idx], ing, y[idx]), batch_size=32, shuffle=shuffle, collate_fn=_collate(ing),
            generator=torch.Generator().manual_seed(self.seed))
        fit(self.net, loader(train, True), loader(val, False), max_epochs=self.epochs, patience=30, seed=self.seed,
            progress=False, checkpoints=False)
        self.net.cpu().eval()
        self._ing = ing
        pred = self._predict_rows([rows[i] for i in test], ing)
        base = self.baseline([mixes[i] for i in test])
        yt = y[test]
        has_base = np.isfinite(base)
        self.metrics = {
            "skipped_rows": int(skipped),
            "fraction_sum_off_rows": int(off_sums),  # renormalised, see warn_off_sums
            "n_train": int(len(train)), "n_val": int(len(val)), "n_test": int(len(test)),
            "test_rmse_model": float(np.sqrt(np.mean((pred - yt) ** 2))),
            "test_rmse_weighted_mean_baseline": float(np.sqrt(np.mean((base[has_base] - yt[has_base]) ** 2)))
            if has_base.any() else None,
            "test_rmse_model_on_baseline_rows": float(np.sqrt(np.mean((pred[has_base] - yt[has_base]) ** 2)))
            if has_base.any() else None,
            "baseline_rows": int(has_base.sum()),
        }
        return self.metrics

    def _predict_rows(self, rows, ing) -> np.ndarray:
        with torch.inference_mode():
            batch = _collate(ing)([(r, 0.0) for r in rows])
            return (self.net(batch) * self.net.y_std + self.net.y_mean).numpy()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.net is None:
            raise VaiError("the mixture model is not trained")
        totals: list = []
        mixes, errors = parse_mixtures(frame, totals)
        warn_off_sums(totals)
        new = sorted({s for m in mixes for s, _ in m} - set(self._vocab_index))
        if new:  # unseen ingredients get their features computed on the fly; the encoder generalises
            self.vocab += new
            self._vocab_index = {s: k for k, s in enumerate(self.vocab)}
            self._ing = np.vstack([self._ing, self._ingredient_features(new)])
        out = frame.reset_index(drop=True).copy()
        ok = [i for i, e in enumerate(errors) if not e]
        pred = np.full(len(out), np.nan)
        if ok:
            pred[ok] = self._predict_rows(self._index([mixes[i] for i in ok]), self._ing)
        out["prediction"] = pred
        out["baseline_weighted_mean"] = self.baseline(mixes)
        out["fraction_sum"] = [np.nan if t is None else t for t in totals]  # before renormalising: check the recipe
        out["error"] = errors
        return out

    def save(self, path) -> Path:
        from vai.core.artifacts import save_model_dir

        return save_model_dir(path, config={"vertical": "discovery", "kind": KIND, "emb_dim": self.emb_dim,
                                            "in_dim": int(self._ing.shape[1]), "epochs": self.epochs, "seed": self.seed,
                                            "scaler": self.scaler.to_json()},
                              weights=self.net.state_dict(), metrics=self.metrics,
                              json_files={"vocab.json": self.vocab, "pure.json": self.pure})

    @classmethod
    def load(cls, path) -> "MixtureModel":
        from vai.core.artifacts import load_model_dir
        from vai.core.io import read_json

        md = load_model_dir(path, vertical="discovery", kind=KIND)
        c = md.config
        self = cls(c["emb_dim"], c["epochs"], c["seed"])
        self.scaler = F.DescriptorScaler(**c["scaler"])
        self.vocab = read_json(md.file("vocab.json"))
        self._vocab_index = {s: k for k, s in enumerate(self.vocab)}
        self.pure = read_json(md.file("pure.json"))
        self.net = MixtureNet(c["in_dim"], c["emb_dim"])
        self.net.load_state_dict(md.weights())
        self.net.eval()
        self._ing = self._ingredient_features(self.vocab)
        self.metrics = md.metrics
        return self


def synthetic_mixtures(n: int = 400, max_ingredients: int = 3, seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC formulations of the embedded sample molecules. Pure value: Crippen logP; mixture value:
    the fraction-weighted mean plus a non-ideal excess term f_i f_j (TPSA_i - TPSA_j)^2 / 400."""
    from rdkit.Chem import Crippen, rdMolDescriptors

    from .sample_data import sample_molecules

    smiles = sample_molecules()["smiles"].tolist()
    mols = to_mols(smiles)
    logp = np.array([Crippen.MolLogP(m) for m in mols])
    tpsa = np.array([rdMolDescriptors.CalcTPSA(m) for m in mols])
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(len(smiles)):  # pure components: the baseline's inputs
        rows.append({"smiles_1": smiles[i], "frac_1": 1.0, "value": logp[i]})
    for _ in range(n):
        k = rng.integers(2, max_ingredients + 1)
        idx = rng.choice(len(smiles), size=k, replace=False)
        f = rng.dirichlet(np.ones(k))
        value = float(np.sum(f * logp[idx]))
        for a in range(k):
            for b in range(a + 1, k):
                value += f[a] * f[b] * (tpsa[idx[a]] - tpsa[idx[b]]) ** 2 / 400.0
        row = {"value": value}
        for j, (i, fr) in enumerate(zip(idx, f), start=1):
            row[f"smiles_{j}"], row[f"frac_{j}"] = smiles[i], float(fr)
        rows.append(row)
    cols = [c for j in range(1, max_ingredients + 1) for c in (f"smiles_{j}", f"frac_{j}")] + ["value"]
    return pd.DataFrame(rows).reindex(columns=cols)


def train_mixture_file(data, target, out, epochs: int = 150, seed: int = 0) -> dict:
    from vai.core.tables import read_user_table

    model = MixtureModel(epochs=epochs, seed=seed)
    metrics = model.fit(read_user_table(data, "mixture table"), target)
    model.save(out)
    return metrics


def predict_mixture_file(model_dir, data, out) -> pd.DataFrame:
    from vai.core.io import atomic_write_table, check_table_output
    from vai.core.tables import read_user_table

    check_table_output(out)
    pred = MixtureModel.load(model_dir).predict(read_user_table(data, "mixture table"))
    atomic_write_table(out, pred, like=data)
    return pred
