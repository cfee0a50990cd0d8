"""Top-level functions for job tests (process pools and Ray pickle functions by reference)."""
import os
import time
from pathlib import Path


def square(item, log_dir=None):
    if log_dir:  # count invocations, to prove resumed items are not recomputed
        Path(log_dir, f"called-{item}-{time.time_ns()}").touch()
    if item == "bad":
        raise ValueError("corrupt item")
    return {"value": int(item) ** 2}


def crash_on(item, crash_item=None, log_dir=None):
    if log_dir:
        Path(log_dir, f"called-{item}-{time.time_ns()}").touch()
    if item == crash_item:
        os._exit(13)  # the whole worker process dies, like a segfault in a native library
    return {"value": int(item)}


def not_json(item):
    return object()


_STATE = {}


def remember_offset(offset):
    _STATE["offset"] = offset


def add_offset(chunk):
    if chunk == "boom":
        raise ValueError("bad chunk")
    if chunk == "die":
        os._exit(13)
    return [x + _STATE["offset"] for x in chunk], os.getpid()


def write_square(item, out_dir, scale=1):
    """An item that writes its result file (for the resume-checks-the-output tests)."""
    path = Path(out_dir) / f"{item}.txt"
    path.write_text(str(int(item) ** 2 * scale))
    return {"path": str(path)}


def square_or_die(item, log_dir=None):
    """`square`, except that the whole process exits hard on the item named by $VAI_TEST_DIE_ON."""
    if os.environ.get("VAI_TEST_DIE_ON") == item:
        os._exit(9)
    return square(item, log_dir)


def slow_item(item, seconds=30.0):
    """An item that takes long (a scenario's solve), for the stop-on-interrupt test."""
    time.sleep(seconds)
    return {"value": item}
