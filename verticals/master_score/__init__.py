"""Master score: a daily 1-100 news-driven stock score (>= 51: more likely to beat the universe median over
the next 20 trading days), with a rationale built from the model's own signed contributions and an honest,
point-in-time walk-forward backtest.

SDK:
    from vai.verticals.master_score import (load_news_csv, load_prices_csv, assign_session, SentimentModel,
        train_sentiment, build_panel, walk_forward, LogisticScorer, LightningScorer, RationaleWriter,
        run_backtest, compute_metrics, ingest, daily_run, synthetic_market)
"""
from vai.verticals.master_score.backtest import compute_metrics, run_backtest
from vai.verticals.master_score.calendar import assign_session, is_trading_day, trading_days
from vai.verticals.master_score.db import daily_run, ingest, stored_scores
from vai.verticals.master_score.features import HORIZON, Panel, build_panel
from vai.verticals.master_score.io import (LoadResult, load_benzinga_news, load_fnspid_headlines, load_fnspid_prices,
                                           load_news_csv, load_phrasebank, load_prices_csv, load_sp500, load_stocknet)
from vai.verticals.master_score.model import LightningScorer, LogisticScorer, score_from_p, walk_forward
from vai.verticals.master_score.pipeline import build_features, resolve_sentiment_model
from vai.verticals.master_score.rationale import RationaleWriter
from vai.verticals.master_score.synthetic import synthetic_market, write_market_csvs
from vai.verticals.master_score.text import HashingEncoder, MiniLMEncoder, SentimentModel, train_sentiment

__all__ = ["HORIZON", "HashingEncoder", "LightningScorer", "LoadResult", "LogisticScorer", "MiniLMEncoder", "Panel",
           "RationaleWriter", "SentimentModel", "assign_session", "build_features", "build_panel", "compute_metrics",
           "daily_run", "ingest", "is_trading_day", "load_benzinga_news", "load_fnspid_headlines", "load_fnspid_prices",
           "load_news_csv", "load_phrasebank", "load_prices_csv", "load_sp500", "load_stocknet", "resolve_sentiment_model",
           "run_backtest", "score_from_p", "stored_scores", "synthetic_market", "trading_days", "train_sentiment",
           "walk_forward", "write_market_csvs"]
