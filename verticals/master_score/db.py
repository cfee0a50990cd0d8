"""The daily scoring database: `ingest` news and prices once (headlines are encoded and scored at ingest),
then `daily_run` scores the whole universe for one date, point in time, idempotently.

SQLite tables: prices, news (with sentiment and a float16 embedding), sectors, scores, meta. The scoring
model for a date is the one anchored at the latest retrain date on a 21-trading-day grid (from the first
price date in the database); it is trained once, saved beside the database with `save_model_dir`, and
reused, so re-running a date gives the same scores.
"""
from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.verticals.master_score.calendar import in_calendar, is_trading_day, session_closes, to_utc
from vai.verticals.master_score.model import PURGE, RETRAIN_EVERY, _sigmoid, score_from_p, train_rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS prices (date TEXT, ticker TEXT, open REAL, high REAL, low REAL, close REAL, adj_close REAL,
    volume REAL, PRIMARY KEY (date, ticker));
CREATE TABLE IF NOT EXISTS news (id TEXT PRIMARY KEY, published_at TEXT, ticker TEXT, headline TEXT, body TEXT,
    source TEXT, sentiment REAL, emb BLOB);
CREATE INDEX IF NOT EXISTS news_by_time ON news (published_at);
CREATE TABLE IF NOT EXISTS sectors (ticker TEXT PRIMARY KEY, sector TEXT);
CREATE TABLE IF NOT EXISTS scores (date TEXT, ticker TEXT, score INTEGER, p_up REAL, rank_pct REAL, rationale TEXT,
    model TEXT, PRIMARY KEY (date, ticker));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def _connect(db) -> sqlite3.Connection:
    p = Path(db)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(p, timeout=30)
        con.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise VaiError(f"{p}: not a master-score database ({exc})") from None
    return con


def ingest(news: pd.DataFrame, prices: pd.DataFrame, db, *, sentiment_model=None, sectors: dict | None = None) -> dict:
    """Add news and prices to the database (re-ingesting the same rows changes nothing)."""
    from vai.verticals.master_score.pipeline import resolve_sentiment_model, score_headlines

    model, label = resolve_sentiment_model(sentiment_model)
    con = _connect(db)
    try:
        old = dict(con.execute("SELECT key, value FROM meta").fetchall())
        if old.get("encoder") and old["encoder"] != model.encoder_name:
            raise VaiError(f"{db}: this database holds {old['encoder']} embeddings; ingest with a sentiment model "
                           f"on the same encoder (got {model.encoder_name})")
        # stored in UTC: the point-in-time query compares the stored text, and one story stamped 19:00Z and
        # 15:00-04:00 must get one id
        news = news.reset_index(drop=True)
        news = news.assign(published_at=to_utc(news["published_at"]).set_axis(news.index))
        outside = ~in_calendar(news["published_at"])
        if outside.any():
            raise VaiError(f"{int(outside.sum())} headline(s) are dated outside the NYSE calendar (1990 to one year "
                           f"ahead), first {news.loc[outside, 'published_at'].iloc[0]}: nothing was ingested; drop "
                           "them (`load_news_csv` reports such rows as bad rows)")
        ids = [hashlib.sha1(f"{t.isoformat()}|{k}|{h}".encode()).hexdigest()
               for t, k, h in zip(news["published_at"], news["ticker"], news["headline"])]
        known = set()
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            known |= {r[0] for r in con.execute(f"SELECT id FROM news WHERE id IN ({','.join('?' * len(chunk))})", chunk)}
        first_seen = ~pd.Series(ids).duplicated().to_numpy()  # the same story twice in this batch counts once
        new_mask = np.array([i not in known for i in ids], bool) & first_seen
        fresh = news[new_mask].reset_index(drop=True)
        sent, emb = score_headlines(fresh, model)
        with con:
            con.executemany("INSERT OR IGNORE INTO news VALUES (?,?,?,?,?,?,?,?)", [
                (i, t.isoformat(), k, h, b, s, float(v), e.astype(np.float16).tobytes())
                for i, t, k, h, b, s, v, e in zip(np.array(ids, object)[new_mask], fresh["published_at"], fresh["ticker"],
                                                  fresh["headline"], fresh.get("body", pd.Series([""] * len(fresh))).fillna(""),
                                                  fresh.get("source", pd.Series([""] * len(fresh))).fillna(""), sent, emb)])
            con.executemany("INSERT OR REPLACE INTO prices VALUES (?,?,?,?,?,?,?,?)", [
                (d.strftime("%Y-%m-%d"), t, o, h, lo, c, a, v) for d, t, o, h, lo, c, a, v in zip(
                    prices["date"], prices["ticker"], prices["open"], prices["high"], prices["low"], prices["close"],
                    prices["adj_close"], prices["volume"])])
            if sectors:
                con.executemany("INSERT OR REPLACE INTO sectors VALUES (?,?)", list(sectors.items()))
            con.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)", [("encoder", model.encoder_name),
                                                                         ("sentiment_model", label)])
        n_news, n_px = (con.execute("SELECT COUNT(*) FROM news").fetchone()[0],
                        con.execute("SELECT COUNT(*) FROM prices").fetchone()[0])
    finally:
        con.close()
    return {"news_added": int(new_mask.sum()), "news_already_present": int((~new_mask).sum()),
            "price_rows_upserted": int(len(prices)), "news_total": int(n_news), "price_rows_total": int(n_px),
            "sentiment_model": label}


