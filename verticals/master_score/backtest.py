"""Honest backtest metrics and the end-to-end walk-forward backtest.

Metrics (on rows whose 20-day label is known; untrained warm-up blocks are excluded):
daily rank IC (Spearman of the published 1-100 score vs the 20-day excess return; a day on which every stock has the same score counts as IC 0, no position), mean IC, ICIR (mean/std of the daily IC),
Newey-West t-statistic (19 lags: the labels overlap by 19 days), hit rate (beside the always-the-majority-side
rate), quintile mean excess returns and the Q5-Q1 spread, top-quintile turnover, Brier score (beside the base
rate's) and a reliability table, the same IC/spread for controls (random score, 12-1 momentum, 1-month
reversal), and moving-block bootstrap CIs (block 20 days).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from vai.core.errors import VaiError
from vai.core.progress import get_logger
from vai.verticals.master_score.features import EXECUTION_LAG, HORIZON
from vai.verticals.master_score.model import PURGE, RETRAIN_EVERY

log = get_logger("vai.master_score")

NW_LAGS = 19


def daily_ic(frame: pd.DataFrame, score_col: str, ret_col: str = "excess_ret") -> pd.Series:
    f = frame[["date", score_col, ret_col]].dropna()
    f = f[f.groupby("date")[score_col].transform("size") >= 5]
    if f.empty:
        return pd.Series(dtype=float)
    r1 = f.groupby("date")[score_col].rank()
    r2 = f.groupby("date")[ret_col].rank()
    tmp = pd.DataFrame({"date": f["date"], "a": r1, "b": r2})
    ic = tmp.groupby("date")[["a", "b"]].corr().xs("a", level=1)["b"]
    return ic.dropna()


def newey_west_t(series: pd.Series, lags: int = NW_LAGS) -> float:
    import statsmodels.api as sm

    x = np.asarray(series, float)
    if len(x) < lags + 5 or np.std(x) == 0:
        return float("nan")
    res = sm.OLS(x, np.ones_like(x)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    return float(res.tvalues[0])


def quintile_weights(frame: pd.DataFrame, score_col: str) -> pd.DataFrame:
    """Per row, its membership (0-1) of each score quintile 1 (lowest) to 5: columns w1..w5.

    Each date's names, sorted by score, fill the interval [0, 1] in equal shares, and a name belongs to a quintile
    by the share of its slice inside it. A group of tied names is one slice spread evenly over its members, so
    ties split across the quintiles their ranks span instead of all landing on one side: row order (the ticker's
    name) never decides who is "top", and a tied bottom group counts exactly as a tied top group does. Every
    quintile holds a fifth of the names each day, so Q5-Q1 exists on every day, and is 0 on a day with one
    score for all."""
    g = frame.groupby("date")[score_col]
    n = g.transform("size").to_numpy(float)
    lo = (g.rank(method="min").to_numpy(float) - 1) / n
    hi = g.rank(method="max").to_numpy(float) / n
    out = {}
    for j in range(1, 6):
        overlap = np.clip(np.minimum(hi, j / 5) - np.maximum(lo, (j - 1) / 5), 0, None)
        out[f"w{j}"] = overlap / (hi - lo)
    return pd.DataFrame(out, index=frame.index)


def quintile_returns(frame: pd.DataFrame, score_col: str, ret_col: str = "excess_ret") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per date: the mean excess return of each score quintile, 1 = lowest; the rows with their memberships)."""
    f = frame[["date", "ticker", score_col, ret_col]].dropna()
    f = f[f.groupby("date")[score_col].transform("size") >= 5].copy()
    if f.empty:
        return pd.DataFrame(columns=range(1, 6), dtype=float), f.assign(**{f"w{j}": [] for j in range(1, 6)})
    f = f.join(quintile_weights(f, score_col))
    q = {}
    for j in range(1, 6):
        w = f[f"w{j}"]
        num = (w * f[ret_col]).groupby(f["date"]).sum()
        q[j] = num / w.groupby(f["date"]).sum()
    return pd.DataFrame(q), f


