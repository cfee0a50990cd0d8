"""Training, cross-validation and prediction of genotype models from per-slide feature files.

    bags = BagSet.from_dir("features/")                       # <stem>.h5 with coords + features
    labels = read_slide_table("labels.csv", ["KRAS", "TP53"])
    model, report = GenotypeModel.train(bags, labels, ["KRAS", "TP53"], kind="abmil", folds=5)
    model.save("models/kras_tp53")
    preds = GenotypeModel.load("models/kras_tp53").predict(bags)  # one row per slide

Cross-validation is patient-level (all slides of a patient in one fold) and site-preserving when a `site`
column exists (all patients of a site in one fold, so the model is always tested on unseen sites)."""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vai.core.errors import VaiError
from vai.core.progress import get_logger

log = get_logger("vai.path")


class BagSet:
    """Slide name -> feature file. Features are read on demand (optionally cached when small)."""

    def __init__(self, files: dict[str, Path], cache: bool = True, max_cache_bytes: int = 2 << 30):
        self.files = dict(sorted(files.items()))
        self._cache: dict[str, np.ndarray] = {}
        self._attrs: dict[str, dict] = {}  # a feature file's attributes never change while it is read
        self.cache = cache
        self._budget = max_cache_bytes

    @classmethod
    def from_dir(cls, folder: str | os.PathLike, **kw) -> "BagSet":
        from .embed import has_features

        folder = Path(folder)
        if not folder.is_dir():
            raise VaiError(f"{folder}: features folder not found (run `vai path embed SLIDE... --out {folder}`)")
        # dot-files are half-written temporaries of an interrupted embed (zeros past the cut), never slides
        files = {p.stem: p for p in sorted(folder.glob("*.h5")) if not p.name.startswith(".") and has_features(p)}
        if not files:
            raise VaiError(f"{folder}: no feature files (<slide>.h5 with 'features'); run `vai path embed` first")
        return cls(files, **kw)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def names(self) -> list[str]:
        return list(self.files)

    @functools.cached_property
    def _dim(self) -> int:
        import h5py

        with h5py.File(next(iter(self.files.values())), "r") as f:
            return int(f["features"].shape[1])

    def dim(self) -> int:
        return self._dim

    def attrs(self, name: str) -> dict:
        if name not in self._attrs:
            import h5py

            with h5py.File(self.files[name], "r") as f:
                self._attrs[name] = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        return self._attrs[name]

    def precisions(self) -> dict[str, list[str]]:
        """Embedding precision -> slides (files written before it was recorded are left out)."""
        return self.groups("precision")

    def groups(self, attr: str, default: str | None = None) -> dict[str, list[str]]:
        """Value of one feature-file attribute (backbone, target_mpp, tile_size, stain...) -> slides; files
        that do not record it count as `default`, or are left out when it is None."""
        out: dict[str, list[str]] = {}
        for name in self.names:
            value = self.attrs(name).get(attr)
            value = default if value is None or value == "" else value
            if value is not None:
                out.setdefault(str(value), []).append(name)
        return out

    def features(self, name: str) -> np.ndarray:
        if name in self._cache:
            return self._cache[name]
        import h5py

        with h5py.File(self.files[name], "r") as f:
            arr = f["features"][:].astype(np.float32)
        if self.cache and arr.nbytes <= self._budget:
            self._cache[name] = arr
            self._budget -= arr.nbytes
        return arr

    def iter_chunks(self, name: str, chunk: int = 8192):
        """Features of one slide in chunks: predicting a huge slide never loads it whole (a cached one is not
        read again)."""
        if name in self._cache:
            arr = self._cache[name]
            for i in range(0, len(arr), chunk):
                yield arr[i:i + chunk]
            return
        import h5py

        with h5py.File(self.files[name], "r") as f:
            d = f["features"]
            for i in range(0, d.shape[0], chunk):
                yield d[i:i + chunk].astype(np.float32)

    def n_tiles(self, name: str) -> int:
        import h5py

        with h5py.File(self.files[name], "r") as f:
            return int(f["features"].shape[0])