def load_point_in_time(db, date) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, dict]:
    """Prices up to `date` and news published before `date`'s close: nothing later is even read."""
    day = pd.Timestamp(date).normalize()
    close_utc = session_closes(pd.DatetimeIndex([day])).iloc[0]
    con = _connect(db)
    try:
        prices = pd.read_sql_query("SELECT * FROM prices WHERE date <= ?", con, params=(day.strftime("%Y-%m-%d"),))
        # text comparison with a day's margin: rows ingested before times were stored in UTC may carry other
        # offsets (at most 14 h from UTC); the exact cut-off is applied below on the parsed times
        margin = (close_utc + pd.Timedelta(days=1)).isoformat()
        news = pd.read_sql_query("SELECT published_at, ticker, headline, body, source, sentiment, emb FROM news "
                                 "WHERE published_at < ?", con, params=(margin,))
        sectors = dict(con.execute("SELECT ticker, sector FROM sectors").fetchall())
    finally:
        con.close()
    if prices.empty:
        raise VaiError(f"{db}: no prices on or before {day.date()}; run `vai score ingest` first")
    prices["date"] = pd.to_datetime(prices["date"])
    news["published_at"] = pd.to_datetime(news["published_at"], utc=True, format="ISO8601")
    news = news[(news["published_at"] < close_utc).to_numpy()].reset_index(drop=True)
    emb = np.frombuffer(b"".join(news["emb"]), np.float16).reshape(len(news), -1).astype(np.float32) if len(news) \
        else np.zeros((0, 384), np.float32)
    sent = news["sentiment"].to_numpy(np.float32)
    return prices, news.drop(columns=["emb", "sentiment"]), sent, emb, sectors


def _scorer_for(panel, t_anchor: int, model: str, model_root: Path, seed: int):
    from vai.core.artifacts import load_model_dir, save_model_dir
    from vai.verticals.master_score.model import LightningScorer, LogisticScorer, make_scorer

    anchor = panel.dates[t_anchor].strftime("%Y-%m-%d")
    path = model_root / f"{anchor}-{model}"
    if (path / "config.json").exists():
        md = load_model_dir(path, vertical="master_score", kind="scorer")
        d = md.config["scorer"]
        if d["features"] == panel.features:
            sc = LogisticScorer.from_json(d) if model == "logistic" else LightningScorer.from_json(d, md.weights())
            return sc, path, True
    frame = panel.frame
    tr = train_rows(frame, t_anchor, PURGE)
    if len(np.unique(frame.loc[tr, "date_idx"])) < 60:
        return None, path, False
    sc = make_scorer(model, panel.features).fit(frame.loc[tr, panel.features].to_numpy(float), frame.loc[tr, "y"].to_numpy(float),
                                                frame.loc[tr, "date_idx"].to_numpy(), seed=seed)
    save_model_dir(path, config={"vertical": "master_score", "kind": "scorer", "model": model, "anchor": anchor,
                                 "scorer": sc.to_json()},
                   weights=sc.weights() if model == "lightning" else None,
                   metrics={"train_rows": int(tr.sum())})
    return sc, path, False


