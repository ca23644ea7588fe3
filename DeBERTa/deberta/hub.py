"""Pre-trained models from the Hugging Face hub: names, cache, and a download that can be trusted.

A model name (``base``, ``large_mnli``, ``microsoft/deberta-base``, ...) resolves to the hub layout
``<hub>/<repo id>/resolve/main/<file>``; the hub base comes from ``$DEBERTA_MODEL_HUB`` so a mirror
works. Files land in ``$DEBERTA_CACHE`` (default ``~/.~DeBERTa``, as the original release)::

    <cache>/models/base/config.json               the files, ready to load from the folder
    <cache>/models/base/pytorch_model.bin
    <cache>/models/base/.hub/pytorch_model.bin.json   URL, size, sha256, time of download
    <cache>/models/base/.hub/pytorch_model.bin.part   an interrupted download, resumed next time
    <cache>/models/base/.hub/pytorch_model.bin.lock   serialises the ranks of one job

A file appears under its final name only after its size and (when the hub publishes it) SHA-256 were
checked, by an atomic ``os.replace``; so a crash or Ctrl-C can leave a ``.part`` file but never a file
that a later run would trust. Nothing here unpickles anything: loading is the caller's job.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
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
    "MODELS",
    "MODEL_FILES",
    "DownloadError",
    "FileNotOnHub",
    "cache_dir",
    "cached_files",
    "canonical_name",
    "fetch",
    "fetch_model",
    "file_url",
    "hub_url",
    "is_offline",
    "sha256_of",
    "utc_now",
]

logger = logging.getLogger(__name__)

DEFAULT_HUB = "https://huggingface.co"

MODELS: dict[str, str] = {
    "base": "microsoft/deberta-base",
    "large": "microsoft/deberta-large",
    "xlarge": "microsoft/deberta-xlarge",
    "base_mnli": "microsoft/deberta-base-mnli",
    "large_mnli": "microsoft/deberta-large-mnli",
    "xlarge_mnli": "microsoft/deberta-xlarge-mnli",
}
"""Canonical model name -> Hugging Face repository id (all DeBERTa v1, GPT-2 BPE vocabulary)."""

MODEL_FILES = ("config.json", "pytorch_model.bin", "bpe_encoder.bin")
"""The files of a model folder; the last, the tokenizer's vocabulary, is optional on a mirror."""

_REQUIRED_FILES = MODEL_FILES[:2]

_TRUE_WORDS = {"1", "true", "yes", "on"}
_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60.0
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# Every spelling a user may type, lower-cased: 'base_mnli', 'base-mnli', 'deberta-base-mnli',
# 'microsoft/deberta-base-mnli'.
_ALIASES: dict[str, str] = {}
for _name, _repo in MODELS.items():
    for _alias in (_name, _name.replace("_", "-"), _repo, _repo.split("/", 1)[1]):
        _ALIASES[_alias.lower()] = _name


class DownloadError(DeBERTaError):
    """A model file could not be fetched; the message names model, file, URL and what to do."""


class FileNotOnHub(DownloadError):
    """The hub answered 404 for a file: it does not exist there (a wrong name or an optional file)."""


def canonical_name(name: str) -> str | None:
    """The canonical key of :data:`MODELS` for any accepted spelling of a model name, else None.

    None means "not a hub model name" -- callers then treat the string as a local path.
    """
    return _ALIASES.get(name.strip().lower())


def hub_url() -> str:
    """Base URL of the model hub: ``$DEBERTA_MODEL_HUB`` (a mirror) or the public Hugging Face hub."""
    return (os.environ.get("DEBERTA_MODEL_HUB") or DEFAULT_HUB).rstrip("/")


def cache_dir() -> Path:
    """Root of the download cache: ``$DEBERTA_CACHE`` or ``~/.~DeBERTa``."""
    return Path(os.environ.get("DEBERTA_CACHE") or "~/.~DeBERTa").expanduser()


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
    """Files of a named model in the cache that a fetch would trust, by name: file name -> size in bytes."""
    folder = _model_dir(_require_name(name))
    trusted = sorted(path for path in folder.glob("[!.]*") if _is_trusted(path))
    return {path.name: path.stat().st_size for path in trusted}


