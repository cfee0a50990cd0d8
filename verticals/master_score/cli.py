"""`vai score ...`: ingest, sentiment train|eval, backtest, run (and synth for sample inputs)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vai.core.io import model_dir_arg, output_dir_arg, table_output_arg


def _iso_date(value: str) -> str:
    """argparse type: a YYYY-MM-DD date (argparse then names the flag in its error)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="daily 1-100 news-driven stock score with a rationale",
                       description="Daily 1-100 news-driven stock score (>= 51: more likely to beat the universe over 20 "
                                   "trading days), with rationale and honest walk-forward backtests.")
    s = p.add_subparsers(dest="score_command", metavar="VERB")

    q = s.add_parser("ingest", help="load news + prices CSVs into a scoring database (headlines scored once)")
    q.add_argument("--news", required=True, help="CSV: published_at (ISO-8601 with zone), ticker, headline[, body, source]")
    q.add_argument("--prices", required=True, help="CSV: date, ticker, open, high, low, close[, adj_close], volume")
    q.add_argument("--db", required=True, help="SQLite database path (created if missing)")
    q.add_argument("--sectors", help="optional CSV: ticker, sector")
    q.add_argument("--sentiment-model", help="sentiment model dir, or 'builtin' (default: the trained one if present)")
    q.add_argument("--strict", action="store_true", help="fail on any bad row instead of skipping it "
                   "(either way every bad row is listed in DB.bad_rows.csv)")
    q.set_defaults(func=cmd_ingest)

    q = s.add_parser("sentiment", help="train or evaluate the Financial PhraseBank sentiment model")
    ss = q.add_subparsers(dest="sentiment_command", metavar="ACTION")
    t = ss.add_parser("train", help="train on PhraseBank (stratified 80/20; metrics on the held-out 20%%)")
    t.add_argument("--agreement", default="50", choices=["50", "66", "75", "All"])
    t.add_argument("--encoder", default="minilm", choices=["minilm", "hashing"])
    t.add_argument("--out", type=model_dir_arg, help="model dir (default <models>/master_score/sentiment)")
    t.add_argument("--epochs", type=int, default=None, help="head epochs (default 40), or encoder+head epochs with --finetune (default 3)")
    t.add_argument("--finetune", action="store_true", help="fine-tune MiniLM with the head (slower to train, more accurate)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, help="use only the first N sentences (quick checks)")
    t.set_defaults(func=cmd_sentiment_train)
    e = ss.add_parser("eval", help="evaluate a sentiment model on the held-out PhraseBank split, or on --text")
    e.add_argument("--model", help="model dir (default <models>/master_score/sentiment)")
    e.add_argument("--agreement", default="50", choices=["50", "66", "75", "All"])
    e.add_argument("--seed", type=int, default=0, help="the split seed used at training")
    e.add_argument("--text", action="append", help="score this sentence instead (repeatable)")
    e.set_defaults(func=cmd_sentiment_eval)
    q.set_defaults(func=lambda a: _help(q))

    q = s.add_parser("backtest", help="walk-forward from nothing over [start, end]: scores.csv, report.json, plots")
    q.add_argument("--news", required=True)
    q.add_argument("--prices", required=True)
    q.add_argument("--start", required=True, type=_iso_date, help="first date to score (YYYY-MM-DD)")
    q.add_argument("--end", required=True, type=_iso_date, help="last date to score (YYYY-MM-DD)")
    q.add_argument("--out", type=output_dir_arg, required=True, help="output folder")
    q.add_argument("--sectors", help="optional CSV: ticker, sector")
    q.add_argument("--model", default="logistic", choices=["logistic", "lightning"])
    q.add_argument("--sentiment-model", help="sentiment model dir, or 'builtin'")
    q.add_argument("--synthetic", action="store_true", help="label the report as synthetic data")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--cost-bps", type=float, default=10.0,
                   help="one-way trading cost in basis points per unit traded, taken off the Q5-Q1 spread for its "
                        "net figures (default 10: liquid large caps; small caps cost more)")
    q.set_defaults(func=cmd_backtest)

    q = s.add_parser("run", help="score the whole universe for one date from a scoring database (idempotent)")
    q.add_argument("--db", required=True)
    q.add_argument("--date", required=True, type=_iso_date, help="the trading day to score (YYYY-MM-DD)")
    q.add_argument("--out", type=table_output_arg(), required=True, help="scores table to write (.csv, .tsv, .xlsx or .parquet)")
    q.add_argument("--model", default="logistic", choices=["logistic", "lightning"])
    q.set_defaults(func=cmd_run)

    q = s.add_parser("synth", help="write a SYNTHETIC market (news.csv, prices.csv, sectors.csv) to try the commands")
    q.add_argument("--out", type=output_dir_arg, required=True)
    q.add_argument("--tickers", type=int, default=40)
    q.add_argument("--days", type=int, default=320)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_synth)
    p.set_defaults(func=lambda a: _help(p))


