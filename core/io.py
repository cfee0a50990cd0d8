"""Atomic file writes: a reader (or a resumed job) never sees a half-written file.

Everything is written to a temporary file in the same folder and moved into place with `os.replace`,
which is atomic on POSIX and Windows file systems.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _read_umask() -> int:
    try:  # Linux reports it without changing it (os.umask() sets it, racing with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import


def _chmod_as_created(path: Path, mode: int) -> None:
    """mkstemp/mkdtemp create owner-only (0600/0700) files; give the result the permissions a plain
    open()/mkdir() would (mode & ~umask), so a team sharing a results folder can read it."""
    try:
        os.chmod(path, mode & ~_UMASK)
    except OSError:
        pass


def _check_output(path: str | os.PathLike, flag: str, folder: bool) -> Path:
    from vai.core.errors import VaiError

    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise VaiError(f"{_named(flag, p)}is a file, but this writes a folder (several outputs); give a folder "
                       "path or move the file")
    if not folder and p.is_dir():
        raise VaiError(f"{_named(flag, p)}is a folder, but this option writes one file; give a file path "
                       "(a name inside that folder, for example)")
    if not folder and p.suffix.lower() in (".xls", ".xlsm"):  # Excel refuses a workbook named as another format
        raise VaiError(f"{_named(flag, p)}results are written as .xlsx (not {p.suffix}); name the output "
                       f"{p.with_suffix('.xlsx').name}")
    for parent in reversed(p.parents):  # a file where one of the parent folders must be
        if parent.exists() and not parent.is_dir():
            raise VaiError(f"{_named(flag, p)}{parent} is a file, not a folder; choose another location")
    return p


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Stop (VaiError) before any work when `path` cannot be written as a file: it is a folder, or a file sits
    where one of its parent folders must be. Called by commands at their start, and by `atomic_path`."""
    return _check_output(path, flag, folder=False)


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Stop (VaiError) before any work when `path` cannot be an output folder: a file is in the way."""
    return _check_output(path, flag, folder=True)


def is_replaceable_dir(p: Path) -> bool:
    """Nothing there, an empty folder, or an earlier model directory (it has a config.json): safe to replace."""
    if not p.exists():
        return True
    if not p.is_dir():
        return False
    return not any(p.iterdir()) or (p / "config.json").is_file()


def check_model_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Stop (VaiError) before training when the model folder cannot be written without deleting something: a file,
    or a folder of other files (a folder of images given as --out by mistake)."""
    from vai.core.errors import VaiError

    p = _check_output(path, flag, folder=True)
    if not is_replaceable_dir(p):
        raise VaiError(f"{_named(flag, p)}holds other files and is not a model directory (no config.json); saving "
                       "the model there would replace them: give a new folder name, or an earlier model's folder")
    return p


def _named(flag: str, p: Path) -> str:
    return f"{flag} {p}: " if flag else f"{p}: "


def _as_arg_type(check, what: str):
    """An argparse `type=` from a check: a bad path stops at parsing (argparse's message), before any work."""
    def arg_type(value: str) -> str:
        import argparse

        from vai.core.errors import VaiError

        try:
            check(value, "")
        except VaiError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    arg_type.__name__ = what  # argparse names the type in some messages
    return arg_type


TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".xlsx", ".parquet")  # what `atomic_write_table` writes


