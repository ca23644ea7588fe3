"""Fill the model cache ahead of time: ``python -m DeBERTa.apps.download base large_mnli``.

Run it while building a Docker image or on a login node with network; later runs (offline, or the eight
ranks of a job) then find the files in ``$DEBERTA_CACHE``. ``--list`` shows the known names and what
is cached. Errors print one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tqdm import tqdm

from DeBERTa.deberta import hub
from DeBERTa.deberta.errors import DeBERTaError


def _size(num_bytes: int) -> str:
    return tqdm.format_sizeof(num_bytes, "B")


def list_models() -> str:
    """A table of the known model names, their hub repositories and the files cached for each."""
    lines = [f"hub:   {hub.hub_url()}", f"cache: {hub.cache_dir() / 'models'}"]
    for name, repo in hub.MODELS.items():
        files = hub.cached_files(name)
        cached = ", ".join(f"{filename} {_size(size)}" for filename, size in files.items())
        lines.append(f"{name:<12} {repo:<30} {cached or '(not cached)'}")
    return "\n".join(lines)


def download(names: Sequence[str], files: Sequence[str] | None, *, progress: bool) -> list[str]:
    """Fetch each named model (or only ``files`` of it); returns one line per model: its cache folder."""
    unknown = [name for name in names if hub.canonical_name(name) is None]
    if unknown:
        # Checked before any download, so a typo in the last name does not cost the first download.
        raise DeBERTaError(f"unknown model name(s) {', '.join(map(repr, unknown))}: expected "
                           f"{', '.join(hub.MODELS)} or microsoft/deberta-* names")
    done = []
    for name in names:
        if files:
            folder = [hub.fetch(name, filename, progress=progress) for filename in files][0].parent
        else:
            folder = hub.fetch_model(name, progress=progress)
        done.append(f"{hub.canonical_name(name)}: {folder}")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0, or 2 after a one-line error)."""
    parser = argparse.ArgumentParser(
        prog="python -m DeBERTa.apps.download",
        description="Download pre-trained DeBERTa models into the cache ($DEBERTA_CACHE, default "
        "~/.~DeBERTa) from $DEBERTA_MODEL_HUB (default https://huggingface.co).",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"model names: {', '.join(hub.MODELS)} (or microsoft/deberta-* names)")
    parser.add_argument("--files", nargs="+", metavar="FILE",
                        help=f"download only these files (default: {', '.join(hub.MODEL_FILES)})")
    parser.add_argument("--list", action="store_true", help="show known names and what is cached")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if not args.names and not args.list:
        parser.error("give model names to download, or --list")
    try:
        for line in download(args.names, args.files, progress=not args.quiet):
            print(line)
        if args.list:
            print(list_models())
    except DeBERTaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume the download", file=sys.stderr)
        return 130  # the shell's status for Ctrl-C
    return 0


if __name__ == "__main__":
    sys.exit(main())
