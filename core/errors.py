"""One error type for problems the user can fix (bad input, missing files or weights).

The CLI prints a `VaiError` as one line and exits non-zero; anything else is a bug and shows a
traceback with `--verbose`.
"""


class VaiError(Exception):
    """A user-facing error: the message names the file, row or field and what to do."""

    exit_code = 2


class MissingDependencyError(VaiError):
    """An optional package, library or weights file is not installed."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop) turned into an exception by the CLI, so that a stopped job cleans up
    as after Ctrl-C: temporary files removed, the run recorded as interrupted."""
