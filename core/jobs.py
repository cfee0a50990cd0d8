"""The batch runner every vertical uses: map a function over items with progress, per-item error
capture, atomic writes and resume.

    result = run_job(embed_slide, slides, out_dir=..., key=lambda p: Path(p).stem, engine="local")

- `fn(item, **fn_kwargs)` returns something JSON-serialisable (a small dict: counts, output paths). Big
  outputs are files the function writes itself, atomically (`vai.core.io`).
- Each finished item leaves `out_dir/.vai_job/<fn>/done/<key>.json` (written atomically by the driver), so a
  re-run skips it: a crash mid-job loses at most the items in flight. A marker counts only for the same
  function with the same settings (`settings`, default `fn_kwargs`, recorded as a hash) and, when
  `complete(result)` is given, only while it says the item's output is still there: a re-run with other
  options, or after a result file was deleted, redoes the item instead of reporting stale work as done.
  Two verbs writing into one folder (tile, then embed) keep separate markers.
- An exception in one item is recorded in `out_dir/.vai_job/failed/<key>.json` and the job goes on; failed
  items are retried on the next run. `out_dir/job_errors.csv` lists them after each run.
- Engines: `local` (a process pool; `workers=1` runs in-process, which is what a stage holding a model on
  a GPU wants) and `ray` (extra `[distributed]`: `address=None` starts a local Ray, `address="ray://..."` or
  `"auto"` joins a cluster; the same job runs on a laptop or a cluster).
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
import os
import re
import signal
import sys
import time
import traceback
import types
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from vai.core.errors import MissingDependencyError, VaiError
from vai.core.io import atomic_write_json, atomic_write_table
from vai.core.progress import Progress, get_logger

ENGINES = ("local", "ray")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
log = get_logger("vai.jobs")


@dataclass
class JobResult:
    out_dir: Path
    total: int
    done: list[str] = field(default_factory=list)       # finished in this run
    resumed: list[str] = field(default_factory=list)    # finished in an earlier run, skipped now
    failed: dict[str, str] = field(default_factory=dict)  # key -> one-line error
    results: dict[str, Any] = field(default_factory=dict)  # key -> fn's return value (this and earlier runs)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> dict[str, Any]:
        return {"total": self.total, "done": len(self.done), "resumed": len(self.resumed),
                "failed": len(self.failed), "seconds": round(self.seconds, 3),
                "errors": dict(list(self.failed.items())[:20])}


def _marker_name(key: str) -> str:
    safe = _SAFE.sub("_", key)[:120]
    if safe != key:  # keep distinct keys distinct after sanitising
        safe += "-" + hashlib.sha1(key.encode()).hexdigest()[:8]
    return safe + ".json"


def _call(fn: Callable, item: Any, kwargs: Mapping[str, Any]) -> tuple[str, Any]:
    """Run one item, turning any exception into a recorded error (runs inside the worker)."""
    try:
        return "done", fn(item, **kwargs)
    except VaiError as exc:
        return "failed", {"error": str(exc), "traceback": traceback.format_exc()}
    except Exception as exc:  # noqa: BLE001 - one bad item must never stop the job
        return "failed", {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A stable hash of the options that determine a job's results (paths and values, not objects)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class _Bookkeeper:
    def __init__(self, out_dir: Path, result: JobResult, progress: Progress, job_name: str, settings: str,
                 complete: Callable[[Any], bool] | None = None):
        self.state = out_dir / ".vai_job" / _SAFE.sub("_", job_name)
        self.done_dir = self.state / "done"
        self.failed_dir = self.state / "failed"
        self.done_dir.mkdir(parents=True, exist_ok=True)
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        self.result = result
        self.progress = progress
        self.settings = settings
        self.complete = complete
        self.stale: list[str] = []  # done before, but with other settings or with outputs gone

    def _outputs_present(self, payload: Any) -> bool:
        if self.complete is None or payload is None:
            return True
        try:
            return bool(self.complete(payload))
        except Exception:  # noqa: BLE001 - an unreadable output counts as missing: redo the item
            return False

    def finished_before(self, key: str) -> bool:
        marker = self.done_dir / _marker_name(key)
        if not marker.exists():
            return False
        try:
            payload = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            return False  # a damaged marker: redo the item
        if payload.get("settings") != self.settings or not self._outputs_present(payload.get("result")):
            self.stale.append(key)
            return False
        self.result.resumed.append(key)
        self.result.results[key] = payload.get("result")
        return True

    def record(self, key: str, status: str, payload: Any) -> None:
        name = _marker_name(key)
        if status == "done":
            try:
                atomic_write_json(self.done_dir / name, {"key": key, "result": payload, "settings": self.settings,
                                                         "at": time.time()})
            except TypeError as exc:
                status, payload = "failed", {"error": f"result is not JSON-serialisable: {exc}", "traceback": ""}
        if status == "done":
            (self.failed_dir / name).unlink(missing_ok=True)
            self.result.done.append(key)
            self.result.results[key] = payload
        else:
            atomic_write_json(self.failed_dir / name, {"key": key, **payload, "at": time.time()})
            self.result.failed[key] = payload["error"]
            log.warning("item %s failed: %s", key, payload["error"])
        self.progress.update(status)


def run_job(fn: Callable[..., Any], items: Iterable[Any], *, out_dir: str | os.PathLike,
            key: Callable[[Any], str] = str, engine: str = "local", workers: int | None = None,
            address: str | None = None, fn_kwargs: Mapping[str, Any] | None = None, desc: str = "items",
            store_run=None, settings: Mapping[str, Any] | None = None,
            complete: Callable[[Any], bool] | None = None, redo: bool = False) -> JobResult:
    """Map `fn` over `items`; see the module docstring. Returns a JobResult (never raises for item errors).

    `settings`: the options that determine the results (default: all of `fn_kwargs`); leave out the ones that
    only change speed (batch size, worker counts) so that changing them still resumes. `complete(result)`: whether
    what an earlier run of the item wrote is still there and whole (e.g. its output file exists); if not, it is
    redone. `redo=True` runs every item again, whatever earlier runs left."""
    if engine not in ENGINES:
        raise VaiError(f"engine {engine!r} is not one of: {', '.join(ENGINES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = list(items)
    keys = [str(key(it)) for it in items]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise VaiError(f"two or more items share the key(s) {sorted(dupes)[:5]}: give each item a unique name")
    kwargs = dict(fn_kwargs or {})
    result = JobResult(out_dir=out, total=len(items))
    progress = Progress(len(items), desc)
    qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", "fn"))
    book = _Bookkeeper(out, result, progress, qualname.rsplit(".", 1)[-1],
                       settings_hash({"fn": f"{getattr(fn, '__module__', '')}.{qualname}",
                                      **dict(kwargs if settings is None else settings)}), complete)
    todo = []
    for k, it in zip(keys, items):
        if not redo and book.finished_before(k):
            progress.update("skipped")
        else:
            todo.append((k, it))
    if result.resumed:
        log.info("%s: resuming, %d of %d already done", desc, len(result.resumed), len(items))
    if book.stale:
        log.info("%s: redoing %d item(s) done before with other settings or whose output files are gone (%s%s)",
                 desc, len(book.stale), ", ".join(book.stale[:5]), ", ..." if len(book.stale) > 5 else "")
    t0 = time.monotonic()
    if todo:
        if engine == "ray":
            _run_ray(fn, todo, kwargs, book, address, workers)
        elif (workers or 1) <= 1 or len(todo) == 1:
            for k, it in todo:
                book.record(k, *_call(fn, it, kwargs))
        else:
            _run_pool(fn, todo, kwargs, book, workers)
    result.seconds = time.monotonic() - t0
    progress.close()
    _write_report(out, result)
    if store_run is not None:
        store_run.summary.setdefault("job", {}).update(result.summary())
        if result.failed:
            store_run.status = "partial"
    return result


def _write_report(out: Path, result: JobResult) -> None:
    import pandas as pd

    errors = pd.DataFrame(sorted(result.failed.items()), columns=["item", "error"])
    atomic_write_table(out / "job_errors.csv", errors)
    atomic_write_json(out / "job.json", result.summary())


@contextmanager
def _spawn_safe_main():
    """Spawned workers re-run the parent's `__main__` script by path. When the job is started from a script
    that is not the process's entry point (a Streamlit page runs as `__main__` inside the server or an
    AppTest), every worker would re-execute the page; such a `__main__` is hidden while workers start."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    entry = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None
    foreign = (main is not None and getattr(main, "__spec__", None) is None and main_file is not None
               and os.path.abspath(main_file) != entry)
    if not foreign:
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@contextmanager
def _stop_workers_on_interrupt(pool: cf.ProcessPoolExecutor):
    """Ctrl-C or SIGTERM in the driver: without this, leaving the pool would wait for every item already handed
    to it, queued ones included (minutes of solving after the user asked to stop). Queued items are cancelled and
    each worker gets SIGINT, so its current item unwinds as after Ctrl-C (temporary files removed) and it exits;
    the items it did not finish are redone when the job runs again."""
    try:
        yield
    except KeyboardInterrupt:
        procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
        for proc in procs:
            with suppress(OSError, AttributeError, TypeError):  # already gone
                os.kill(proc.pid, signal.SIGINT)
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + 3.0
        for proc in procs:  # an item already queued to a worker would start next: a worker still busy is ended
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
        raise