class _BagDataset:
    def __init__(self, bags: BagSet, names: list[str], y: np.ndarray, max_tiles: int | None, train: bool, seed: int):
        self.bags, self.names, self.y = bags, names, y
        self.max_tiles, self.train = max_tiles, train
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int):
        import torch

        h = self.bags.features(self.names[i])
        if self.max_tiles and len(h) > self.max_tiles:
            # Random subset per epoch in training (augmentation, bounded memory); a fixed one for validation.
            rng = self.rng if self.train else np.random.default_rng(i)
            h = h[np.sort(rng.choice(len(h), self.max_tiles, replace=False))]
        y = self.y[i]
        mask = ~np.isnan(y)
        return (torch.from_numpy(np.ascontiguousarray(h)), torch.from_numpy(np.nan_to_num(y).astype(np.float32)),
                torch.from_numpy(mask.astype(np.float32)))


def _single(batch):
    return batch[0]


def _loader(ds, shuffle: bool, seed: int):
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=1, shuffle=shuffle, collate_fn=_single, num_workers=0, generator=g)


def pos_weights(y: np.ndarray, cap: float = 10.0) -> list[float]:
    """Class weighting for rare mutations: negatives / positives per target, capped."""
    out = []
    for col in y.T:
        c = col[~np.isnan(col)]
        pos, neg = float((c == 1).sum()), float((c == 0).sum())
        out.append(float(min(cap, max(1.0 / cap, neg / pos))) if pos > 0 and neg > 0 else 1.0)
    return out


@dataclass
class TrainConfig:
    kind: str = "abmil"
    max_epochs: int = 30
    patience: int = 6
    lr: float = 2e-4
    weight_decay: float = 1e-4
    max_tiles: int | None = 4096
    val_frac: float = 0.2
    seed: int = 0
    model_kwargs: dict = field(default_factory=dict)
    progress: bool = False
    # torch threads while training; small bags train far faster on 1 thread on a busy CPU (None = leave as is)
    threads: int | None = None


def _align(bags: BagSet, labels, targets: list[str], warn: bool = True):
    have = set(bags.names)
    rows = labels[labels["slide"].isin(have)].reset_index(drop=True)
    missing = sorted(set(labels["slide"]) - have)
    if missing and warn:
        log.warning("%d labelled slides have no features and are left out (e.g. %s)", len(missing), missing[:3])
    if rows.empty:
        raise VaiError("no slide in the labels table has a feature file: check that `slide` holds the slide file "
                       f"stems (features found for e.g. {bags.names[:3]})")
    rows = rows[~rows[targets].isna().all(axis=1)].reset_index(drop=True)
    if rows.empty:
        raise VaiError(f"every slide has blank labels for {', '.join(targets)}")
    return rows


def check_targets(rows, targets: list[str], folds: int | None = None) -> dict[str, dict[str, int]]:
    """Positive / negative patients per target among the slides with features. A target whose labelled
    patients are all one class cannot be learned or scored (no AUROC): it stops training with a message
    instead of yielding a model with a dead output; too few positives for the folds is a warning."""
    pat = rows.groupby("patient")[targets].max()  # a patient is positive if any of its slides is
    counts = {t: {"pos": int((pat[t] == 1).sum()), "neg": int((pat[t] == 0).sum())} for t in targets}
    bad = {t: c for t, c in counts.items() if c["pos"] == 0 or c["neg"] == 0}
    if bad:
        what = "; ".join(f"{t}: {c['pos']} positive and {c['neg']} negative patients" for t, c in bad.items())
        keep = [t for t in targets if t not in bad]
        hint = f"train on --targets {','.join(keep)}" if keep else "check the label columns (1 = mutated, 0 = wild type)"
        raise VaiError(f"cannot learn a target whose labelled patients are all one class ({what}) among the slides "
                       f"with features: {hint}")
    for t, c in counts.items():
        if folds and min(c["pos"], c["neg"]) < folds:
            log.warning("%s: only %d positive / %d negative patients for %d folds: some test folds hold one class "
                        "and get no AUROC of their own; the pooled AUROC's interval is wide", t, c["pos"], c["neg"], folds)
    return counts