def fetch(name: str, filename: str, *, progress: bool = True) -> Path:
    """Path of one file of a named model in the cache, downloading it first if needed.

    Downloads once per cache even when many processes ask at the same time (a file lock), resumes an
    interrupted download, verifies size and SHA-256, and retries connection errors and 5xx answers with
    exponential back-off (``$DEBERTA_DOWNLOAD_RETRIES`` tries, default 4; first wait
    ``$DEBERTA_DOWNLOAD_BACKOFF`` seconds, default 1, doubling). A cached file is used without touching
    the network.

    Args:
        name: a model name accepted by :func:`canonical_name`.
        filename: a file of the model's hub repository, e.g. ``pytorch_model.bin``.
        progress: show a progress bar (on stderr, and only in the process with ``LOCAL_RANK`` 0 or unset).

    Raises:
        DownloadError: unknown name, offline with the file not cached, HTTP errors, a corrupt download.
        FileNotOnHub: the hub has no such file (HTTP 404).
    """
    canonical = _require_name(name)
    if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
        raise DownloadError(f"invalid file name {filename!r} for model '{canonical}': expected e.g. "
                            f"{', '.join(MODEL_FILES)}")
    target = _model_dir(canonical) / filename
    if _is_trusted(target):
        return target
    url = file_url(canonical, filename)
    if is_offline():
        raise DownloadError(
            f"{filename} of model '{canonical}' is not in the cache {target.parent} and downloads are off "
            f"({_offline_setting()}; URL {url}); {_how_to_fetch(canonical)}")
    try:
        target.parent.joinpath(".hub").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot write to the model cache {target.parent} ({err.strerror}); set "
                            "DEBERTA_CACHE to a writable folder") from err
    lock = filelock.FileLock(_sidecar(target, ".lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        logger.info("waiting for another process to download %s", url)
        lock.acquire()
    try:
        # Another process may have finished the download while this one waited for the lock.
        if not _is_trusted(target):
            _download(canonical, url, target, show=progress and _is_progress_rank())
    finally:
        lock.release()
    return target


def fetch_model(name: str, *, progress: bool = True) -> Path:
    """The cache folder of a named model holding ``config.json`` and ``pytorch_model.bin``, ready to load.

    ``bpe_encoder.bin`` (the vocabulary) is fetched too when the hub has it; a mirror without it is
    fine, and is remembered so that a later call does not ask again. Raises :class:`DownloadError`.
    """
    canonical = _require_name(name)
    for filename in _REQUIRED_FILES:
        fetch(canonical, filename, progress=progress)
    vocab = _model_dir(canonical) / MODEL_FILES[2]
    known_missing = _read_meta(vocab).get("missing", False)
    if not (_is_trusted(vocab) or known_missing or is_offline()):
        try:
            fetch(canonical, vocab.name, progress=progress)
        except FileNotOnHub:
            _write_meta(vocab, {"missing": True, "url": file_url(canonical, vocab.name),
                                "checked": utc_now()})
    return vocab.parent


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
    canonical = canonical_name(name)
    if canonical is None:
        raise DownloadError(f"unknown model {name!r}: expected one of {', '.join(MODELS)} (or "
                            "microsoft/deberta-* names), or the path of a local folder or file")
    return canonical


def _model_dir(canonical: str) -> Path:
    return cache_dir() / "models" / canonical


def _sidecar(target: Path, suffix: str) -> Path:
    """Bookkeeping files live in a hidden ``.hub`` folder so the model folder holds only model files."""
    return target.parent / ".hub" / (target.name + suffix)


def _read_meta(target: Path) -> dict:
    try:
        return json.loads(_sidecar(target, ".json").read_text())
    except (OSError, ValueError):
        return {}


def _write_meta(target: Path, meta: dict) -> None:
    path = _sidecar(target, ".json")
    # One scratch file per process: ranks may record the same missing file at once, outside the lock.
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(scratch, path)


def _is_trusted(target: Path) -> bool:
    """A cached file is trusted when it exists and, if its download was recorded, still has that size.

    Files placed by hand (no record) are trusted; a recorded size that no longer matches means the file
    was damaged after the download.
    """
    if not target.is_file():
        return False
    recorded = _read_meta(target).get("size")
    return recorded is None or recorded == target.stat().st_size


def _is_progress_rank() -> bool:
    """Only one process per machine draws progress bars: the one with LOCAL_RANK 0 (or no launcher)."""
    return os.environ.get("LOCAL_RANK", "0").strip() in ("", "0")


def _how_to_fetch(canonical: str) -> str:
    return (f"run 'python -m DeBERTa.apps.download {canonical}' on a machine with network, set "
            "DEBERTA_MODEL_HUB to a reachable mirror, or pass the path of a local model folder")


def _retry_settings() -> tuple[int, float]:
    """(tries, first wait in seconds) from the environment; tests shorten the waits."""
    try:
        tries = max(1, int(os.environ.get("DEBERTA_DOWNLOAD_RETRIES", "4")))
        backoff = max(0.0, float(os.environ.get("DEBERTA_DOWNLOAD_BACKOFF", "1.0")))
    except ValueError as err:
        raise DownloadError(f"bad DEBERTA_DOWNLOAD_RETRIES/DEBERTA_DOWNLOAD_BACKOFF: {err}") from err
    return tries, backoff


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
                part.unlink(missing_ok=True)
                last_error = "the server refused to resume a partial download (HTTP 416)"
            elif err.code == 429 or err.code >= 500:
                last_error = f"HTTP {err.code} {err.reason}"
            else:
                raise DownloadError(f"cannot download {label}: HTTP {err.code} {err.reason} for {url} "
                                    "(the hub answers 401 for a repository that does not exist); check "
                                    "DEBERTA_MODEL_HUB or pass the path of a local model folder") from err
        except (urllib.error.URLError, OSError, http.client.HTTPException, _RetryableError) as err:
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            last_error = str(reason) or type(reason).__name__
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
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {label} from {url} is corrupt: {problem}; it was deleted, "
                            "run again to retry (or check DEBERTA_MODEL_HUB)")
    # Record first, then publish: the final name only ever appears with its record beside it.
    _write_meta(target, {"url": url, "size": size, "sha256": sha256,
                         "sha256_verified": answer.sha256 is not None, "downloaded": utc_now()})
    os.replace(part, target)


def _attempt(url: str, part: Path, *, label: str, show: bool) -> tuple[_Answer, str, int]:
    """One GET of ``url`` into ``part``, resuming from its current size with an HTTP Range request.

    Returns what the response announced, and the SHA-256 and size of the whole partial file. Raises
    :class:`_RetryableError` when the connection ended before the promised length.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"DeBERTa/{__version__} (python-urllib)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    redirects = _RecordingRedirects()
    opener = urllib.request.build_opener(redirects)
    with opener.open(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S) as response:
        answer = _parse_answer(response.status, response.headers, redirects.hops)
        if answer.status == 200:
            offset = 0  # the server ignored Range (or there was nothing to resume): start over
        elif answer.start != offset:
            part.unlink()
            raise _RetryableError(f"the server resumed at byte {answer.start}, not {offset}")
        digest = sha256_of(part) if offset else hashlib.sha256()
        with part.open("ab" if offset else "wb") as out:
            with tqdm(total=answer.total, initial=offset, unit="B", unit_scale=True, desc=label,
                      disable=not show, file=sys.stderr) as bar:
                while chunk := response.read1(_CHUNK_BYTES):  # what has arrived, for the bar
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            size = out.tell()
            # Flush to disk before the caller renames: a power cut must not leave an empty trusted file.
            out.flush()
            os.fsync(out.fileno())
    if answer.length is not None and size - offset < answer.length:
        raise _RetryableError(f"connection closed after {size - offset} of {answer.length} bytes")
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


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second (``2024-05-01T12:00:00+00:00``), as records store it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