def _help(parser) -> int:
    parser.print_help()
    return 2


def _load_inputs(args, bad_rows_csv: Path):
    """Load both CSVs; every bad row goes to `bad_rows_csv` (the warning shows the first few), and with
    --strict any bad row stops the command after that file is written."""
    import pandas as pd

    from vai.core.errors import VaiError
    from vai.core.io import atomic_write_table
    from vai.verticals.master_score.io import load_news_csv, load_prices_csv
    from vai.verticals.master_score.pipeline import read_sectors

    strict = getattr(args, "strict", False)
    news, prices = load_news_csv(args.news), load_prices_csv(args.prices)
    bad = [res for res in (news, prices) if res.bad_rows]
    if bad:
        atomic_write_table(bad_rows_csv, pd.concat([res.bad_rows_frame() for res in bad], ignore_index=True))
        if strict:
            raise VaiError("; ".join(res.summary(verb="found") for res in bad)
                           + f" (--strict: nothing loaded; every bad row is listed in {bad_rows_csv})")
        for res in bad:
            print(f"warning: {res.summary()}", file=sys.stderr)
        print(f"warning: every bad row is listed in {bad_rows_csv}", file=sys.stderr)
    sectors = read_sectors(args.sectors) if args.sectors else None
    return news, prices, sectors


def cmd_ingest(args) -> int:
    from vai.core.store import Store
    from vai.verticals.master_score.db import ingest

    news, prices, sectors = _load_inputs(args, Path(str(args.db) + ".bad_rows.csv"))
    with Store().run("master_score", "ingest", {"news": args.news, "prices": args.prices, "db": args.db}) as run:
        summary = ingest(news.frame, prices.frame, args.db, sentiment_model=args.sentiment_model, sectors=sectors)
        summary.update(bad_news_rows=len(news.bad_rows), bad_price_rows=len(prices.bad_rows))
        run.summary.update(summary)
        run.add_output("db", args.db)
        if news.bad_rows or prices.bad_rows:
            run.status = "partial"
    print(json.dumps(summary, indent=2))
    return 0


def cmd_sentiment_train(args) -> int:
    from vai.core.store import Store
    from vai.verticals.master_score.io import load_phrasebank
    from vai.verticals.master_score.text import default_sentiment_dir, train_sentiment

    data = load_phrasebank(agreement=args.agreement)
    if args.limit:
        data = data.sample(n=min(args.limit, len(data)), random_state=args.seed).reset_index(drop=True)
    out = Path(args.out) if args.out else default_sentiment_dir()
    with Store().run("master_score", "sentiment-train", vars_json(args)) as run:
        model = train_sentiment(data["sentence"].tolist(), data["label"].tolist(), encoder=args.encoder,
                                max_epochs=args.epochs or 40, seed=args.seed, progress=sys.stderr.isatty(),
                                finetune=args.finetune, finetune_epochs=args.epochs or 3)
        model.metrics.update(dataset=f"Financial PhraseBank Sentences_{args.agreement}Agree", n_sentences=len(data),
                             reference_finbert={"accuracy": 0.86, "macro_f1": 0.84})
        model.save(out)
        run.add_output("model", out)
        run.summary.update({k: v for k, v in model.metrics.items() if not isinstance(v, dict)})
    print(json.dumps(model.metrics, indent=2))
    print(f"model saved to {out}")
    return 0