def fit_one(bags: BagSet, names: list[str], y: np.ndarray, cfg: TrainConfig, in_dim: int, n_targets: int,
            patients: list[str] | None = None):
    """Train one model on `names` with a patient-level inner validation split for early stopping."""
    import torch

    from vai.core.training import fit

    from .models import MILModule

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    rng = np.random.default_rng(cfg.seed)
    groups = np.array(patients if patients is not None else names)
    uniq = np.unique(groups)
    # Small sets: no inner validation split (every patient is needed for training; fixed epochs instead).
    n_val = int(round(len(uniq) * cfg.val_frac)) if len(uniq) >= 20 else 0
    val_groups = set(rng.choice(uniq, n_val, replace=False)) if n_val else set()
    is_val = np.array([g in val_groups for g in groups])
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    torch.manual_seed(cfg.seed)  # initial weights: `fit` seeds only after the module exists
    module = MILModule(in_dim, n_targets, kind=cfg.kind, pos_weight=pos_weights(y[tr]), lr=cfg.lr,
                       weight_decay=cfg.weight_decay, model_kwargs=cfg.model_kwargs)
    train_loader = _loader(_BagDataset(bags, [names[i] for i in tr], y[tr], cfg.max_tiles, True, cfg.seed), True, cfg.seed)
    val_loader = (_loader(_BagDataset(bags, [names[i] for i in va], y[va], cfg.max_tiles, False, cfg.seed), False, cfg.seed)
                  if len(va) else None)
    result = fit(module, train_loader, val_loader, max_epochs=cfg.max_epochs, patience=cfg.patience,
                 seed=cfg.seed, progress=cfg.progress, checkpoints=False)
    module.eval()
    return module, result


def _predict_probs(module, bags: BagSet, names: list[str]) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for n in names:
            logits, _ = module.net(torch.from_numpy(bags.features(n)))
            out.append(torch.sigmoid(logits.float()).numpy())
    return np.stack(out)


def _site_patient_groups(rows) -> np.ndarray:
    """Group id per row joining sites that share a patient: a patient whose slides come from two sites
    (a re-cut sent elsewhere, a typo) must still sit in one fold, or its slides leak across train and test."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for pat, site in zip(rows["patient"].astype(str), rows["site"].astype(str)):
        ra, rb = find("p:" + pat), find("s:" + site)
        if ra != rb:
            parent[ra] = rb
    return np.array([find("s:" + s) for s in rows["site"].astype(str)])


def make_folds(rows, folds: int, first_target: str, seed: int = 0) -> tuple[np.ndarray, str]:
    """Fold index per row. Always grouped by patient (all of a patient's slides in one fold); by site too when
    a site column exists with enough sites (so the model is tested on unseen sites); stratified on the first
    target's patient label when each class has enough patients."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    group_by = "patient"
    groups = rows["patient"].astype(str).to_numpy()
    blank = rows["site"].isna() | rows["site"].astype(str).str.strip().isin(["", "nan"]) \
        if "site" in rows.columns else None
    if blank is not None and blank.any():
        log.warning("%d slide(s) have a blank site (e.g. %s): folds are by patient only, so the model is not "
                    "tested on unseen sites; fill the site column to keep sites apart", int(blank.sum()),
                    rows["slide"][blank].iloc[0])
    elif blank is not None:
        by_site = _site_patient_groups(rows)
        n_site_groups = len(np.unique(by_site))
        if n_site_groups < 2:
            log.warning("all slides come from one site (or from sites linked by shared patients): folds are by "
                        "patient only, so the model is not tested on an unseen site")
        else:  # site-preserving even when there are fewer sites than folds: then the folds shrink (below)
            groups, group_by = by_site, "site"
            merged = rows["site"].nunique() - n_site_groups
            if merged:
                log.warning("%d site(s) share patients with another site and are kept in one fold with it", merged)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise VaiError(f"cross-validation needs at least 2 {group_by}s; the labels have {n_groups}")
    if folds > n_groups:
        log.warning("only %d %ss: using %d folds instead of %d", n_groups, group_by, n_groups, folds)
        folds = n_groups
    # the patient's label (max over its slides), so a patient's slides never pull strata apart
    pat_label = rows.groupby("patient")[first_target].max()
    strat = rows["patient"].map(pat_label).fillna(-1).astype(int).to_numpy()
    _, counts = np.unique(strat, return_counts=True)
    if np.all(counts < folds):  # sklearn refuses: no class fills every fold; split on groups alone
        log.warning("too few slides per %s class for %d stratified folds: folds are not stratified", first_target, folds)
        strat = np.zeros(len(rows), int)
    fold = np.full(len(rows), -1)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class" is said once, in our words, by check_targets
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(rows)), strat, groups)):
            fold[test] = k
    return fold, group_by


