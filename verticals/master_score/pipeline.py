"""Glue: pick the sentiment model, score the headlines, build the point-in-time panel."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.progress import get_logger
from vai.core.tables import read_user_table
from vai.verticals.master_score.features import Panel, build_panel
from vai.verticals.master_score.text import SentimentModel, default_sentiment_dir, train_sentiment

log = get_logger("vai.master_score")
BUILTIN_LABEL = "builtin (hashing encoder + head trained on SYNTHETIC template sentences)"


def builtin_sentiment_model() -> SentimentModel:
    """A small head on the hashing encoder, trained once on synthetic template sentences and cached.
    It is a fallback so the pipeline runs without PhraseBank; train the real one with `vai score sentiment train`."""
    from vai.core.settings import get_settings
    from vai.verticals.master_score.synthetic import template_sentences

    path = get_settings().models_dir / "master_score" / "sentiment-builtin"
    if (path / "config.json").exists():
        return SentimentModel.load(path)
    data = template_sentences(600, seed=123)
    model = train_sentiment(data["sentence"].tolist(), data["label"].tolist(), encoder="hashing", test_fraction=0.2,
                            max_epochs=25, hidden=32, seed=0)
    model.metrics["training_data"] = "synthetic template sentences"
    model.save(path)
    return model


def resolve_sentiment_model(spec=None) -> tuple[SentimentModel, str]:
    """`spec`: a SentimentModel, a model dir, "builtin", or None (the trained default if present, else builtin)."""
    if isinstance(spec, SentimentModel):
        return spec, f"in-memory ({spec.encoder_name})"
    if spec == "builtin":
        return builtin_sentiment_model(), BUILTIN_LABEL
    if spec:
        return SentimentModel.load(spec), str(spec)
    d = default_sentiment_dir()
    if (d / "config.json").exists():
        return SentimentModel.load(d), str(d)
    log.warning("no trained sentiment model at %s: using the builtin one trained on synthetic templates "
                "(run `vai score sentiment train` for the Financial PhraseBank model)", d)
    return builtin_sentiment_model(), BUILTIN_LABEL


def score_headlines(news: pd.DataFrame, model: SentimentModel) -> tuple[np.ndarray, np.ndarray]:
    if news.empty:
        return np.zeros(0, np.float32), np.zeros((0, 384), np.float32)
    return model.score(news["headline"].astype(str).tolist())


def build_features(news: pd.DataFrame, prices: pd.DataFrame, sentiment_model: SentimentModel,
                   sectors: dict | None = None, timings: dict | None = None) -> Panel:
    t = time.perf_counter()
    sent, emb = score_headlines(news, sentiment_model)
    if timings is not None:
        timings["text_encoding_and_sentiment_s"] = time.perf_counter() - t
    t = time.perf_counter()
    panel = build_panel(prices, news.reset_index(drop=True), sent, emb, sectors)
    if timings is not None:
        timings["features_s"] = time.perf_counter() - t
    return panel


def read_sectors(path) -> dict[str, str]:
    """A CSV with columns ticker, sector."""
    p = Path(path)
    f = read_user_table(p, "sectors file", dtype=str, keep_default_na=False)
    if not {"ticker", "sector"} <= set(f.columns):
        raise VaiError(f"{p}:1: the sectors file needs columns ticker, sector")
    return dict(zip(f["ticker"].astype(str).str.upper(), f["sector"].astype(str)))
