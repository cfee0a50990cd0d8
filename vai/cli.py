"""The `vai` command: the CLI root. Each vertical registers its own sub-commands from its own package
(`vai.verticals.<name>.cli.register`); the root holds the global flags and the platform commands
(`doctor`, `runs`, `demo`, `hub`).

Errors the user can fix (`VaiError`) print one line and exit non-zero; `--verbose` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from vai import __version__

# (command, module with register(), one-line description). Vertical modules import heavy libraries
# lazily inside their handlers, so `vai --help` stays fast.
VERTICALS = [
    ("path", "vai.verticals.path.cli", "whole-slide pathology: slides to genotype predictions"),
    ("discovery", "vai.verticals.discovery.cli", "cosmetic material property prediction (RDKit)"),
    ("inspect", "vai.verticals.vision_inspect.cli", "few-shot visual defect inspection"),
    ("schedule", "vai.verticals.scheduling.cli", "petrochemical feed scheduling (OR-Tools CP-SAT)"),
    ("score", "vai.verticals.master_score.cli", "daily 1-100 news-driven stock score"),
]


def _add_global_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("global options")
    g.add_argument("--home", help="home dir for models, cache and store (env VAI_HOME, default ~/.vai)")
    g.add_argument("--data-dir", dest="global_data_dir", metavar="DIR",
                   help="data dir (env VAI_DATA_DIR, default ../shared/data when present)")
    g.add_argument("--store", help="results store URL (env VAI_STORE_URL, default sqlite:///<home>/store.sqlite)")
    g.add_argument("--seed", dest="global_seed", type=int, help="global seed (env VAI_SEED, default 0)")
    g.add_argument("--verbose", "-v", action="store_true", help="show tracebacks and debug logs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vai", description="vai: one shared model core, five verticals.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vai {__version__}")
    _add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="verticals and platform commands")
    for name, module, help_text in VERTICALS:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            stub = sub.add_parser(name, help=f"{help_text} [unavailable: {exc}]")
            stub.set_defaults(func=_unavailable(name, exc))
            continue
        mod.register(sub)
    from vai.core import cli_platform

    cli_platform.register(sub)
    return parser


def _unavailable(name: str, exc: Exception):
    def run(args):
        from vai.core.errors import MissingDependencyError

        raise MissingDependencyError(f"vertical {name!r} cannot load: {exc}; pip install 'vai-platform[all]'")

    return run


def main(argv: list[str] | None = None) -> int:
    from vai.core.errors import VaiError
    from vai.core.settings import configure

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.getLogger("vai").setLevel(logging.DEBUG)
    configure(home=args.home, data_dir=args.global_data_dir, store_url=args.store, seed=args.global_seed)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    restore = _stop_cleanly_on_sigterm()
    try:
        rc = args.func(args)
        return int(rc or 0)
    except VaiError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        from vai.core.errors import Terminated

        if isinstance(exc, Terminated):
            print("terminated (SIGTERM); what was finished is kept, and a batch job resumes from there when run again",
                  file=sys.stderr)
            return 143
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a path the user gave that cannot be used: say which and why, in words
        if args.verbose:
            traceback.print_exc()
        print(f"error: {_os_error_message(exc)}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if args.verbose:
            traceback.print_exc()
        if not exc.name or exc.name.split(".")[0] == "vai":  # a module of ours missing is a bug, not an install
            print(f"error: {type(exc).__name__}: {exc} (run `vai --verbose ...` for the traceback)", file=sys.stderr)
            return 1
        print(f"error: {_missing_module_message(exc.name, args.command)}", file=sys.stderr)
        from vai.core.errors import MissingDependencyError

        return MissingDependencyError.exit_code
    except Exception as exc:  # noqa: BLE001 - last-resort message; --verbose shows the bug's traceback
        if args.verbose:
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc} (run `vai --verbose ...` for the traceback)", file=sys.stderr)
        return 1
    finally:
        restore()


def _stop_cleanly_on_sigterm():
    """While a command runs, SIGTERM (a cluster scheduler's, systemd's or `kill`'s stop) raises `Terminated` in the
    main process, so the job unwinds as after Ctrl-C: atomic writes drop their temporary files and the store records
    the run as interrupted. Worker processes forked meanwhile keep the default (they just end). Returns the undo."""
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    main_pid = os.getpid()

    def on_sigterm(signum, frame):
        if os.getpid() != main_pid:  # a forked worker inherited this handler: end as it would have
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        from vai.core.errors import Terminated

        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _os_error_message(exc: OSError) -> str:
    name = exc.filename2 if getattr(exc, "filename2", None) else exc.filename
    where = f"{name}: " if name else ""
    why = {IsADirectoryError: "is a folder where a file is expected; give a file path",
           NotADirectoryError: "a part of this path is a file where a folder is expected; choose another location",
           FileExistsError: "a file is in the way of a folder to create; give a folder path or move the file",
           FileNotFoundError: "no such file or folder",
           PermissionError: "permission denied; choose a location you can write to (or read)"}
    for kind, text in why.items():
        if isinstance(exc, kind):
            return f"{where}{text}"
    import errno

    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return (f"{where}no space left on the disk (or the quota is used up); free some space or choose another "
                "location, then run the command again (finished items are kept, the half-written file was removed)")
    return f"{where}{exc.strerror or exc} (run `vai --verbose ...` for the traceback)"




def _missing_module_message(module: str, command: str | None) -> str:
    """A library this command needs is not installed (an install without the vertical's extra): which, and the pip
    line that brings it, instead of a bare ModuleNotFoundError."""
    from vai.core.extras import VERTICAL_EXTRAS, distribution, install_hint

    package = next((m.split(".")[2] for name, m, _ in VERTICALS if name == command), None)  # vai.verticals.<pkg>.cli
    what = f"`vai {command}`" if command else "this command"
    extra = VERTICAL_EXTRAS.get(package, "all")
    return f"{what} needs {distribution(module)}, which is not installed here: {install_hint(extra)}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
