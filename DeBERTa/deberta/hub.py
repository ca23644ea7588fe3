"""Pre-trained models from the Hugging Face hub: names, caches, and a download that can be trusted.

A model name (``base``, ``large_mnli``, ``deberta-v3-base``, ``microsoft/mdeberta-v3-base``, ...)
resolves to the hub layout ``<hub>/<repo id>/resolve/main/<file>``; the hub base comes from
``$DEBERTA_MODEL_HUB`` so a mirror works. Files land in ``$DEBERTA_CACHE`` (default ``~/.~DeBERTa``,
as the original release)::

    <cache>/models/base/config.json               the files, ready to load from the folder
    <cache>/models/base/pytorch_model.bin
    <cache>/models/base/.hub/pytorch_model.bin.json   URL, size, sha256, time of download
    <cache>/models/base/.hub/pytorch_model.bin.part   an interrupted download, resumed next time
    <cache>/models/base/.hub/pytorch_model.bin.lock   serialises the ranks of one job

Which copy is used: a complete model in this cache first, else a complete snapshot in the Hugging Face
cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``, the ``refs/main``
revision, as ``transformers`` left it), else a download into this cache.

A file appears under its final name only after its size, (when the hub publishes it) SHA-256, and its
content (JSON parses, weights are a zip/pickle/safetensors file, never an HTML page) were checked, by
an atomic ``os.replace``; so a crash or Ctrl-C can leave a ``.part`` file but never a file that a later
run would trust. Nothing here unpickles anything: loading is the caller's job, and
:func:`loading_cached` / :func:`cached_file_problem` turn a failed load of a cached file into one line
that names the file and how to replace it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from pathlib import Path
from typing import IO

import filelock
from tqdm import tqdm

from DeBERTa import __version__

from .errors import DeBERTaError

__all__ = [
    "DEFAULT_HUB",
    "HUB_MODELS",
    "MODELS",
    "MODEL_FILES",
    "CachedFileError",
    "DownloadError",
    "FileNotOnHub",
    "HubModel",
    "cache_dir",
    "cached_file_problem",
    "cached_files",
    "canonical_name",
    "check_model_file",
    "fetch",
    "fetch_model",
    "file_url",
    "hf_cache_dir",
    "hf_snapshot",
    "hub_url",
    "is_offline",
    "loading_cached",
    "model_files",
    "sha256_of",
    "utc_now",
]

logger = logging.getLogger(__name__)

DEFAULT_HUB = "https://huggingface.co"


@dataclass(frozen=True)
class HubModel:
    """A model the hub serves under a name: where, which family, and which files make it up."""

    repo: str
    """Hugging Face repository id, e.g. ``microsoft/deberta-v3-base``."""
    family: str
    """``v1`` (GPT-2 BPE vocabulary), ``v2`` or ``v3`` (SentencePiece ``spm.model``)."""
    files: tuple[str, ...]
    """Files a model folder must hold: the config, the weights, and for v2/v3 the tokenizer."""
    optional: tuple[str, ...]
    """Files fetched when the hub has them; a mirror without them is fine and is remembered."""


_V1 = {"files": ("config.json", "pytorch_model.bin"), "optional": ("bpe_encoder.bin",)}
_SPM = {"files": ("config.json", "pytorch_model.bin", "spm.model"), "optional": ("tokenizer_config.json",)}

HUB_MODELS: dict[str, HubModel] = {
    "base": HubModel("microsoft/deberta-base", "v1", **_V1),
    "large": HubModel("microsoft/deberta-large", "v1", **_V1),
    "xlarge": HubModel("microsoft/deberta-xlarge", "v1", **_V1),
    "base_mnli": HubModel("microsoft/deberta-base-mnli", "v1", **_V1),
    "large_mnli": HubModel("microsoft/deberta-large-mnli", "v1", **_V1),
    "xlarge_mnli": HubModel("microsoft/deberta-xlarge-mnli", "v1", **_V1),
    "deberta-v3-xsmall": HubModel("microsoft/deberta-v3-xsmall", "v3", **_SPM),
    "deberta-v3-small": HubModel("microsoft/deberta-v3-small", "v3", **_SPM),
    "deberta-v3-base": HubModel("microsoft/deberta-v3-base", "v3", **_SPM),
    "deberta-v3-large": HubModel("microsoft/deberta-v3-large", "v3", **_SPM),
    "mdeberta-v3-base": HubModel("microsoft/mdeberta-v3-base", "v3", **_SPM),
    "deberta-v2-xlarge": HubModel("microsoft/deberta-v2-xlarge", "v2", **_SPM),
    "deberta-v2-xxlarge": HubModel("microsoft/deberta-v2-xxlarge", "v2", **_SPM),
    "deberta-v2-xlarge-mnli": HubModel("microsoft/deberta-v2-xlarge-mnli", "v2", **_SPM),
    "deberta-v2-xxlarge-mnli": HubModel("microsoft/deberta-v2-xxlarge-mnli", "v2", **_SPM),
}
"""Canonical model name -> what the hub serves for it. No SHA-256 is listed here: the hub publishes each
large file's hash with the download (``X-Linked-Etag``), and every file's content is checked."""

MODELS: dict[str, str] = {name: model.repo for name, model in HUB_MODELS.items()}
"""Canonical model name -> Hugging Face repository id."""

MODEL_FILES = ("config.json", "pytorch_model.bin", "bpe_encoder.bin")
"""The files of a v1 model folder; the last, the tokenizer's vocabulary, is optional on a mirror
(:func:`model_files` gives any model's)."""

_TRUE_WORDS = {"1", "true", "yes", "on"}
_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60.0
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_GIT_COMMIT = re.compile(r"[0-9a-f]{40}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_HTML_START = re.compile(rb"\s*(<!doctype\s+html|<html|<head|<body|<!--|<\?xml)", re.IGNORECASE)
# torch.save's legacy (non-zip) format opens with the pickled magic number 0x1950a86a20f9469cfc6c.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
_LOCK_MESSAGE_EVERY_S = 30.0

# Every spelling a user may type, lower-cased: 'base_mnli', 'base-mnli', 'deberta-base-mnli',
# 'microsoft/deberta-base-mnli'; 'deberta-v3-base', 'deberta_v3_base', 'v3-base', 'microsoft/deberta-v3-base';
# 'v2-xlarge_mnli' (the GLUE recipes name the MNLI fine-tune of MODEL '<MODEL>_mnli').
_ALIASES: dict[str, str] = {}
for _name, _repo in MODELS.items():
    _short = _repo.split("/", 1)[1]
    _bare = _short.removeprefix("deberta-")
    for _alias in (_name, _name.replace("_", "-"), _name.replace("-", "_"), _repo, _short, _bare,
                   _bare.replace("-mnli", "_mnli")):
        _ALIASES[_alias.lower()] = _name


class DownloadError(DeBERTaError):
    """A model file could not be fetched; the message names model, file, URL and what to do."""


class FileNotOnHub(DownloadError):
    """The hub answered 404 for a file: it does not exist there (a wrong name or an optional file)."""


class CachedFileError(DeBERTaError):
    """A file in a model cache could not be loaded; the message names the file and how to replace it."""


def canonical_name(name: str) -> str | None:
    """The canonical key of :data:`MODELS` for any accepted spelling of a model name, else None.

    None means "not a hub model name" -- callers then treat the string as a local path.
    """
    return _ALIASES.get(name.strip().lower())


def model_files(name: str) -> tuple[str, ...]:
    """Every file of a named model's folder: the required ones, then the optional ones."""
    model = HUB_MODELS[_require_name(name)]
    return model.files + model.optional


def hub_url() -> str:
    """Base URL of the model hub: ``$DEBERTA_MODEL_HUB`` (a mirror) or the public Hugging Face hub.

    Raises :class:`DownloadError` when the variable is not an http(s) URL.
    """
    raw = os.environ.get("DEBERTA_MODEL_HUB") or DEFAULT_HUB
    url = raw.strip().rstrip("/")
    try:
        parts = urllib.parse.urlsplit(url)
        valid = (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
                 and not parts.fragment and url.isprintable() and " " not in url)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError:
        valid = False
    if not valid:
        raise DownloadError(f"DEBERTA_MODEL_HUB={raw!r} is not the http(s) URL of a hub or mirror "
                            f"(e.g. {DEFAULT_HUB} or http://mirror.local:8080/hf)")
    return url


def cache_dir() -> Path:
    """Root of the download cache: ``$DEBERTA_CACHE`` or ``~/.~DeBERTa``."""
    return Path(os.environ.get("DEBERTA_CACHE") or "~/.~DeBERTa").expanduser()


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, where ``transformers`` keeps models, found as ``huggingface_hub`` does.

    ``$HF_HUB_CACHE`` (or its older name ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``.
    """
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hf_snapshot(name: str) -> Path | None:
    """The folder of a named model's ``refs/main`` snapshot in the Hugging Face cache, if there is one.

    The snapshot may be incomplete (``transformers`` fetches only what it needs); :func:`fetch_model`
    uses it only when it holds every required file and each passes :func:`check_model_file`.
    """
    repo_dir = hf_cache_dir() / ("models--" + MODELS[_require_name(name)].replace("/", "--"))
    try:
        revision = (repo_dir / "refs" / "main").read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    if not _GIT_COMMIT.fullmatch(revision):  # a commit id, never a path
        return None
    snapshot = repo_dir / "snapshots" / revision
    return snapshot if _is_dir(snapshot) else None


def is_offline() -> bool:
    """True when ``$DEBERTA_OFFLINE`` or ``$HF_HUB_OFFLINE`` is set to 1/true/yes/on: never download."""
    return _offline_setting() is not None


def _offline_setting() -> str | None:
    """The variable that turns downloads off, as ``NAME=value`` for messages, or None."""
    for variable in ("DEBERTA_OFFLINE", "HF_HUB_OFFLINE"):
        value = os.environ.get(variable, "")
        if value.strip().lower() in _TRUE_WORDS:
            return f"{variable}={value}"
    return None


def file_url(name: str, filename: str) -> str:
    """The hub URL of one file of a named model, e.g. ``<hub>/microsoft/deberta-base/resolve/main/...``."""
    return f"{hub_url()}/{MODELS[_require_name(name)]}/resolve/main/{filename}"


def cached_files(name: str) -> dict[str, int]:
    """Files of a named model in this package's cache that a fetch would trust: file name -> size in bytes."""
    folder = _model_dir(_require_name(name))
    try:
        trusted = sorted(path for path in folder.glob("[!.]*") if _is_trusted(path))
    except OSError:
        return {}
    return {path.name: path.stat().st_size for path in trusted}


def fetch(name: str, filename: str, *, progress: bool = True, force: bool = False) -> Path:
    """Path of one file of a named model in a cache, downloading it first if needed.

    A file in this package's cache comes first, then the Hugging Face cache's ``refs/main`` snapshot;
    either is used without touching the network. Downloads once per cache even when many processes ask
    at the same time (a file lock, with a message while waiting), resumes an interrupted download,
    verifies size, SHA-256 and content, and retries connection errors, 5xx answers and a server slower
    than ``$DEBERTA_DOWNLOAD_MIN_RATE`` bytes/s (default 1024) over ``$DEBERTA_DOWNLOAD_RATE_WINDOW``
    seconds (default 20) with exponential back-off (``$DEBERTA_DOWNLOAD_RETRIES`` tries, default 4;
    first wait ``$DEBERTA_DOWNLOAD_BACKOFF`` seconds, default 1, doubling).

    Args:
        name: a model name accepted by :func:`canonical_name`.
        filename: a file of the model's hub repository, e.g. ``pytorch_model.bin``.
        progress: show a progress bar (on stderr, and only in the process with ``LOCAL_RANK`` 0 or unset).
        force: download again into this package's cache, replacing a cached copy (and ignoring the
            Hugging Face cache): the fix for a damaged file.

    Raises:
        DownloadError: unknown name, offline with the file not cached, HTTP errors, a corrupt download,
            an unwritable cache, a malformed ``$DEBERTA_MODEL_HUB``.
        FileNotOnHub: the hub has no such file (HTTP 404).
    """
    canonical = _require_name(name)
    _require_file_name(canonical, filename)
    if not force:
        found = _trusted_cached(canonical, filename) or _hf_cached(canonical, filename)
        if found is not None:
            return found
    return _download_into_cache(canonical, filename, progress=progress, force=force)


def fetch_model(name: str, *, progress: bool = True, force: bool = False) -> Path:
    """A folder holding every required file of a named model (config, weights, v2/v3: ``spm.model``).

    This package's cache when it holds them all, else a complete Hugging Face cache snapshot, else a
    download into this package's cache. Optional files (``bpe_encoder.bin`` of v1,
    ``tokenizer_config.json`` of v2/v3) are fetched too when the hub has them; a mirror without them is
    fine, and is remembered so that a later call does not ask again. Raises :class:`DownloadError`.
    """
    canonical = _require_name(name)
    model = HUB_MODELS[canonical]
    own = _model_dir(canonical)
    own_complete = all(_trusted_cached(canonical, filename) for filename in model.files)
    if not (own_complete or force):
        snapshot = hf_snapshot(canonical)
        if snapshot is not None and all(_hf_cached(canonical, filename) or _hf_cached_alternative(canonical, filename)
                                        for filename in model.files):
            return snapshot
    for filename in model.files:
        if force or _trusted_cached(canonical, filename) is None:
            _download_into_cache(canonical, filename, progress=progress, force=force)
    for filename in model.optional:
        target = own / filename
        known_missing = _read_meta(target).get("missing", False)
        if (force or _trusted_cached(canonical, filename) is None) and not (known_missing or is_offline()):
            try:
                _download_into_cache(canonical, filename, progress=progress, force=force)
            except FileNotOnHub:
                with _cache_writes(target):
                    _write_meta(target, {"missing": True, "url": file_url(canonical, filename), "checked": utc_now()})
    return own


# -- what a file must be -------------------------------------------------------------------------------


def check_model_file(path: str | os.PathLike, name: str | None = None) -> str | None:
    """What is wrong with a model file's content, judged by its name (or ``name``: the file a download
    will become), or None when it looks right.

    Cheap enough for every cache hit (reads the first bytes, a JSON file, or a zip's directory): any
    file must not be empty or an HTML page; ``*.json`` parses (``config.json``: an object); weights and
    ``bpe_encoder.bin`` (``*.bin``, ``*.pt``) are a complete zip or a legacy ``torch.save`` pickle;
    ``*.safetensors`` has a JSON header whose tensors fill the file; ``*.model`` (SentencePiece) is a
    protobuf that begins with its pieces.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as data:
            head = data.read(64)
    except OSError as err:
        return f"cannot read it ({err.strerror or err})"
    if size == 0:
        return "the file is empty"
    if _HTML_START.match(head):
        return "it is an HTML page, not the file (a captive portal, a login page or a wrong DEBERTA_MODEL_HUB)"
    name = name or path.name
    if name.endswith(".json"):
        return _json_problem(path, object_required=name == "config.json")
    if name.endswith(".safetensors"):
        return _safetensors_problem(path, size, head)
    if name.endswith((".bin", ".pt", ".pth")):
        if head.startswith(b"PK\x03\x04"):
            return None if zipfile.is_zipfile(path) else "a truncated zip (torch.save) file: its directory is missing"
        if head.startswith(_TORCH_LEGACY_MAGIC):
            return None
        return "not a PyTorch file (neither a torch.save zip nor the legacy format)"
    if name.endswith(".model") and head[:1] != b"\x0a":
        return "not a SentencePiece model (a protobuf that begins with its pieces)"
    return None


def _json_problem(path: Path, *, object_required: bool) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return "not valid JSON (not UTF-8 text)"
    except ValueError as err:
        return f"not valid JSON ({err})"
    except OSError as err:
        return f"cannot read it ({err.strerror or err})"
    if object_required and not isinstance(value, dict):
        return f"not a JSON object but a {type(value).__name__}"
    return None


def _safetensors_problem(path: Path, size: int, head: bytes) -> str | None:
    if size < 10:
        return "too short for a safetensors file"
    (header_size,) = struct.unpack("<Q", head[:8])
    if header_size > min(size - 8, 100 << 20) or head[8:9] != b"{":
        return "not a safetensors file (no JSON header of a plausible size)"
    try:
        with path.open("rb") as data:
            data.seek(8)
            header = json.loads(data.read(header_size))
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        return f"a damaged safetensors header ({type(err).__name__})"
    if max(ends, default=0) != size - 8 - header_size:
        return f"a truncated safetensors file: its tensors need {max(ends, default=0)} bytes after the header, " \
               f"the file has {size - 8 - header_size}"
    return None


def _deep_problem(path: Path, name: str) -> str | None:
    """:func:`check_model_file`, and for ``spm.model`` a load by ``sentencepiece`` when it is installed
    (once per download, not per cache hit)."""
    problem = check_model_file(path, name)
    if problem is None and name.endswith(".model"):
        try:
            import sentencepiece
        except ImportError:
            return None
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(path.read_bytes())
        except (RuntimeError, OSError) as err:
            return f"not a SentencePiece model ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    return problem


# -- a failed load of a cached file -----------------------------------------------------------------------


def cached_file_problem(path: str | os.PathLike, error: BaseException | str | None = None) -> str | None:
    """One line naming a cached model file that failed to load and how to replace it; None when ``path``
    is not a file of a model in this package's cache or the Hugging Face cache.

    Call it where a load failed (or use :func:`loading_cached`)::

        message = hub.cached_file_problem(path, err)
        if message:
            raise CheckpointError(message) from err

    The line holds ``error`` (the loader's complaint), else what :func:`check_model_file` finds.
    """
    located = _locate_cached(Path(path))
    if located is None:
        return None
    canonical, in_hf_cache = located
    shown = str(error).splitlines()[0] if error else check_model_file(path) or "it could not be loaded"
    fix = f"python -m DeBERTa.apps.download {canonical} --force"
    if in_hf_cache:
        return (f"{path} (model '{canonical}' in the Hugging Face cache) is damaged: {shown}; delete it "
                f"from the Hugging Face cache, or run '{fix}' (this package's cache is used before it)")
    return f"{path} (model '{canonical}' in the DeBERTa cache) is damaged: {shown}; run '{fix}' to replace it"


@contextlib.contextmanager
def loading_cached(path: str | os.PathLike) -> Iterator[None]:
    """Around the load of a model file: a failure of a cached file becomes one :class:`CachedFileError`
    line naming the file and the fix (see :func:`cached_file_problem`); other files' errors pass as they are.
    """
    try:
        yield
    except (DeBERTaError, OSError, ValueError, RuntimeError, EOFError, KeyError) as err:
        message = cached_file_problem(path, err)
        if message is None or isinstance(err, CachedFileError):
            raise
        raise CachedFileError(message) from err


def _locate_cached(path: Path) -> tuple[str, bool] | None:
    """(canonical model name, whether in the Hugging Face cache) of a file inside either cache."""
    path = Path(os.path.abspath(path))
    own_models = Path(os.path.abspath(cache_dir())) / "models"
    if path.parent.parent == own_models and path.parent.name in HUB_MODELS:
        return path.parent.name, False
    hf_root = Path(os.path.abspath(hf_cache_dir()))
    parts = path.relative_to(hf_root).parts if path.is_relative_to(hf_root) else ()
    if len(parts) >= 4 and parts[1] == "snapshots" and parts[0].startswith("models--"):
        canonical = canonical_name(parts[0].removeprefix("models--").replace("--", "/"))
        if canonical is not None:
            return canonical, True
    return None


# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """What one HTTP response says about the remote file.

    ``start``: first byte of the body within the file (0 unless a 206); ``length``: bytes the body
    promises (Content-Length), ``total``: size of the whole file, ``sha256``: its published hash.
    """

    status: int
    start: int
    length: int | None
    total: int | None
    sha256: str | None


class _RetryableError(Exception):
    """A failed attempt that another try may fix (dropped connection, 5xx, a stale partial file)."""


class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib, but keeps each redirect's headers.

    The hub answers for a large (LFS) file with a redirect to a CDN; the file's SHA-256 and size are
    headers of that redirect (``X-Linked-Etag``, ``X-Linked-Size``), not of the CDN's final answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hops: list[Message] = []

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        self.hops.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _require_name(name: str) -> str:
    canonical = canonical_name(name) if isinstance(name, str) else None
    if canonical is None:
        raise DownloadError(f"unknown model {name!r}: expected one of {', '.join(MODELS)} (or "
                            "microsoft/... names), or the path of a local folder or file")
    return canonical


def _require_file_name(canonical: str, filename: str) -> None:
    if (not isinstance(filename, str) or not filename or "/" in filename or "\\" in filename
            or filename.startswith(".") or not filename.isprintable()):
        raise DownloadError(f"invalid file name {filename!r} for model '{canonical}': expected e.g. "
                            f"{', '.join(model_files(canonical))}")


def _model_dir(canonical: str) -> Path:
    return cache_dir() / "models" / canonical


def _sidecar(target: Path, suffix: str) -> Path:
    """Bookkeeping files live in a hidden ``.hub`` folder so the model folder holds only model files."""
    return target.parent / ".hub" / (target.name + suffix)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _read_meta(target: Path) -> dict:
    try:
        meta = json.loads(_sidecar(target, ".json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _write_meta(target: Path, meta: dict) -> None:
    path = _sidecar(target, ".json")
    # One scratch file per process: ranks may record the same missing file at once, outside the lock.
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(scratch, path)


@contextlib.contextmanager
def _cache_writes(path: Path) -> Iterator[None]:
    """Around writes in the cache: an OSError (read-only, disk full) becomes one DownloadError line."""
    try:
        yield
    except OSError as err:
        raise _cache_write_error(path, err) from err


def _cache_write_error(path: Path, err: OSError) -> DownloadError:
    return DownloadError(f"cannot write {path} in the model cache ({err.strerror or err}); free space or set "
                         "DEBERTA_CACHE to a writable folder")


def _is_trusted(target: Path) -> bool:
    """A cached file is trusted when it exists and, if its download was recorded, still has that size.

    Files placed by hand (no record) are trusted; a recorded size that no longer matches means the file
    was damaged after the download. (Content is checked by :func:`_trusted_cached`.)
    """
    try:
        if not target.is_file():
            return False
        size = target.stat().st_size
    except OSError:
        return False
    recorded = _read_meta(target).get("size")
    return recorded is None or recorded == size


def _trusted_cached(canonical: str, filename: str) -> Path | None:
    """The file in this package's cache when it can be used as it is, else None (then it is downloaded).

    A downloaded file whose content is wrong (an HTML page stored by an older version, a damaged disk) is
    downloaded again; one placed by hand is the user's, so it is an error naming it rather than replaced.
    """
    target = _model_dir(canonical) / filename
    if not _is_trusted(target):
        return None
    problem = check_model_file(target)
    if problem is None:
        return target
    if not _read_meta(target):
        raise DownloadError(f"{target} (placed in the model cache by hand) is not a valid {filename}: {problem}; "
                            f"replace it, or delete it to download it again")
    logger.warning("%s in the model cache is damaged (%s); downloading it again", target, problem)
    return None


def _hf_cached(canonical: str, filename: str) -> Path | None:
    """The file in the Hugging Face cache's ``refs/main`` snapshot when it is there and looks right."""
    snapshot = hf_snapshot(canonical)
    if snapshot is None:
        return None
    path = snapshot / filename
    try:
        if not path.is_file():  # follows the snapshot's symlink into blobs/; a dangling one is absent
            return None
    except OSError:
        return None
    problem = check_model_file(path)
    if problem is not None:
        logger.warning("ignoring %s in the Hugging Face cache: %s", path, problem)
        return None
    return path


def _hf_cached_alternative(canonical: str, filename: str) -> Path | None:
    """``model.safetensors`` stands in for ``pytorch_model.bin`` in a Hugging Face snapshot: ``transformers``
    fetches only the safetensors weights where a repository has both, and the loader reads either."""
    return _hf_cached(canonical, "model.safetensors") if filename == "pytorch_model.bin" else None


def _is_progress_rank() -> bool:
    """Only one process per machine draws progress bars: the one with LOCAL_RANK 0 (or no launcher)."""
    return os.environ.get("LOCAL_RANK", "0").strip() in ("", "0")


def _how_to_fetch(canonical: str) -> str:
    return (f"run 'python -m DeBERTa.apps.download {canonical}' on a machine with network, set "
            "DEBERTA_MODEL_HUB to a reachable mirror, or pass the path of a local model folder")


def _number_setting(variable: str, default: float, *, integer: bool = False, minimum: float = 0.0) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or not (minimum <= value < float("inf")):
        kind = "an integer" if integer else "a number"
        raise DownloadError(f"{variable}={raw!r} must be {kind} of at least {minimum:g}")
    return value


def _retry_settings() -> tuple[int, float]:
    """(tries, first wait in seconds) from the environment; tests shorten the waits."""
    return (int(_number_setting("DEBERTA_DOWNLOAD_RETRIES", 4, integer=True, minimum=1)),
            _number_setting("DEBERTA_DOWNLOAD_BACKOFF", 1.0))


def _speed_settings() -> tuple[float, float]:
    """(minimum bytes per second, seconds over which it is measured): a slower try is aborted."""
    return (_number_setting("DEBERTA_DOWNLOAD_MIN_RATE", 1024.0),
            _number_setting("DEBERTA_DOWNLOAD_RATE_WINDOW", 20.0, minimum=0.05))


def _download_into_cache(canonical: str, filename: str, *, progress: bool, force: bool) -> Path:
    """Download one file into this package's cache under its lock; returns its path."""
    target = _model_dir(canonical) / filename
    url = file_url(canonical, filename)
    if is_offline():
        raise DownloadError(
            f"{filename} of model '{canonical}' is not in the cache {target.parent} and downloads are off "
            f"({_offline_setting()}; URL {url}); {_how_to_fetch(canonical)}")
    # Checked before the lock and the network, so that a bad value is one line at once.
    _retry_settings()
    _speed_settings()
    try:
        target.parent.joinpath(".hub").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot write to the model cache {target.parent} ({err.strerror}); set "
                            "DEBERTA_CACHE to a writable folder") from err
    with _download_lock(target, url):
        # Another process may have finished the download while this one waited for the lock.
        if force or _trusted_cached(canonical, filename) is None:
            _download(canonical, url, target, show=progress and _is_progress_rank())
    return target


@contextlib.contextmanager
def _download_lock(target: Path, url: str) -> Iterator[None]:
    """The lock of one cached file, saying so while another process holds it."""
    path = _sidecar(target, ".lock")
    lock = filelock.FileLock(path)
    try:
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            started = time.monotonic()
            logger.warning("waiting for another process to finish downloading %s (lock %s)", url, path)
            while True:
                try:
                    lock.acquire(timeout=_LOCK_MESSAGE_EVERY_S)
                    break
                except filelock.Timeout:
                    logger.warning("still waiting for the download of %s by another process (%.0f s)", url,
                                   time.monotonic() - started)
    except OSError as err:
        raise _cache_write_error(path, err) from err
    try:
        yield
    finally:
        lock.release()


def _download(canonical: str, url: str, target: Path, *, show: bool) -> None:
    """Download ``url`` into ``target`` (the caller holds the lock): retry, resume, verify, publish."""
    label = f"{canonical}/{target.name}"
    part = _sidecar(target, ".part")
    tries, backoff = _retry_settings()
    for attempt in range(1, tries + 1):
        try:
            answer, sha256, size = _attempt(url, part, label=label, show=show)
            break
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 404:
                raise FileNotOnHub(f"{target.name} of model '{canonical}' is not on the hub: HTTP 404 for "
                                   f"{url}; check DEBERTA_MODEL_HUB ({hub_url()}) or pass the path of a "
                                   "local model folder") from err
            if err.code == 416:
                # The partial file is not a prefix of the remote one (the file changed): start over.
                with _cache_writes(part):
                    part.unlink(missing_ok=True)
                last_error = "the server refused to resume a partial download (HTTP 416)"
            elif err.code == 429 or err.code >= 500:
                last_error = f"HTTP {err.code} {_one_line(err.reason)}"
            elif 300 <= err.code < 400:
                raise DownloadError(f"cannot download {label}: the server redirects {url} in a loop or too often "
                                    f"(HTTP {err.code}); check DEBERTA_MODEL_HUB") from err
            else:
                raise DownloadError(f"cannot download {label}: HTTP {err.code} {_one_line(err.reason)} for {url} "
                                    "(the hub answers 401 for a repository that does not exist); check "
                                    "DEBERTA_MODEL_HUB or pass the path of a local model folder") from err
        except ValueError as err:  # a URL or redirect that urllib cannot follow: another try will not help
            raise DownloadError(f"cannot download {label} from {url}: {_one_line(err)}; check DEBERTA_MODEL_HUB") \
                from err
        except (urllib.error.URLError, OSError, http.client.HTTPException, _RetryableError) as err:
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            last_error = _one_line(reason) or type(reason).__name__
        if attempt < tries:
            wait = backoff * 2 ** (attempt - 1)
            logger.warning("download of %s failed (%s); try %d of %d in %.1f s", url, last_error,
                           attempt + 1, tries, wait)
            time.sleep(wait)
    else:
        raise DownloadError(f"cannot download {label} from {url} after {tries} tries ({last_error}); "
                            + _how_to_fetch(canonical))

    problem = None
    if answer.total is not None and size != answer.total:
        problem = f"{size} bytes instead of the {answer.total} the hub announced"
    elif answer.sha256 is not None and sha256 != answer.sha256:
        problem = f"SHA-256 {sha256} instead of {answer.sha256}"
    elif (content := _deep_problem(part, target.name)) is not None:
        problem = f"not a valid {target.name}: {content}"
    if problem:
        with _cache_writes(part):
            part.unlink(missing_ok=True)
        raise DownloadError(f"download of {label} from {url} is corrupt: {problem}; it was deleted, "
                            "run again to retry (or check DEBERTA_MODEL_HUB)")
    # Record first, then publish: the final name only ever appears with its record beside it.
    with _cache_writes(target):
        _write_meta(target, {"url": url, "size": size, "sha256": sha256,
                             "sha256_verified": answer.sha256 is not None, "downloaded": utc_now()})
        os.replace(part, target)


def _attempt(url: str, part: Path, *, label: str, show: bool) -> tuple[_Answer, str, int]:
    """One GET of ``url`` into ``part``, resuming from its current size with an HTTP Range request.

    Returns what the response announced, and the SHA-256 and size of the whole partial file. Raises
    :class:`_RetryableError` when the connection ended before the promised length or delivered less than
    the minimum rate over the measuring window, :class:`DownloadError` for an HTML answer or a local
    write error (neither is fixed by another try).
    """
    offset = part.stat().st_size if part.exists() else 0
    min_rate, window = _speed_settings()
    headers = {"User-Agent": f"DeBERTa/{__version__} (python-urllib)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    redirects = _RecordingRedirects()
    opener = urllib.request.build_opener(redirects)
    # The socket timeout is the window too: a server that sends nothing at all fails as fast as a slow one.
    with opener.open(urllib.request.Request(url, headers=headers), timeout=min(_TIMEOUT_S, window)) as response:
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type in ("text/html", "application/xhtml+xml"):
            raise DownloadError(f"cannot download {label}: {response.url} answered with an HTML page "
                                f"(Content-Type {content_type}) instead of the file: a captive portal, a login "
                                "page or a wrong DEBERTA_MODEL_HUB")
        answer = _parse_answer(response.status, response.headers, redirects.hops)
        if answer.status == 200:
            offset = 0  # the server ignored Range (or there was nothing to resume): start over
        elif answer.start != offset:
            with _cache_writes(part):
                part.unlink()
            raise _RetryableError(f"the server resumed at byte {answer.start}, not {offset}")
        digest = sha256_of(part) if offset else hashlib.sha256()
        with _cache_writes(part):
            out = part.open("ab" if offset else "wb")
        with out, tqdm(total=answer.total, initial=offset, unit="B", unit_scale=True, desc=label,
                       disable=not show, file=sys.stderr) as bar:
            window_start, window_bytes, received = time.monotonic(), 0, 0
            while chunk := response.read1(_CHUNK_BYTES):  # what has arrived, for the bar
                with _cache_writes(part):
                    out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
                received += len(chunk)
                elapsed = time.monotonic() - window_start
                if elapsed >= window:
                    if (received - window_bytes) / elapsed < min_rate:
                        raise _RetryableError(f"the server sent {received - window_bytes} bytes in {elapsed:.1f} s, "
                                              f"under {min_rate:g} bytes/s (DEBERTA_DOWNLOAD_MIN_RATE)")
                    window_start, window_bytes = time.monotonic(), received
            size = offset + received
            # Flush to disk before the caller renames: a power cut must not leave an empty trusted file.
            with _cache_writes(part):
                out.flush()
                os.fsync(out.fileno())
    if answer.length is not None and received < answer.length:
        raise _RetryableError(f"connection closed after {received} of {answer.length} bytes")
    return answer, digest.hexdigest(), size


def sha256_of(path: Path) -> hashlib._Hash:
    """A running SHA-256 over the bytes in ``path``: a whole file's (``.hexdigest()``), or one to continue over a
    resumed download."""
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(_CHUNK_BYTES):
            digest.update(block)
    return digest


def _parse_answer(status: int, headers: Message, hops: list[Message]) -> _Answer:
    """Size, hash and range of a response, preferring the hub's ``X-Linked-*`` headers of a redirect.

    ``X-Linked-Etag`` (else the hub's own ``ETag``) is the file's SHA-256 for LFS files; for small
    git-stored files the ETag is a git object id, which is not a SHA-256 and is not used.
    """
    hub_headers = hops[0] if hops else headers
    linked = [h for h in (*hops, headers) if h.get("X-Linked-Etag") or h.get("X-Linked-Size")]
    etag = (linked[0].get("X-Linked-Etag") if linked else None) or hub_headers.get("ETag") or ""
    etag = etag.strip().removeprefix("W/").strip('"').lower()
    sha256 = etag if _SHA256_HEX.fullmatch(etag) else None

    length = _int_or_none(headers.get("Content-Length"))
    start, total = 0, length
    if status == 206:
        match = _CONTENT_RANGE.fullmatch((headers.get("Content-Range") or "").strip())
        if match is None:
            raise _RetryableError(f"bad Content-Range {headers.get('Content-Range')!r}")
        start, total = int(match[1]), _int_or_none(match[3])
    linked_size = _int_or_none(linked[0].get("X-Linked-Size")) if linked else None
    return _Answer(status, start, length, linked_size if linked_size is not None else total, sha256)


def _one_line(reason: object) -> str:
    """A server's or library's message on one line (urllib's redirect error spans two)."""
    return " ".join(str(reason).split())


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second (``2024-05-01T12:00:00+00:00``), as records store it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