def block_bootstrap_ci(series: pd.Series, stat=np.mean, block: int = 20, n_boot: int = 500, seed: int = 0,
                       level: float = 0.95) -> list[float]:
    x = np.asarray(series, float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2 * block:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    n_blocks = int(np.ceil(n / block))
    starts = rng.integers(0, n - block + 1, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)).reshape(n_boot, -1)[:, :n]
    stats = np.array([stat(x[i]) for i in idx])
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def flat_dates(frame: pd.DataFrame, col: str) -> pd.Index:
    """Dates (with >= 5 names) on which every stock has the same value of `col`: the signal ranks nothing."""
    f = frame[["date", col]].dropna()
    f = f[f.groupby("date")[col].transform("size") >= 5]
    n = f.groupby("date")[col].nunique()
    return n.index[n <= 1]


COST_BPS = 10.0  # default one-way trading cost per unit traded, in basis points: a liquid large-cap assumption


def tranche_roll_turnover(qf: pd.DataFrame, flat: pd.Index, horizon: int = HORIZON) -> pd.Series:
    """Per date, the share of a long-short tranche traded when it replaces the one opened `horizon` sessions
    earlier (0 = same names, 1 = both legs fully replaced).

    The Q5-Q1 spread of a `horizon`-day signal is earned by the standard overlapping portfolio: each day a
    new tranche (long Q5, short Q1, each leg weighted by quintile membership and summing to 1) opens and the
    one from `horizon` sessions ago closes, trading only the difference. A flat day's tranche is empty (no
    position), so leaving or entering one costs a full leg."""
    legs = []
    for col in ("w5", "w1"):
        w = qf.pivot_table(index="date", columns="ticker", values=col, aggfunc="sum", fill_value=0.0)
        w = w.div(w.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
        w.loc[w.index.isin(flat)] = 0.0
        legs.append((w - w.shift(horizon).fillna(0.0)).abs().sum(axis=1))
    return (legs[0] + legs[1]) / 4  # each leg trades at most 2 (sell 1, buy 1)


def _signal_metrics(frame: pd.DataFrame, col: str, seed: int,
                    cost_bps: float = COST_BPS) -> tuple[dict, pd.Series, pd.DataFrame]:
    ic = daily_ic(frame, col)
    q, qf = quintile_returns(frame, col)
    spread = (q[5] - q[1]).dropna()  # 0 on a flat day: every quintile is then the whole universe
    flat = flat_dates(frame, col)
    if len(flat):  # a day the signal ranks nothing is a day with no position: IC 0, not left out
        ic = pd.concat([ic, pd.Series(0.0, index=flat)]).sort_index()
    m = {"ic_mean": float(ic.mean()) if len(ic) else float("nan"),
         "ic_std": float(ic.std()) if len(ic) > 1 else float("nan"),
         "icir": float(ic.mean() / ic.std()) if len(ic) > 1 and ic.std() > 0 else float("nan"),
         "ic_t_newey_west": newey_west_t(ic), "ic_ci95": block_bootstrap_ci(ic, seed=seed),
         "ic_positive_days": float((ic > 0).mean()) if len(ic) else float("nan"), "n_days": int(len(ic)),
         "flat_days": int(len(flat)),
         "quintile_mean_excess_ret_20d": {int(k): float(v) for k, v in q.mean().items()},
         "q5_q1_spread_20d": float(spread.mean()) if len(spread) else float("nan"),
         "q5_q1_spread_ci95": block_bootstrap_ci(spread, seed=seed + 1),
         # gross: 252/20 non-overlapping 20-day periods a year, before trading costs
         "q5_q1_spread_annualised": float(spread.mean() * 252 / 20) if len(spread) else float("nan")}
    if len(spread):
        roll = tranche_roll_turnover(qf, flat).reindex(spread.index).fillna(0.0)
        net = spread - 4 * roll * cost_bps / 1e4  # 4 one-way trades per unit of roll (see tranche_roll_turnover)
        m.update({"cost_bps_one_way": float(cost_bps), "tranche_roll_turnover": float(roll.mean()),
                  "q5_q1_spread_net_20d": float(net.mean()), "q5_q1_spread_net_ci95": block_bootstrap_ci(net, seed=seed + 2),
                  "q5_q1_spread_net_annualised": float(net.mean() * 252 / 20)})
    return m, ic, qf


def check_cost_bps(cost_bps: float) -> None:
    if not (np.isfinite(cost_bps) and cost_bps >= 0):
        raise VaiError(f"--cost-bps {cost_bps:g}: give a one-way trading cost in basis points, 0 or more (e.g. 10)")


def compute_metrics(scores: pd.DataFrame, controls: pd.DataFrame | None = None, seed: int = 0,
                    cost_bps: float = COST_BPS) -> tuple[dict, dict]:
    """(report, series for plots). `scores` needs date, ticker, p_up, excess_ret, y, trained. `cost_bps`: the
    one-way trading cost (basis points per unit traded) taken off the Q5-Q1 spread for its net figures."""
    check_cost_bps(cost_bps)
    ev = scores[scores["trained"].astype(bool) & scores["excess_ret"].notna()].copy()
    if ev.empty:
        raise VaiError("nothing to evaluate: no scored day has both a trained model and a known 20-day return; "
                       "widen --start/--end or give more price history")
    rep: dict = {"n_rows": int(len(ev)), "n_tickers": int(ev["ticker"].nunique()),
                 "first_date": str(ev["date"].min().date()), "last_date": str(ev["date"].max().date())}
    # the published 1-100 score is what is evaluated: ranking p_up would use differences no user ever sees
    signal = "score" if "score" in ev.columns else "p_up"
    model_m, ic, qf = _signal_metrics(ev, signal, seed, cost_bps)
    rep["model"] = model_m
    rep["model"]["signal"] = signal
    flat = set(flat_dates(ev, signal))
    rep["model"]["flat_day_share"] = float(len(flat) / max(ev["date"].nunique(), 1))
    # a call is a score on a day that ranks stocks (a flat day is the base rate for all, not a view on any)
    decided = ev[(ev["p_up"] != 0.5) & ~ev["date"].isin(flat)]
    rep["model"]["hit_rate"] = float(((decided["p_up"] > 0.5) == (decided["y"] > 0.5)).mean()) if len(decided) else float("nan")
    rep["model"]["brier"] = float(((ev["p_up"] - ev["y"]) ** 2).mean())
    # hindsight baselines over the same rows, so a hit rate or Brier score has something to be read against:
    # with few stocks "beats the median" is not a coin flip (the median stock itself is a 0), and a model that
    # always says "down" there scores the majority side's hit rate
    up = float(decided["y"].mean()) if len(decided) else float("nan")
    rep["model"]["hit_rate_majority"] = max(up, 1 - up) if len(decided) else float("nan")
    rep["model"]["share_outperforming"] = float(ev["y"].mean())
    rep["model"]["brier_base_rate"] = float(((ev["y"].mean() - ev["y"]) ** 2).mean())
    bins = np.clip((ev["p_up"] * 10).astype(int), 0, 9)
    rel = ev.groupby(bins).agg(p_mean=("p_up", "mean"), observed=("y", "mean"), n=("y", "size"))
    rep["model"]["reliability"] = [{"bin": int(b), **{k: float(v) for k, v in r.items()}} for b, r in rel.iterrows()]
    top = qf[qf["w5"] > 0.5].groupby("date")["ticker"].apply(set)  # names mostly in the top quintile
    turns = [1 - len(a & b) / max(len(b), 1) for a, b in zip(top.iloc[:-1], top.iloc[1:])]
    rep["model"]["top_quintile_daily_turnover"] = float(np.mean(turns)) if turns else float("nan")
    series = {"ic": ic, "quintiles": rep["model"]["quintile_mean_excess_ret_20d"], "reliability": rel}
    rng = np.random.default_rng(seed)
    ev["random"] = rng.random(len(ev))
    ctrl_cols = {"random": "random"}
    if controls is not None:
        ev = ev.merge(controls, on=["date", "ticker"], how="left")
        ctrl_cols.update({"momentum_12_1": "mom_12_1", "reversal_1m": "neg_rev_1m"})
    rep["controls"] = {}
    for name, col in ctrl_cols.items():
        m, cic, _ = _signal_metrics(ev, col, seed)
        rep["controls"][name] = {k: m[k] for k in ("ic_mean", "icir", "ic_t_newey_west", "ic_ci95", "q5_q1_spread_20d",
                                                   "n_days")}
        # the model on the control's own rows: 12-1 momentum exists only after a year of prices, so its IC
        # covers fewer days than the model's and the two are compared on the same sample here
        same = ev[ev[col].notna()]
        mm, _, _ = _signal_metrics(same, signal, seed) if len(same) else ({"ic_mean": float("nan")}, None, None)
        rep["controls"][name]["model_ic_mean_same_rows"] = mm["ic_mean"]
        series["ic_" + name] = cic
    return rep, series


def save_plots(series: dict, out_dir: Path, synthetic: bool) -> dict[str, Path]:
    from vai.core.plots import pyplot, save_figure

    plt = pyplot()

    tag = " [SYNTHETIC DATA]" if synthetic else ""
    paths = {}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key, label in (("ic", "model"), ("ic_random", "random"), ("ic_momentum_12_1", "momentum 12-1"), ("ic_reversal_1m", "reversal 1m")):
        if key in series and len(series[key]):
            ax.plot(series[key].index, series[key].cumsum(), label=label)
    ax.set_title("Cumulative daily rank IC" + tag)
    ax.legend()
    ax.axhline(0, color="grey", lw=0.5)
    fig.tight_layout()
    paths["cumulative_ic"] = out_dir / "cumulative_ic.png"
    save_figure(fig, paths["cumulative_ic"], dpi=90)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    q = series["quintiles"]
    ax.bar([str(k) for k in q], [v * 100 for v in q.values()])
    ax.set_xlabel("score quintile")
    ax.set_ylabel("mean 20-day excess return, %")
    ax.set_title("Quintile returns" + tag, fontsize=9)
    fig.tight_layout()
    paths["quintiles"] = out_dir / "quintiles.png"
    save_figure(fig, paths["quintiles"], dpi=90)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    rel = series["reliability"]
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.scatter(rel["p_mean"], rel["observed"], s=np.clip(rel["n"] / rel["n"].max() * 200, 10, 200))
    ax.plot(rel["p_mean"], rel["observed"])
    ax.set_xlabel("predicted P(outperform)")
    ax.set_ylabel("observed frequency")
    ax.set_title("Reliability" + tag, fontsize=9)
    fig.tight_layout()
    paths["reliability"] = out_dir / "reliability.png"
    save_figure(fig, paths["reliability"], dpi=90)
    return paths


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, (np.floating,)):
        return _json_safe(float(obj))
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj


def _check_warm_up(panel, scores: pd.DataFrame, start, end) -> None:
    """A window inside the warm-up has no model to score with: say from when scores exist instead of writing a
    file of neutral placeholders; a window that starts inside it says which days are placeholders."""
    from vai.verticals.master_score.model import MIN_TRAIN_DATES, first_trainable_date

    first = first_trainable_date(panel)
    need = (f"a model needs {MIN_TRAIN_DATES} trading days with a known {HORIZON}-day label, which end "
            f"{PURGE} sessions before the day scored")
    if not scores["trained"].any():
        when = (f"with these prices the first scored day is {first.date()}: set --start on or after it"
                if first is not None else
                f"the prices ({panel.dates[0].date()} to {panel.dates[-1].date()}, {len(panel.dates)} sessions) are "
                f"too short for any; give at least {MIN_TRAIN_DATES + PURGE + HORIZON + EXECUTION_LAG} sessions of "
                "prices before --start")
        raise VaiError(f"no day in {start} to {end} can be scored: the window lies in the warm-up ({need}); {when}")
    untrained = scores.loc[~scores["trained"].astype(bool), "date"]
    if len(untrained):
        log.warning("%d day(s) from %s to %s are in the warm-up (%s) and get the neutral placeholder 50; they are "
                    "left out of the metrics (a window starting on or after %s has none: models retrain every %d "
                    "sessions from --start)", untrained.nunique(), untrained.min().date(), untrained.max().date(), need,
                    first.date() if first is not None else "?", RETRAIN_EVERY)