def cross_validate(bags: BagSet, labels, targets: list[str], folds: int = 5, cfg: TrainConfig | None = None,
                   shuffle_labels: bool = False, n_boot: int = 1000, shuffle_seed: int = 1, warn: bool = True):
    """Out-of-fold predictions and metrics. With `shuffle_labels`, labels are permuted across patients first
    (a control: its AUROC should sit near 0.5). `warn=False` for repeats (the control) that would say again
    what the first run said."""

    cfg = cfg or TrainConfig()
    rows = _align(bags, labels, targets, warn=warn)
    if warn:
        check_targets(rows, targets, folds)
    if shuffle_labels:
        rng = np.random.default_rng(cfg.seed + shuffle_seed)
        pat = rows.groupby("patient")[targets].first()
        perm = pat.iloc[rng.permutation(len(pat))].to_numpy()
        mapping = dict(zip(pat.index, perm))
        rows[targets] = np.stack([mapping[p] for p in rows["patient"]])
    fold, group_by = make_folds(rows, folds, targets[0], cfg.seed)
    y = rows[targets].to_numpy(float)
    names = rows["slide"].tolist()
    in_dim = bags.dim()
    probs = np.full((len(rows), len(targets)), np.nan)
    n_folds = int(fold.max() + 1)
    what = "shuffled-label control" if shuffle_labels else "cross-validation"
    t0 = time.monotonic()
    for k in range(n_folds):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        module, res = fit_one(bags, [names[i] for i in tr], y[tr], cfg, in_dim, len(targets),
                              rows["patient"].iloc[tr].tolist())
        probs[te] = _predict_probs(module, bags, [names[i] for i in te])
        elapsed = time.monotonic() - t0  # a log line per fold: training runs for minutes with no bar in a batch log
        log.info("%s fold %d/%d: %d train / %d test slides, %s epochs, %.0fs elapsed, ETA %.0fs", what, k + 1,
                 n_folds, len(tr), len(te), getattr(res, "epochs_run", "?"), elapsed,
                 elapsed / (k + 1) * (n_folds - k - 1))
    frame = rows.copy()
    frame["fold"] = fold
    for j, t in enumerate(targets):
        frame[f"{t}_prob"] = probs[:, j]
    from .evaluate import evaluate_predictions

    metrics = evaluate_predictions(frame, targets, n_boot=n_boot, seed=cfg.seed)
    return frame, {"targets": metrics, "folds": int(fold.max() + 1), "grouped_by": group_by,
                   "n_slides": int(len(rows)), "n_patients": int(rows["patient"].nunique()),
                   "shuffled_labels": bool(shuffle_labels)}


