"""The embedded results store: every batch job and training run records itself here.

A run row holds the vertical, the command, its parameters, status, timings, the output paths and a
small JSON summary; tabular outputs go next to it as Parquet files (`<home>/runs/<run_id>/<name>.parquet`).
The CLI (`vai runs`) and the Streamlit pages read past runs from here.

The store is a SQLite file (stdlib, no server, safe for several processes with WAL and a busy timeout),
addressed by URL (`sqlite:///path/to/store.sqlite`) so that a server database can be pointed to later
without changing callers.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sqlite3
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vai.core.errors import VaiError
from vai.core.io import atomic_write_table
from vai.core.settings import get_settings

# "interrupted": the process that ran it ended without finishing it (killed, out of memory, the machine stopped);
# found when the store is read on the machine that ran it
STATUSES = ("running", "succeeded", "partial", "failed", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    vertical    TEXT NOT NULL,
    command     TEXT NOT NULL,
    params      TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    duration_s  REAL,
    outputs     TEXT NOT NULL DEFAULT '{}',
    summary     TEXT NOT NULL DEFAULT '{}',
    error       TEXT,
    host        TEXT,
    pid         INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_vertical ON runs (vertical, started_at);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _sqlite_path(url: str) -> Path:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):]).expanduser()
    if "://" not in url:  # a bare path
        return Path(url).expanduser()
    scheme = url.split("://", 1)[0]
    raise VaiError(f"store URL scheme {scheme!r} is not supported yet; use sqlite:///PATH (VAI_STORE_URL)")


@dataclass
class Run:
    """A run in progress. Use through `Store.run(...)`; outputs and summary are saved when it ends."""

    store: "Store"
    run_id: str
    vertical: str
    command: str
    params: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    status: str = "running"

    @property
    def dir(self) -> Path:
        d = self.store.tables_dir / self.run_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def add_output(self, name: str, path: str | os.PathLike) -> None:
        self.outputs[name] = str(Path(path).resolve())

    def write_table(self, name: str, frame) -> Path:
        """Save a DataFrame as Parquet beside the run and record it as an output."""
        path = atomic_write_table(self.dir / f"{name}.parquet", frame)
        self.add_output(name, path)
        return path


class Store:
    def __init__(self, url: str | None = None):
        settings = get_settings()
        self.url = url or settings.store_url
        self.path = _sqlite_path(self.url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tables_dir = self.path.parent / "store_tables"
        with self._connect() as con:
            con.executescript(_SCHEMA)
            if "pid" not in {r["name"] for r in con.execute("PRAGMA table_info(runs)")}:  # a store from before pids
                con.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise VaiError(f"cannot open the results store {self.path}: {exc}") from None
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.row_factory = sqlite3.Row
            with con:
                yield con
        except sqlite3.DatabaseError as exc:
            raise VaiError(f"results store {self.path} is unreadable ({exc}); move it aside to start a new one") from None
        finally:
            con.close()

    # -- writing -----------------------------------------------------------------------------------
    def start(self, vertical: str, command: str, params: dict[str, Any] | None = None) -> Run:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]
        run = Run(self, run_id, vertical, command, dict(params or {}))
        with self._connect() as con:
            con.execute(
                "INSERT INTO runs (run_id, vertical, command, params, status, started_at, host, pid) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (run_id, vertical, command, json.dumps(run.params, default=str), "running", _now(), socket.gethostname(),
                 os.getpid()),
            )
        return run

    def finish(self, run: Run, status: str, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        run.status = status
        with self._connect() as con:
            row = con.execute("SELECT started_at FROM runs WHERE run_id=?", (run.run_id,)).fetchone()
            started = _dt.datetime.fromisoformat(row["started_at"])
            finished = _dt.datetime.now(_dt.timezone.utc)
            con.execute(
                "UPDATE runs SET status=?, finished_at=?, duration_s=?, outputs=?, summary=?, error=? WHERE run_id=?",
                (status, finished.isoformat(timespec="milliseconds"), (finished - started).total_seconds(),
                 json.dumps(run.outputs), json.dumps(run.summary, default=str), error, run.run_id),
            )

    @contextlib.contextmanager
    def run(self, vertical: str, command: str, params: dict[str, Any] | None = None) -> Iterator[Run]:
        """Record a run: status `succeeded` (or `partial` if the body set it), `failed` on an exception."""
        run = self.start(vertical, command, params)
        try:
            yield run
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through the CLI (`Terminated`)
            from vai.core.errors import Terminated

            how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
            self.finish(run, "interrupted", error=f"stopped by {how}; batch jobs resume where they stopped when run again")
            raise
        except BaseException as exc:
            msg = str(exc) if isinstance(exc, VaiError) else "".join(traceback.format_exception_only(exc)).strip()
            self.finish(run, "failed", error=msg)
            raise
        else:
            self.finish(run, "partial" if run.status == "partial" else "succeeded")

    # -- reading -----------------------------------------------------------------------------------
    def _mark_interrupted(self, con: sqlite3.Connection) -> None:
        """Runs still `running` whose process on this machine is gone: a SIGKILL, the OOM killer or a crash left
        no chance to record the end, so without this they would read as running forever."""
        here = socket.gethostname()
        for row in con.execute("SELECT run_id, pid, started_at FROM runs WHERE status='running' AND host=? AND "
                               "pid IS NOT NULL", (here,)).fetchall():
            if not _process_alive(row["pid"], row["started_at"]):
                try:
                    con.execute("UPDATE runs SET status='interrupted', error=? WHERE run_id=? AND status='running'",
                                (f"process {row['pid']} on {here} ended without finishing this run (killed or "
                                 "crashed); batch jobs resume where they stopped when run again", row["run_id"]))
                except sqlite3.OperationalError:  # a store this user may only read: list it as it is
                    return

    def runs(self, vertical: str | None = None, limit: int = 50, status: str | None = None):
        """Past runs, newest first, as a DataFrame."""
        import pandas as pd

        sql = "SELECT * FROM runs"
        where, args = [], []
        if vertical:
            where.append("vertical=?")
            args.append(vertical)
        if status:
            where.append("status=?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, run_id DESC LIMIT ?"
        args.append(int(limit))
        with self._connect() as con:
            self._mark_interrupted(con)
            rows = [dict(r) for r in con.execute(sql, args).fetchall()]
        for r in rows:
            for key in ("params", "outputs", "summary"):
                r[key] = json.loads(r[key]) if r[key] else {}
        cols = ["run_id", "vertical", "command", "status", "started_at", "finished_at", "duration_s",
                "params", "outputs", "summary", "error", "host", "pid"]
        return pd.DataFrame(rows, columns=cols)

    def get(self, run_id: str) -> dict[str, Any]:
        with self._connect() as con:
            self._mark_interrupted(con)
            row = con.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            raise VaiError(f"no run {run_id!r} in the store {self.path}")
        rec = dict(row)
        for key in ("params", "outputs", "summary"):
            rec[key] = json.loads(rec[key]) if rec[key] else {}
        return rec

    def read_table(self, run_id: str, name: str):
        import pandas as pd

        outputs = self.get(run_id)["outputs"]
        if name not in outputs:
            raise VaiError(f"run {run_id} has no output {name!r} (it has: {', '.join(outputs) or 'none'})")
        path = Path(outputs[name])
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)


def _process_alive(pid: int, started_at: str) -> bool:
    """Whether process `pid` still runs and is the one that started the run (not a later process given the same
    pid: on Linux its start time, from /proc, must not be after the run's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        began = boot + ticks / os.sysconf("SC_CLK_TCK")
        # slack for clock-tick rounding and a wall clock stepped forward meanwhile (NTP); pids are not reused
        # within minutes, and a live run marked by mistake gets its real status when it finishes
        return began <= _dt.datetime.fromisoformat(started_at).timestamp() + 120.0
    except (OSError, ValueError, IndexError, StopIteration):  # no /proc (macOS): trust the pid
        return True


def open_store(url: str | None = None) -> Store:
    return Store(url)