def _run_pool(fn, todo, kwargs, book: _Bookkeeper, workers: int) -> None:
    with _spawn_safe_main():
        _run_pool_inner(fn, todo, kwargs, book, workers)


def _run_pool_inner(fn, todo, kwargs, book: _Bookkeeper, workers: int) -> None:
    """A process pool with a bounded number of items in flight. A worker that dies (segfault in a native
    library, out-of-memory kill) breaks the whole pool, and every item in flight is then a suspect: each
    suspect is re-run alone in a fresh one-worker pool, so only the item that really kills its worker is
    reported as failed, and the pool is rebuilt for the rest."""
    pending = list(todo)
    # spawn: forking a process that has started torch/OpenMP threads can deadlock.
    ctx = mp.get_context(os.environ.get("VAI_MP_START", "spawn"))
    while pending:
        suspects: list[tuple[str, Any]] = []
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool, _stop_workers_on_interrupt(pool):
            in_flight: dict[cf.Future, tuple[str, Any]] = {}
            while (pending or in_flight) and not suspects:
                while pending and len(in_flight) < 2 * workers:
                    try:
                        fut = pool.submit(_call, fn, pending[0][1], kwargs)
                    except cf.process.BrokenProcessPool:
                        break  # the pool broke meanwhile: its in-flight items surface as suspects below
                    in_flight[fut] = pending.pop(0)
                if not in_flight:
                    break
                finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    k, it = in_flight.pop(fut)
                    try:
                        book.record(k, *fut.result())
                    except cf.process.BrokenProcessPool:
                        suspects.append((k, it))
                    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable item or result
                        book.record(k, "failed", {"error": f"{type(exc).__name__}: {exc}", "traceback": ""})
            suspects += list(in_flight.values())
        if suspects:
            log.warning("a worker process died; re-running the %d items it may have held one by one", len(suspects))
            for k, it in suspects:
                _run_isolated(fn, k, it, kwargs, book, ctx)