def shuffled_control(bags: BagSet, labels, targets: list[str], folds: int, cfg: TrainConfig, repeats: int = 3) -> dict:
    """Patient-level AUROC per target over `repeats` label permutations: the mean within-fold AUROC
    (unbiased, should sit near 0.5) and the pooled out-of-fold AUROC (biased low on small sets)."""
    runs, pooled = [], []
    for r in range(repeats):
        _, m = cross_validate(bags, labels, targets, folds, cfg, shuffle_labels=True, n_boot=0, shuffle_seed=r + 1,
                              warn=False)
        runs.append({t: m["targets"][t].get("fold_auroc_mean") for t in targets})
        pooled.append({t: m["targets"][t]["patient"].get("auroc") for t in targets})
    mean = {t: float(np.nanmean([r[t] if r[t] is not None else np.nan for r in runs])) for t in targets}
    return {"repeats": repeats, "auroc_per_repeat": runs, "mean_auroc": mean, "pooled_auroc_per_repeat": pooled}


class GenotypeModel:
    """A trained MIL genotype model: `train` (CV + final fit), `save`/`load` (core model directory),
    `predict` (one row per slide), `attention` per slide for heatmaps."""

    def __init__(self, module, targets: list[str], config: dict[str, Any], metrics: dict | None = None,
                 domain=None):
        self.module = module.eval()
        self.targets = list(targets)
        self.config = config
        self.metrics = metrics or {}
        self.domain = domain  # FeatureDomain of the training slides (None for models saved before it existed)

    @classmethod
    def train(cls, bags: BagSet, labels, targets: list[str], *, folds: int = 5, cfg: TrainConfig | None = None,
              control: int = 0, n_boot: int = 1000):
        """Cross-validate (metrics reported), then fit the final model on every labelled slide. With
        `control=R`, R shuffled-label cross-validations run too (their mean AUROC should sit near 0.5)."""
        cfg = cfg or TrainConfig()
        precisions = bags.precisions()
        # one model, one kind of feature: tiles at another scale or from another backbone are other inputs
        for attr, what, fix in (("precision", "precisions", "one setting (VAI_PRECISION)"),
                                ("backbone", "backbones", "one --backbone"),
                                ("target_mpp", "tile resolutions (µm/px)", "one --mpp"),
                                ("tile_size", "tile sizes", "one --tile"),
                                ("stain", "stain normalisations", "one --stain")):
            groups = bags.groups(attr, default="none" if attr == "stain" else None)
            if len(groups) > 1:
                example = "; ".join(f"{v}: e.g. {names[0]} ({len(names)} slides)" for v, names in groups.items())
                raise VaiError(f"the feature files were embedded with different {what} ({example}); re-embed them "
                               f"with {fix} so the model sees one kind of feature")
        frame, cv = cross_validate(bags, labels, targets, folds, cfg, n_boot=n_boot)
        report = {"cv": cv}
        if control:
            report["shuffled_label_control"] = shuffled_control(bags, labels, targets, folds, cfg, int(control))
        rows = _align(bags, labels, targets, warn=False)
        module, res = fit_one(bags, rows["slide"].tolist(), rows[targets].to_numpy(float), cfg, bags.dim(),
                              len(targets), rows["patient"].tolist())
        first = bags.attrs(bags.names[0])
        config = {"vertical": "path", "kind": "genotype_mil", "model": cfg.kind, "targets": list(targets),
                  "in_dim": bags.dim(), "model_kwargs": cfg.model_kwargs, "max_tiles": cfg.max_tiles,
                  "backbone": first.get("backbone"), "tile_size": first.get("tile_size"),
                  "target_mpp": first.get("target_mpp"), "epochs_run": res.epochs_run,
                  # how the features were made, so `vai path predict SLIDE...` embeds new slides the same way
                  "weights": first.get("weights") or None, "stain": first.get("stain") or None,
                  "stain_target": first.get("stain_target") or None, "min_tissue": first.get("min_tissue"),
                  "feature_precision": next(iter(precisions), None),
                  "pos_weight": module.pos_weight.tolist()}
        from .domain import DOMAIN_FILE, FeatureDomain, slide_mean

        means = [m for m in (slide_mean(bags, n) for n in rows["slide"]) if m is not None]
        domain = FeatureDomain.fit(np.stack(means)) if means else None  # None too with < 3 slides
        if domain is not None:
            config["domain"] = {"file": DOMAIN_FILE, "n_slides": len(means), "radius": domain.radius}
        model = cls(module, targets, config, report, domain=domain)
        model.cv_predictions = frame
        return model, report

    def save(self, path: str | os.PathLike) -> Path:
        from vai.core.artifacts import save_model_dir

        files = {}
        frame = getattr(self, "cv_predictions", None)
        if frame is not None:
            files["cv_predictions.csv"] = frame.to_csv(index=False)
            import tempfile

            from .evaluate import roc_plot

            with tempfile.TemporaryDirectory() as td:
                files["roc.png"] = roc_plot(frame, self.targets, Path(td) / "roc.png").read_bytes()
        if self.domain is not None:
            from .domain import DOMAIN_FILE

            files[DOMAIN_FILE] = self.domain.to_bytes()
        state = {k: v for k, v in self.module.state_dict().items()}
        return save_model_dir(path, config=self.config, weights=state, metrics=self.metrics, files=files)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GenotypeModel":
        from vai.core.artifacts import load_model_dir

        from .models import MILModule

        md = load_model_dir(path, vertical="path", kind="genotype_mil")
        c = md.config
        module = MILModule(int(c["in_dim"]), len(c["targets"]), kind=c["model"], pos_weight=c.get("pos_weight"),
                           model_kwargs=c.get("model_kwargs") or {})
        try:
            module.load_state_dict(md.weights())
        except RuntimeError as exc:
            raise VaiError(f"{path}: weights do not fit the model in config.json ({str(exc).splitlines()[0]})") from None
        from .domain import DOMAIN_FILE, FeatureDomain

        domain = FeatureDomain.from_file(md.file(DOMAIN_FILE)) if c.get("domain") else None
        return cls(module, c["targets"], c, md.metrics, domain=domain)

    def check_features(self, bags: BagSet, name: str) -> None:
        """Stop (VaiError) when a slide's features are not the kind the model was trained on."""
        c, a, f = self.config, bags.attrs(name), bags.files[name]
        if bags.dim() != int(c["in_dim"]):
            raise VaiError(f"{f}: features have {bags.dim()} dims but the model expects {c['in_dim']} "
                           f"(backbone {c.get('backbone')}): re-embed with that backbone")
        for attr, flag in (("backbone", "--backbone"), ("target_mpp", "--mpp"), ("tile_size", "--tile")):
            want, got = c.get(attr), a.get(attr)
            if want is None or got is None:
                continue
            same = abs(float(want) - float(got)) < 1e-6 if attr == "target_mpp" else str(want) == str(got)
            if not same:
                raise VaiError(f"{f}: features made with {attr} {got}, the model was trained on {want}: re-embed the "
                               f"slide with {flag} {want} (or pass the slide files to predict, which does it)")
        if (c.get("stain") or "") != (a.get("stain") or "") and ("stain" in a or c.get("stain")):
            log.warning("%s: stain normalisation %s, the model was trained with %s: scores may shift", f,
                        a.get("stain") or "none", c.get("stain") or "none")
        trained, given = c.get("feature_precision"), a.get("precision")
        if trained and given and str(given) != trained:
            log.warning("%s: features embedded in %s, the model was trained on %s features: scores may shift; "
                        "re-embed with VAI_PRECISION=%s", f, given, trained, trained)

    def predict_slide(self, bags: BagSet, name: str, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [T], attention [T, N]) for one slide. ABMIL streams the features in chunks."""
        probs, att, _ = self._predict_slide(bags, name, chunk)
        return probs, att

    def _predict_slide(self, bags: BagSet, name: str, chunk: int = 8192):
        """(probabilities, attention, mean tile embedding): the mean is summed on the way, in the same pass."""
        import torch

        from .models import ABMIL

        self.check_features(bags, name)
        total = []

        def summed(chunks):
            for c in chunks:
                total.append(c.astype(np.float64).sum(0))
                yield torch.from_numpy(c)

        with torch.no_grad():
            if isinstance(self.module.net, ABMIL):
                logits, att = self.module.net.forward_streaming(summed(bags.iter_chunks(name, chunk)))
            else:
                feats = bags.features(name)
                total.append(feats.astype(np.float64).sum(0))
                logits, att = self.module.net(torch.from_numpy(feats))
        mean = (np.sum(total, axis=0) / max(bags.n_tiles(name), 1)).astype(np.float32)
        return torch.sigmoid(logits.float()).numpy(), att.float().numpy(), mean

    def predict(self, bags: BagSet, heatmaps_dir: str | os.PathLike | None = None, names: list[str] | None = None,
                heatmaps_limit: int | None = None, errors: dict[str, str] | None = None):
        """One row per slide (`slide`, `<target>_prob`..., `n_tiles`, `error`: blank probabilities and the reason
        for a slide that could not be predicted, e.g. one in `names` whose embedding failed, given in `errors`);
        heatmaps for the first `heatmaps_limit`."""
        import pandas as pd

        rows = []
        blank = {f"{t}_prob": np.nan for t in self.targets}
        if self.domain is not None:
            blank.update(domain_distance=np.nan, in_domain=None)
        for k, name in enumerate(names or bags.names):
            if name not in bags.files:  # embedding failed upstream: the slide still gets its row
                rows.append({"slide": name, **blank, "n_tiles": 0,
                             "error": (errors or {}).get(name, "no feature file")})
                continue
            if bags.n_tiles(name) == 0:  # blank probabilities need a reason, like any other slide without one
                rows.append({"slide": name, **blank, "n_tiles": 0,
                             "error": "no tissue found: 0 tiles to predict from (check the slide and its tissue mask "
                                      "PNG; embed with a lower --min-tissue if the tissue is faint)"})
                continue
            try:
                probs, att, mean = self._predict_slide(bags, name)
            except VaiError as exc:  # features of another kind: reported in the row, the others go on
                log.warning("%s", exc)
                rows.append({"slide": name, **blank, "n_tiles": bags.n_tiles(name), "error": str(exc)})
                continue
            row = {"slide": name, **{f"{t}_prob": float(p) for t, p in zip(self.targets, probs)}}
            if self.domain is not None:
                dist = float(self.domain.distance(mean[None])[0])
                row.update(domain_distance=round(dist, 4), in_domain=bool(dist <= 1.0))
            rows.append({**row, "n_tiles": bags.n_tiles(name), "error": ""})
            if heatmaps_dir is not None and (heatmaps_limit is None or k < heatmaps_limit):
                from .heatmap import write_heatmaps

                try:  # a heatmap needs the slide file; a moved slide loses its picture, not its prediction
                    write_heatmaps(bags.files[name], att, self.targets, heatmaps_dir, probs=probs,
                                   out_of_domain=row.get("in_domain") is False)
                except VaiError as exc:
                    log.warning("%s: no heatmap (%s)", name, exc)
        frame = pd.DataFrame(rows)
        if self.domain is not None:
            out = frame[frame["in_domain"] == False]  # noqa: E712 - None (not predicted) is neither
            if len(out):
                log.warning("%d slide(s) lie outside the training slides' feature range (domain_distance > 1, e.g. "
                            "%s at %.1f): another scanner, stain, organ or artefact; their probabilities are not "
                            "backed by the cross-validation", len(out), out["slide"].iloc[0],
                            out["domain_distance"].iloc[0])
        return frame