def daily_run(db, date, out_csv, *, model: str = "logistic", seed: int = 0, record: bool = True) -> dict:
    """Score every ticker with a price on `date`; write `out_csv` and the db's scores table; record a run."""
    from vai.core.io import atomic_write_table, check_table_output
    from vai.core.store import Store
    from vai.verticals.master_score.features import build_panel
    from vai.verticals.master_score.rationale import RationaleWriter

    check_table_output(out_csv)
    day = pd.Timestamp(date).normalize()
    if not is_trading_day(day):
        from vai.verticals.master_score.calendar import trading_days

        before = trading_days(day - pd.Timedelta(days=10), day - pd.Timedelta(days=1))
        hint = f"; the session before it is {before[-1].date()}" if len(before) else ""
        raise VaiError(f"--date {day.date()} is not an NYSE trading day (a weekend or exchange holiday){hint}")
    if not Path(db).exists():  # do not leave an empty database behind a typo
        raise VaiError(f"{db}: no such scoring database; create it with `vai score ingest --news ... --prices ... --db {db}`")
    t_start = time.perf_counter()
    store = Store()
    with store.run("master_score", "run", {"db": str(db), "date": str(day.date()), "out": str(out_csv), "model": model}) \
            as run:
        prices, news, sent, emb, sectors = load_point_in_time(db, day)
        panel = build_panel(prices, news, sent, emb, sectors)
        if panel.dates[-1] != day:
            raise VaiError(f"{db}: no prices for {day.date()} (latest is {panel.dates[-1].date()}); ingest them first")
        t = len(panel.dates) - 1
        first = int(np.flatnonzero(panel.frame["y"].notna().groupby(panel.frame["date_idx"]).any().to_numpy())[0]) \
            if panel.frame["y"].notna().any() else 0
        t_anchor = t - ((t - first) % RETRAIN_EVERY)  # retrain every 21 trading days
        scorer, mpath, reused = _scorer_for(panel, t_anchor, model, Path(str(db) + ".models"), seed)
        rows = panel.frame[panel.frame["date_idx"] >= t - 1].copy()
        if scorer is None:
            rows["p_up"], rows["base"], rows["trained"] = 0.5, 0.0, False
            for f in panel.features:
                rows["c_" + f] = 0.0
        else:
            base, contrib = scorer.contributions(rows[panel.features].to_numpy(float))
            rows["p_up"], rows["base"], rows["trained"] = _sigmoid(base + contrib.sum(1)), base, True
            for j, f in enumerate(panel.features):
                rows["c_" + f] = contrib[:, j]
        rows["score"] = score_from_p(rows["p_up"].to_numpy())
        rows["rank_pct"] = (rows.groupby("date")["p_up"].rank(pct=True) * 100).round(1)
        if t >= 1:  # "since yesterday" quotes yesterday's published score, not a re-score with today's model
            prev_day = panel.dates[t - 1].strftime("%Y-%m-%d")
            stored = stored_scores(db, date=prev_day).set_index("ticker")["score"]
            rows["published_score"] = np.where(rows["date_idx"] == t - 1,
                                               rows["ticker"].map(stored).astype(float), np.nan)
        rows["rationale"] = RationaleWriter(panel.features, panel.news).write(rows)
        today = rows[rows["date_idx"] == t].sort_values("ticker")
        out = today[["date", "ticker", "score", "p_up", "rank_pct", "rationale"]].copy()
        atomic_write_table(out_csv, out)  # a datetime: a date cell in .xlsx, 2024-01-02 in a CSV
        out["date"] = out["date"].dt.strftime("%Y-%m-%d")
        con = _connect(db)
        with con:
            con.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?)",
                            [(*r, mpath.name) for r in out.itertuples(index=False, name=None)])
        con.close()
        run.add_output("scores_csv", out_csv)
        run.write_table("scores", out)
        run.summary.update(date=str(day.date()), n_scored=len(out), model_reused=reused, model_dir=str(mpath),
                           trained=scorer is not None, mean_score=float(out["score"].mean()),
                           **extremes(out))
        summary = dict(run.summary, run_id=run.run_id, seconds=time.perf_counter() - t_start)
    return summary


def extremes(day: pd.DataFrame, k: int = 5) -> dict[str, list[dict]]:
    """The day's k highest and k lowest scores with the first sentence of each rationale's drivers, for the
    person reading the run's summary before the file (ties broken by ticker, so the lists are stable)."""
    def brief(r) -> str:
        parts = [p.strip() for p in str(r).split(". ") if p.startswith(("Lifting it", "Weighing on it"))]
        return ". ".join(parts)

    ranked = day.sort_values(["score", "ticker"], ascending=[False, True])
    pick = lambda rows: [{"ticker": t, "score": int(s), "why": brief(r)}  # noqa: E731
                         for t, s, r in zip(rows["ticker"], rows["score"], rows["rationale"])]
    return {"top": pick(ranked.head(k)), "bottom": pick(ranked.tail(k).iloc[::-1])}


def stored_scores(db, ticker: str | None = None, date: str | None = None) -> pd.DataFrame:
    con = _connect(db)
    try:
        where, args = [], []
        if ticker:
            where, args = where + ["ticker = ?"], args + [ticker]
        if date:
            where, args = where + ["date = ?"], args + [date]
        q = "SELECT * FROM scores" + (" WHERE " + " AND ".join(where) if where else "")
        return pd.read_sql_query(q + " ORDER BY date, ticker", con, params=tuple(args))
    finally:
        con.close()