def cmd_sentiment_eval(args) -> int:
    from vai.core.errors import VaiError
    from vai.core.store import Store
    from vai.verticals.master_score.io import load_phrasebank
    from vai.verticals.master_score.text import (SentimentModel, default_sentiment_dir, evaluate_sentiment,
                                                 phrasebank_split, unseen_by)

    model = SentimentModel.load(args.model or default_sentiment_dir())
    if args.text:
        sent, _ = model.score(args.text, cache=False)
        for text, v in zip(args.text, sent):
            print(f"{v:+.3f}  {text}")
        return 0
    _, test = phrasebank_split(load_phrasebank(agreement=args.agreement), seed=args.seed)
    n_split = len(test)
    if model.trained_on is None:
        print("warning: this model does not record its training sentences (trained before that was saved): "
              "some of the evaluation sentences may be ones it was trained on", file=sys.stderr)
    else:  # another --agreement, --limit or seed than training used would otherwise test on training sentences
        test = unseen_by(model, test)
        if len(test) < n_split:
            print(f"note: {n_split - len(test)} of the {n_split} held-out sentences were in this model's training "
                  "data and are left out", file=sys.stderr)
        if test.empty:
            raise VaiError("every evaluation sentence was in the model's training data: nothing held out to evaluate")
    with Store().run("master_score", "sentiment-eval", vars_json(args)) as run:
        res = evaluate_sentiment(model, test["sentence"].tolist(), test["label"].tolist())
        res["excluded_seen_in_training"] = n_split - len(test)
        res["reference_finbert"] = {"accuracy": 0.86, "macro_f1": 0.84}
        run.summary.update(accuracy=res["accuracy"], macro_f1=res["macro_f1"], n=res["n"])
    print(json.dumps(res, indent=2))
    return 0


def cmd_backtest(args) -> int:
    from vai.core.errors import VaiError
    from vai.verticals.master_score.backtest import check_cost_bps, run_backtest

    check_cost_bps(args.cost_bps)
    if args.end < args.start:  # ISO dates compare as text; checked before any file is read
        raise VaiError(f"--end {args.end} is before --start {args.start}: give the first date to score as --start")
    news, prices, sectors = _load_inputs(args, Path(args.out) / "bad_rows.csv")
    report = run_backtest(news.frame, prices.frame, args.start, args.end, args.out, sectors=sectors,
                          sentiment_model=args.sentiment_model, model=args.model, synthetic=args.synthetic, seed=args.seed,
                          progress=True, cost_bps=args.cost_bps, params={"news": args.news, "prices": args.prices,
                                                 "bad_rows": len(news.bad_rows) + len(prices.bad_rows)})
    m = report["metrics"]["model"]
    print(f"{report['label']}: {report['n_scored_rows']} scores in {args.out}/scores.csv")
    print(f"rank IC {m['ic_mean']:.3f} (NW t {m['ic_t_newey_west']:.2f}), Q5-Q1 {m['q5_q1_spread_20d']:.4f} per 20d "
          f"({m.get('q5_q1_spread_net_20d', float('nan')):.4f} after {m.get('cost_bps_one_way', 0):g} bp one-way costs), "
          f"hit rate {m['hit_rate']:.3f} (always the majority side: {m['hit_rate_majority']:.3f}), "
          f"Brier {m['brier']:.4f} (base rate: {m['brier_base_rate']:.4f}); report: {args.out}/report.json")
    return 0


def cmd_run(args) -> int:
    from vai.verticals.master_score.db import daily_run

    summary = daily_run(args.db, args.date, args.out, model=args.model)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_synth(args) -> int:
    from vai.verticals.master_score.synthetic import write_market_csvs

    paths = write_market_csvs(args.out, n_tickers=args.tickers, n_days=args.days, seed=args.seed)
    print("SYNTHETIC market written: " + ", ".join(str(p) for p in paths))
    return 0


def vars_json(args) -> dict:
    return {k: v for k, v in vars(args).items() if k != "func" and isinstance(v, (str, int, float, bool, type(None), list))}