def map_in_processes(fn: Callable[[Any], Any], chunks: list[Any], *, workers: int,
                     initializer: Callable[..., None] | None = None, initargs: tuple = (),
                     desc: str = "chunks", sizes: list[int] | None = None, start: str | None = None) -> list[Any]:
    """`[fn(c) for c in chunks]` in `workers` processes, results in order; for in-memory data-parallel
    inference where each worker holds a model (`initializer(*initargs)` loads it once per process).

    Why processes and not threads: for small per-op work (short text sequences) torch's intra-op threads
    barely scale on a 2-core box (MiniLM: 1 thread 670/s, 2 threads 620-730/s) while two one-thread
    processes together run ~1.3x faster. A worker that raises re-raises here; nothing is written, so nothing is lost.
    `sizes` (items per chunk) makes the progress line count items instead of chunks. `start="fork"` lets
    workers inherit a model the parent already holds (no re-import, no reload); it is safe with torch only
    when each worker runs on one thread (as DataLoader workers do), which the initializer must ensure."""
    sizes = sizes or [1] * len(chunks)
    results: list[Any] = [None] * len(chunks)
    ctx = mp.get_context(start or os.environ.get("VAI_MP_START", "spawn"))
    with _spawn_safe_main(), Progress(sum(sizes), desc) as progress, \
            cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=initializer,
                                   initargs=initargs) as pool, _stop_workers_on_interrupt(pool):
        futures = {pool.submit(fn, chunk): i for i, chunk in enumerate(chunks)}
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                progress.update(sizes[i])
        except cf.process.BrokenProcessPool:
            raise VaiError(f"{desc}: a worker process died (out of memory or a crash in a native library); "
                           "run again with fewer workers") from None
        finally:
            for fut in futures:
                fut.cancel()
    return results


