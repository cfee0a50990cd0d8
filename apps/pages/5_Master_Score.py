"""Master score: universe table, ticker view (score history, news markers, rationale), backtest report."""
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from vai.core.extras import page_requires
from vai.core.store import Store
from vai.core.tables import download_buttons
from vai.verticals.master_score import run_backtest, synthetic_market

st.set_page_config(page_title="Master score", layout="wide")
page_requires(st, "master_score", "The master-score page")  # an install without the [master_score] extra: one line, not a traceback
st.title("Master score: daily 1-100 news-driven stock score")
st.caption("Score >= 51: the model thinks the stock is more likely than not to beat the universe median over the "
           "next 20 trading days. Walk-forward, point in time (news counts for a day only if published before the "
           "16:00 New York close).")

store = Store()
runs = store.runs(vertical="master_score", limit=50)
st.header("Recent runs")
if runs.empty:
    st.info("No master-score runs yet: run `vai score backtest ...`, `vai demo`, or the synthetic backtest below.")
else:
    st.dataframe(runs[["run_id", "command", "status", "started_at", "duration_s"]], hide_index=True, use_container_width=True)

with st.sidebar:
    st.subheader("Run a small backtest")
    source = st.radio("Input", ["synthetic sample", "upload CSVs"], key="source")
    n_tickers = st.slider("tickers (synthetic)", 10, 60, 20, key="n_tickers")
    n_days = st.slider("trading days (synthetic)", 200, 400, 240, key="n_days")
    table_types = ["csv", "tsv", "txt", "xlsx", "gz"]  # what the CLI reads: CSV in any dialect, gzipped, a workbook
    news_file = st.file_uploader("news CSV or Excel", type=table_types, key="news_upload") if source == "upload CSVs" else None
    prices_file = st.file_uploader("prices CSV or Excel", type=table_types, key="prices_upload") if source == "upload CSVs" else None
    go = st.button("Run backtest", key="run_bt")