def table_suffix(path: str | os.PathLike) -> str:
    """A file name's table suffix, lower case, `.gz` kept with the one before it (`x.CSV.gz` -> `.csv.gz`)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz":
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ""


def check_table_output(path: str | os.PathLike, flag: str = "--out", extra: tuple[str, ...] = ()) -> Path:
    """`check_output_file` for a results table: also stop when the name's suffix is not a table format this writes
    (`preds.json`, `scores`, `x.xlsx.gz` would otherwise get a CSV under a misleading name). `extra`: suffixes the
    command writes itself (discovery's `.sdf`)."""
    from vai.core.errors import VaiError

    p = check_output_file(path, flag)
    suffix = table_suffix(p)
    if suffix not in TABLE_SUFFIXES + tuple(extra):
        kinds = ", ".join(TABLE_SUFFIXES + tuple(extra))
        what = f"a {suffix} file" if suffix else "a file without a suffix"
        example = p.with_name((p.name[:-len(suffix)] if suffix else p.name) + ".csv")
        raise VaiError(f"{_named(flag, p)}cannot write {what}: the suffix picks the format; name it {kinds} "
                       f"(e.g. {example}), so that no file of another kind is overwritten")
    return p


def table_output_arg(extra: tuple[str, ...] = ()):
    """An argparse `type=` for a results-table output (`check_table_output`)."""
    return _as_arg_type(lambda value, flag: check_table_output(value, flag, extra), "output table")


def check_output_kind(path: str | os.PathLike, flag: str, suffixes: tuple[str, ...], what: str) -> Path:
    """`check_output_file` for an output whose suffix picks its format (`suffixes`, lower case with the dot; `what`
    says what they are): `gantt.jpg` would otherwise get a PNG under a misleading name."""
    from vai.core.errors import VaiError

    p = check_output_file(path, flag)
    if p.suffix.lower() not in suffixes:
        example = p.with_suffix(suffixes[0]) if p.suffix else p.with_name(p.name + suffixes[0])
        raise VaiError(f"{_named(flag, p)}{what}: name it {' or '.join(suffixes)} (e.g. {example})")
    return p


def kind_output_arg(suffixes: tuple[str, ...], what: str):
    """An argparse `type=` for an output whose suffix picks its format (`check_output_kind`)."""
    return _as_arg_type(lambda value, flag: check_output_kind(value, flag, suffixes, what), "output file")


output_file_arg = _as_arg_type(check_output_file, "output file")
output_dir_arg = _as_arg_type(check_output_dir, "output folder")
model_dir_arg = _as_arg_type(check_model_output_dir, "model folder")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on error it is removed."""
    target = check_output_file(path, "output")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            _chmod_as_created(tmp_path, 0o666)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def muted_native_stderr() -> Iterator[None]:
    """Silence what compiled libraries write straight to file descriptor 2 (LightGBM's "[LightGBM] [Fatal] ..."
    before the exception we turn into a clear message): the user would see the raw line and ours. Python-level
    writes to sys.stderr are not affected."""
    import sys

    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
    except (AttributeError, OSError, ValueError):
        fd = 2
    try:
        saved = os.dup(fd)
    except OSError:  # no descriptor 2 (a detached process): nothing to mute
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


def remove_stale_temps(target: str | os.PathLike) -> int:
    """Delete the temporary files that interrupted writes of `target` left (`.<name>.*`, see `atomic_path`): a
    killed job cannot clean up after itself; the next run of the same item can. Returns how many went."""
    target = Path(target)
    n = 0
    for tmp in target.parent.glob(f".{target.name}.*"):
        try:
            tmp.unlink()
            n += 1
        except OSError:
            pass
    return n


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_table(path: str | os.PathLike, frame, like: str | os.PathLike | None = None) -> Path:
    """Write a pandas DataFrame atomically, in the format its name says (`TABLE_SUFFIXES`): Parquet, an Excel
    workbook, tab-separated, or CSV (gzipped for `.gz`); `like` (the user's input table) gives the CSV its separator
    and decimal mark. Any other suffix is a VaiError before anything is written."""
    from vai.core.tables import output_dialect, write_user_table

    target = check_table_output(path, "")
    with atomic_path(target) as tmp:
        if target.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            write_user_table(tmp, frame, output_dialect(like), shown_as=target)
    return target


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it into place when complete.

    An existing directory at `path` is replaced only once the new one is whole; a file there is an error.
    """
    target = check_output_dir(path, "output")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        _chmod_as_created(tmp, 0o777)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json(path: str | os.PathLike) -> Any:
    from vai.core.errors import VaiError

    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VaiError(f"{p}: file not found") from None
    except json.JSONDecodeError as exc:
        raise VaiError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