def fork_is_safe() -> bool:
    """Whether `map_in_processes(start="fork")` may be used: on Linux (fork is its default start method), with
    one-thread torch workers. macOS system libraries are not fork-safe; Windows has no fork."""
    return sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()


def _run_isolated(fn, k, it, kwargs, book: _Bookkeeper, ctx) -> None:
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as solo:
        try:
            book.record(k, *solo.submit(_call, fn, it, kwargs).result())
        except cf.process.BrokenProcessPool:
            book.record(k, "failed", {"error": "the worker process died on this item (crash or out of memory)",
                                      "traceback": ""})
        except Exception as exc:  # noqa: BLE001
            book.record(k, "failed", {"error": f"{type(exc).__name__}: {exc}", "traceback": ""})


def _run_ray(fn, todo, kwargs, book: _Bookkeeper, address: str | None, workers: int | None) -> None:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("the ray engine needs Ray: pip install 'vai-platform[distributed]'") from None
    # RAY_ADDRESS ("auto", "ray://head:10001") joins a cluster; otherwise a local Ray is started.
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        init_kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if address:
            init_kwargs["address"] = address
        else:
            from vai.core.device import usable_cpus

            init_kwargs["num_cpus"] = workers or usable_cpus()
            init_kwargs["include_dashboard"] = False
        try:
            ray.init(**init_kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise VaiError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    remote_call = ray.remote(max_retries=1)(_call)
    fn_ref = ray.put(fn)
    kwargs_ref = ray.put(kwargs)
    refs = {remote_call.remote(fn_ref, it, kwargs_ref): k for k, it in todo}
    waiting = list(refs)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        for ref in ready:
            k = refs[ref]
            try:
                book.record(k, *ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - a worker lost by Ray
                book.record(k, "failed", {"error": f"{type(exc).__name__}: {exc}".splitlines()[0], "traceback": ""})


def add_engine_arguments(parser, *, default_workers: int | None = None) -> None:
    """The batch-job flags every vertical's CLI shares: `--engine local|ray`, `--workers N`, `--address ADDR`."""
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: a process pool on this machine; ray: Ray tasks (a local Ray or a cluster)")
    parser.add_argument("--workers", type=int, default=default_workers,
                        help="parallel workers (default: CPU count; 1 runs in-process)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address for --engine ray ('auto', 'ray://head:10001'; default $RAY_ADDRESS "
                             "or a local Ray)")