if go:
    from vai.core.settings import get_settings

    out = get_settings().runs_dir / "master_score_page"
    with st.spinner("walk-forward backtest..."):
        try:
            if source == "synthetic sample":
                news, prices, sectors, _ = synthetic_market(n_tickers=n_tickers, n_days=n_days, seed=11)
                synthetic = True
            else:
                if not (news_file and prices_file):
                    raise ValueError("upload both a news CSV and a prices CSV")
                from vai.verticals.master_score import load_news_csv, load_prices_csv

                tmp = out / "uploads"
                tmp.mkdir(parents=True, exist_ok=True)
                loaded = []
                for kind, upload, load in (("news", news_file, load_news_csv), ("prices", prices_file, load_prices_csv)):
                    path = tmp / f"{kind}_{Path(upload.name).name}"  # the upload's own name: its suffix says the format
                    path.write_bytes(upload.getvalue())
                    res = load(path)
                    if res.bad_rows:  # left out, as the CLI does, but said so: a silent drop would look like no news
                        st.warning(f"{upload.name}: {res.summary()}")
                    loaded.append(res.frame)
                news, prices = loaded
                sectors, synthetic = None, False
            dates = sorted(prices["date"].unique())
            rep = run_backtest(news, prices, dates[min(80, len(dates) // 3)], dates[-1], out / "backtest", sectors=sectors,
                               synthetic=synthetic, progress=False, sentiment_model="builtin" if synthetic else None)
            st.session_state["bt_dir"] = str(out / "backtest")
            st.success(f"done: run {rep['run_id']}")
        except Exception as exc:  # noqa: BLE001 - shown to the user, not a crash
            st.error(f"backtest failed: {exc}")

bt_runs = runs[(runs["command"] == "backtest") & (runs["status"] == "succeeded")] if not runs.empty else runs
choices = ([st.session_state["bt_dir"]] if "bt_dir" in st.session_state else []) + \
    [r["outputs"]["report"].rsplit("/", 1)[0] for _, r in bt_runs.iterrows() if "report" in r["outputs"]]
choices = list(dict.fromkeys(choices))
if not choices:
    st.stop()
bt_choice = st.selectbox("Backtest to show", choices, key="bt_choice")
if bt_choice is None:
    st.stop()
bt_dir = Path(bt_choice)
if not (bt_dir / "report.json").exists():
    st.warning(f"{bt_dir} no longer has report.json")
    st.stop()
report = json.loads((bt_dir / "report.json").read_text())
scores = pd.read_csv(bt_dir / "scores.csv")
news = pd.read_parquet(bt_dir / "news_used.parquet") if (bt_dir / "news_used.parquet").exists() else pd.DataFrame()
if report.get("synthetic"):
    st.warning("SYNTHETIC data: these numbers show the pipeline works, not that it predicts real stocks.")

st.header("Universe")
dates = sorted(scores["date"].unique())
day = st.select_slider("Date", options=dates, value=dates[-1], key="day")
lo, hi = st.slider("Score range", 1, 100, (1, 100), key="score_range")
query = st.text_input("Ticker contains", key="ticker_query")
table = scores[(scores["date"] == day) & scores["score"].between(lo, hi)]
if query:
    table = table[table["ticker"].str.contains(query.upper(), regex=False)]
st.dataframe(table.sort_values("score", ascending=False), hide_index=True, use_container_width=True)
download_buttons(st, table.sort_values("score", ascending=False), f"scores_{str(day)[:10]}", "download_scores")

st.header("Ticker view")
tickers = sorted(scores["ticker"].unique())
ticker = st.selectbox("Ticker", tickers, key="ticker")
hist = scores[scores["ticker"] == ticker].sort_values("date")
import plotly.graph_objects as go  # noqa: E402

fig = go.Figure()
fig.add_trace(go.Scatter(x=hist["date"], y=hist["score"], mode="lines", name="score"))
if not news.empty:
    nt = news[news["ticker"] == ticker].copy()
    nt["day"] = pd.to_datetime(nt["date"]).dt.strftime("%Y-%m-%d")
    nt = nt[nt["day"].isin(set(hist["date"]))].merge(hist[["date", "score"]], left_on="day", right_on="date", how="left")
    fig.add_trace(go.Scatter(x=nt["day"], y=nt["score"], mode="markers", name="news",
                             marker=dict(color=nt["sentiment"], colorscale="RdYlGn", cmin=-1, cmax=1, size=9),
                             text=nt["headline"], hovertemplate="%{text}<extra></extra>"))
fig.add_hline(y=50.5, line_dash="dot", line_color="grey")
fig.update_layout(height=320, yaxis_title="score (1-100)", margin=dict(t=20, b=20))
st.plotly_chart(fig, use_container_width=True)
row = hist[hist["date"] == day]
st.subheader(f"Rationale on {day}")
st.write(row["rationale"].iloc[0] if len(row) else "no score for this ticker on that date")

st.header("Backtest report")
m = report["metrics"]["model"]
cols = st.columns(6)
net_label = f"Q5-Q1 / 20d after {m.get('cost_bps_one_way', 10):g} bp"
for col, (name, val) in zip(cols, [("rank IC", m["ic_mean"]), ("NW t-stat", m["ic_t_newey_west"]),
                                   ("Q5-Q1 / 20d", m["q5_q1_spread_20d"]), (net_label, m.get("q5_q1_spread_net_20d")),
                                   ("hit rate", m["hit_rate"]), ("Brier", m["brier"])]):
    col.metric(name, "n/a" if val is None else f"{val:.3f}")
ctrl = pd.DataFrame(report["metrics"]["controls"]).T[["ic_mean", "icir", "ic_t_newey_west", "q5_q1_spread_20d"]]
st.dataframe(ctrl, use_container_width=True)
imgs = [p for p in report.get("plots", {}).values() if Path(p).exists()]
if imgs:
    st.image(imgs, width=360)
