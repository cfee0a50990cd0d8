"""Progress reporting for long work: a tqdm bar on a terminal, periodic log lines with counts and ETA
otherwise (CI logs, batch jobs redirected to a file)."""
from __future__ import annotations

import logging
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger("vai")


def get_logger(name: str = "vai") -> logging.Logger:
    logger = logging.getLogger(name)
    root = logging.getLogger("vai")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    return logger


class Progress:
    """Counts done/failed/skipped items and shows an ETA, as a bar (tty) or log lines (no tty)."""

    def __init__(self, total: int, desc: str, log_every_s: float = 10.0, enabled: bool = True):
        self.total = total
        self.desc = desc
        self.done = self.failed = self.skipped = 0
        self._t0 = time.monotonic()
        self._last_log = self._t0
        self._log_every = log_every_s
        self._bar = None
        self._logger = get_logger("vai.progress")
        if enabled and sys.stderr.isatty():
            self._bar = tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, status: str | int = "done", n: int = 1) -> None:
        """Count `n` items with `status` ("done", "failed" or "skipped"); `update(64)` counts 64 done."""
        if isinstance(status, int):
            status, n = "done", status
        if status == "done":
            self.done += n
        elif status == "failed":
            self.failed += n
        else:
            self.skipped += n
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(failed=self.failed, skipped=self.skipped)
        elif time.monotonic() - self._last_log >= self._log_every:
            self._last_log = time.monotonic()
            self._logger.info(self.line())

    @property
    def count(self) -> int:
        return self.done + self.failed + self.skipped

    def eta_s(self) -> float | None:
        processed = self.done + self.failed
        if processed == 0:
            return None
        rate = processed / max(time.monotonic() - self._t0, 1e-9)
        return (self.total - self.count) / rate

    def line(self) -> str:
        eta = self.eta_s()
        eta_txt = f", ETA {eta:.0f}s" if eta is not None else ""
        return (f"{self.desc}: {self.count}/{self.total} ({self.done} done, {self.failed} failed, "
                f"{self.skipped} skipped{eta_txt})")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._logger.info(self.line() + f" in {time.monotonic() - self._t0:.1f}s")
