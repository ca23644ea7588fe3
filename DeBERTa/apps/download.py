"""Fill the model cache ahead of time: ``python -m DeBERTa.apps.download base deberta-v3-base``.

Run it while building a Docker image or on a login node with network; later runs (offline, or the eight
ranks of a job) then find the files in ``$DEBERTA_CACHE``. ``--list`` shows the known names and what
is cached (here or in the Hugging Face cache); ``--force`` downloads a damaged file again. Errors print
one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tqdm import tqdm

from DeBERTa.apps import cli
from DeBERTa.deberta import hub
from DeBERTa.deberta.errors import DeBERTaError


def _size(num_bytes: int) -> str:
    return tqdm.format_sizeof(num_bytes, "B")


def _listed_files(files: dict[str, int]) -> str:
    return ", ".join(f"{filename} {_size(size)}" for filename, size in files.items())


def list_models() -> str:
    """A table of the known model names, their hub repositories and the files cached for each."""
    lines = [f"hub:   {hub.hub_url()}", f"cache: {hub.cache_dir() / 'models'}",
             f"Hugging Face cache (used when a model is complete there and not here): {hub.hf_cache_dir()}"]
    for name, model in hub.HUB_MODELS.items():
        cached = _listed_files(hub.cached_files(name))
        snapshot = hub.hf_snapshot(name)
        if not cached and snapshot is not None:
            in_snapshot = {filename: (snapshot / filename).stat().st_size
                           for filename in hub.model_files(name) if (snapshot / filename).is_file()}
            cached = f"Hugging Face cache: {_listed_files(in_snapshot)}" if in_snapshot else ""
        lines.append(f"{name:<24} {model.repo:<34} {model.family:<3} {cached or '(not cached)'}")
    return "\n".join(lines)


def download(names: Sequence[str], files: Sequence[str] | None, *, progress: bool, force: bool = False) -> list[str]:
    """Fetch each named model (or only ``files`` of it); returns one line per model: its folder."""
    unknown = [name for name in names if hub.canonical_name(name) is None]
    if unknown:
        # Checked before any download, so a typo in the last name does not cost the first download.
        raise DeBERTaError(f"unknown model name(s) {', '.join(map(repr, unknown))}: expected "
                           f"{', '.join(hub.MODELS)} (or microsoft/... names)")
    done = []
    for name in names:
        if files:
            folder = [hub.fetch(name, filename, progress=progress, force=force) for filename in files][0].parent
        else:
            folder = hub.fetch_model(name, progress=progress, force=force)
        done.append(f"{hub.canonical_name(name)}: {folder}")
    return done


def build_parser() -> cli.OneLineErrorParser:
    parser = cli.OneLineErrorParser(
        prog="python -m DeBERTa.apps.download",
        description="Download pre-trained DeBERTa models into the cache ($DEBERTA_CACHE, default "
        "~/.~DeBERTa) from $DEBERTA_MODEL_HUB (default https://huggingface.co). A model that is complete "
        "in the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub) is used from "
        "there instead.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"model names: {', '.join(hub.MODELS)} (or microsoft/... names)")
    parser.add_argument("--files", nargs="+", metavar="FILE",
                        help="download only these files (default: the model's files, e.g. "
                             f"{', '.join(hub.model_files('base'))}; v2/v3: {', '.join(hub.model_files('v3-base'))})")
    parser.add_argument("--list", action="store_true", help="show known names and what is cached")
    parser.add_argument("--force", action="store_true",
                        help="download again into the DeBERTa cache, replacing cached copies (a damaged file)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.names and not args.list:
        raise cli.UsageError("give model names to download, or --list (see --help)")
    cli.configure_logging()
    try:
        for line in download(args.names, args.files, progress=not args.quiet, force=args.force):
            print(line)
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume the download", file=sys.stderr)
        return cli.EXIT_INTERRUPTED
    if args.list:
        print(list_models())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0, 2 after a one-line error, 130 when interrupted)."""
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