def run_backtest(news: pd.DataFrame, prices: pd.DataFrame, start, end, out_dir, *, sectors: dict | None = None,
                 sentiment_model=None, model: str = "logistic", synthetic: bool = False, seed: int = 0,
                 progress: bool = True, record: bool = True, params: dict | None = None, plots: bool = True,
                 cost_bps: float = COST_BPS) -> dict:
    """Walk-forward from nothing, write DIR/scores.csv, DIR/report.json and plots; record a store run."""
    from vai.core.io import atomic_write_json, atomic_write_table
    from vai.core.settings import seed_everything
    from vai.core.store import Store
    from vai.verticals.master_score.pipeline import build_features, resolve_sentiment_model
    from vai.verticals.master_score.model import walk_forward
    from vai.verticals.master_score.rationale import RationaleWriter

    check_cost_bps(cost_bps)  # before hours of walk-forward, not after
    seed_everything(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    store = Store()
    params = dict(params or {}, start=str(start), end=str(end), out=str(out), model=model, synthetic=synthetic,
                  cost_bps=float(cost_bps))
    with store.run("master_score", "backtest", params) if record else _null_run() as run:
        t = time.perf_counter()
        sent_model, sent_label = resolve_sentiment_model(sentiment_model)
        panel = build_features(news, prices, sent_model, sectors=sectors, timings=timings)
        t = time.perf_counter()
        scores, blocks = walk_forward(panel, start, end, model=model, seed=seed, progress=progress)
        _check_warm_up(panel, scores, start, end)
        timings["walk_forward_s"] = time.perf_counter() - t
        t = time.perf_counter()
        scores["rationale"] = RationaleWriter(panel.features, panel.news).write(scores)
        timings["rationale_s"] = time.perf_counter() - t
        controls = panel.frame[["date", "ticker", "mom_12_1", "rev_1m"]].assign(neg_rev_1m=lambda f: -f["rev_1m"])
        report, series = compute_metrics(scores, controls[["date", "ticker", "mom_12_1", "neg_rev_1m"]], seed=seed,
                                         cost_bps=cost_bps)
        report = {"synthetic": synthetic, "label": "SYNTHETIC market: not evidence about real stocks" if synthetic else "real data",
                  "model": model, "sentiment_model": sent_label, "features": panel.features, "horizon_days": HORIZON,
                  "execution_lag_days": EXECUTION_LAG, "retrain_every": RETRAIN_EVERY, "purge_days": PURGE, "start": str(start), "end": str(end),
                  "n_scored_rows": int(len(scores)), "blocks": [{k: v for k, v in b.items() if k != "model"} for b in blocks],
                  "metrics": report, "timings_s": timings}
        if plots:
            report["plots"] = {k: str(v) for k, v in save_plots(series, out, synthetic).items()}
        out_scores = scores.sort_values(["date", "ticker"])[["date", "ticker", "score", "p_up", "rank_pct", "rationale"]].copy()
        out_scores["date"] = out_scores["date"].dt.strftime("%Y-%m-%d")
        atomic_write_table(out / "scores.csv", out_scores)
        news_used = panel.news.drop(columns=["emb_row", "body"], errors="ignore")
        atomic_write_table(out / "news_used.parquet", news_used)
        detail = scores.drop(columns=["rationale"])
        atomic_write_table(out / "scores_detail.parquet", detail)
        atomic_write_json(out / "report.json", _json_safe(report))
        if blocks and blocks[-1].get("model"):
            atomic_write_json(out / "last_model.json", blocks[-1]["model"])
        if record:
            run.add_output("scores_csv", out / "scores.csv")
            run.add_output("report", out / "report.json")
            run.write_table("scores", out_scores)
            m = report["metrics"]["model"]
            run.summary.update(synthetic=synthetic, ic_mean=m["ic_mean"], ic_t=m["ic_t_newey_west"],
                               q5_q1_spread_20d=m["q5_q1_spread_20d"], hit_rate=m["hit_rate"], brier=m["brier"],
                               n_scored_rows=len(scores), out=str(out))
        report["run_id"] = run.run_id if record else None
    return report


class _null_run:
    run_id = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
