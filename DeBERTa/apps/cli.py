"""The one command-line helper of the apps: parser, logging, and errors as one line with exit status 2.

Every entry point is ``sys.exit(cli.run(main_body, argv))`` or uses the pieces:

* :class:`OneLineErrorParser`: argparse whose usage errors raise a :class:`~DeBERTa.deberta.DeBERTaError`
  (one line, ending in ``(see --help)``) instead of printing the usage and exiting;
* :func:`configure_logging`: the package's log on stderr (INFO on rank 0, warnings elsewhere);
* :func:`run`: calls the body, prints ``error: …`` for a :class:`~DeBERTa.deberta.DeBERTaError` or an ``OSError``
  (the file system refused: the path and why; exit 2) and ``interrupted`` for Ctrl-C (exit 130); anything
  else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from DeBERTa.deberta import DeBERTaError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

_log_handler: logging.Handler | None = None


class UsageError(DeBERTaError):
    """A command line that does not parse."""


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose usage errors raise ``error_type`` with one line, instead of printing the usage and
    exiting: the apps' entry points report it like every other error (``error: ...``, exit status 2)."""

    def __init__(self, *args: Any, error_type: type[DeBERTaError] = UsageError, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_type = error_type

    def error(self, message: str) -> NoReturn:
        raise self.error_type(f"{message} (see --help)")


def configure_logging(rank: int = 0, world_size: int = 1) -> None:
    """The package's log on stderr: INFO on rank 0, warnings only elsewhere (N processes, one log).

    The handler sits on the ``DeBERTa`` logger, not the root, so that an embedding program's logging
    setup stays as it is; records still propagate to the root (the run folder's train.log is there).
    Called again (another app's ``main`` in the same process, as the demo does), it replaces its handler.
    """
    global _log_handler
    package = logging.getLogger("DeBERTa")
    if _log_handler is not None:
        package.removeHandler(_log_handler)
    prefix = f"[rank {rank}] " if world_size > 1 else ""
    _log_handler = logging.StreamHandler()
    _log_handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
                                                datefmt="%H:%M:%S"))
    package.addHandler(_log_handler)
    package.setLevel(logging.INFO if rank == 0 else logging.WARNING)


def error_line(err: BaseException | str, where: str = "") -> str:
    """``error: …`` on one line (a message spanning lines is joined)."""
    message = " ".join(str(err).split("\n")) or type(err).__name__
    return f"error: {where}{message}"


def os_error_message(err: OSError) -> str:
    """What the file system refused, on which path: ``cannot write /x/y: Permission denied``."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{' → '.join(paths)}: {reason}" if paths else reason


def run(body: Callable[[list[str]], int | None], argv: Sequence[str] | None = None, *,
        where: Callable[[], str] = lambda: "") -> int:
    """Run ``body(argv)`` (default ``sys.argv[1:]``); returns its status (0 for None), 2 after a one-line error,
    130 when interrupted. ``where()`` prefixes the message (``rank 1: `` in a distributed job)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        status = body(argv)
    except DeBERTaError as err:
        print(error_line(err, where()), file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:  # the file system said no (a read-only folder, a path below a file, a full disk)
        print(error_line(os_error_message(err), where()), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if status is None else status
