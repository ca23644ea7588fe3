"""One way to pick a model's tokenizer: from its folder, a vocabulary file, or a model name.

A folder says which tokenizer it needs by the files it holds: ``spm.model`` (DeBERTa v2/v3, mDeBERTa:
:class:`SPMTokenizer`) or ``bpe_encoder.bin`` / ``vocab.json`` + ``merges.txt`` (DeBERTa v1:
:class:`GPT2Tokenizer`), and by the original ``vocab_type`` key of its ``tokenizer_config.json``, which
also gives ``do_lower_case`` and ``split_by_punct``. A model name (``base``, ``deberta-v3-base``, …)
fetches the hub's tokenizer files only (not the weights), from a cache when they are there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeAlias

from . import hub
from .spm_tokenizer import SPM_MODEL_FILE, SPMTokenizer
from .tokenizer import (
    BPE_ENCODER_FILE,
    HF_MERGES_FILE,
    HF_TOKENIZER_CONFIG_FILE,
    HF_VOCAB_FILE,
    GPT2Tokenizer,
    TokenizerError,
    read_tokenizer_config,
)

__all__ = ["VOCAB_TYPES", "Tokenizer", "detect_vocab_type", "load_tokenizer"]

Tokenizer: TypeAlias = GPT2Tokenizer | SPMTokenizer
"""Either DeBERTa tokenizer (usable with ``isinstance``)."""

VOCAB_TYPES = ("gpt2", "spm")
"""The original release's names of the two kinds of vocabulary (``vocab_type``)."""

_FILES_OF = {"gpt2": f"{BPE_ENCODER_FILE} or {HF_VOCAB_FILE} + {HF_MERGES_FILE}", "spm": SPM_MODEL_FILE}


def _checked_vocab_type(vocab_type: str | None) -> str | None:
    """``vocab_type`` as given, with ``auto`` (and None) meaning: find out from the files."""
    if vocab_type is None or vocab_type == "auto":
        return None
    if vocab_type not in VOCAB_TYPES:
        raise TokenizerError(f"vocab_type must be auto, gpt2 or spm, not {vocab_type!r}")
    return vocab_type


def detect_vocab_type(folder: str | os.PathLike[str]) -> str | None:
    """``gpt2`` or ``spm``: the tokenizer a folder holds, None when it holds none.

    Raises :class:`TokenizerError` when it holds both kinds and its tokenizer_config.json's ``vocab_type``
    does not say which, or says one whose files are not there.
    """
    folder = Path(folder)
    present = []
    if (folder / SPM_MODEL_FILE).is_file():
        present.append("spm")
    if (folder / BPE_ENCODER_FILE).is_file() or (
        (folder / HF_VOCAB_FILE).is_file() and (folder / HF_MERGES_FILE).is_file()
    ):
        present.append("gpt2")
    declared = read_tokenizer_config(folder).get("vocab_type")
    if declared is not None and present:
        if declared not in VOCAB_TYPES:
            raise TokenizerError(
                f"{folder / HF_TOKENIZER_CONFIG_FILE}: vocab_type {declared!r} is neither gpt2 nor spm"
            )
        if declared not in present:
            raise TokenizerError(
                f"{folder / HF_TOKENIZER_CONFIG_FILE} says vocab_type {declared} but {folder} holds no "
                f"{_FILES_OF[declared]} (it holds {_FILES_OF[present[0]]})"
            )
        return declared
    if len(present) > 1:
        raise TokenizerError(
            f"{folder} holds both {SPM_MODEL_FILE} and a GPT-2 vocabulary: say which with vocab_type (gpt2 or spm)"
        )
    return present[0] if present else None


def load_tokenizer(name_or_path: str | os.PathLike[str], vocab_type: str | None = None) -> Tokenizer:
    """The tokenizer of a model folder, a vocabulary file, or a model name.

    Args:
        name_or_path: a folder holding ``spm.model`` or ``bpe_encoder.bin`` / ``vocab.json`` + ``merges.txt``
            (a model folder, an exported or ``save_pretrained`` folder); an ``spm.model`` or
            ``bpe_encoder.bin`` file (a ``*.model`` file is read as SentencePiece, any other as
            ``bpe_encoder.bin``); or a model name of the hub (``base``, ``deberta-v3-base``, …), whose
            tokenizer files are fetched into (or found in) the cache.
        vocab_type: ``gpt2`` or ``spm`` to insist on one kind (an error when the files are the other kind);
            None or ``auto`` to follow the files.

    ``do_lower_case`` and ``split_by_punct`` come from the ``tokenizer_config.json`` beside the vocabulary.
    Raises :class:`TokenizerError` (one line) for a missing, unreadable or mismatched tokenizer.
    """
    wanted = _checked_vocab_type(vocab_type)
    path = Path(name_or_path)
    if path.is_dir():
        found = detect_vocab_type(path)
        if found is None:
            raise TokenizerError(
                f"{path} holds no tokenizer: expected {SPM_MODEL_FILE} (DeBERTa v2/v3) or {_FILES_OF['gpt2']} (v1)"
            )
        if wanted is not None and wanted != found:
            raise TokenizerError(
                f"vocab_type {wanted} does not match {path}: it holds {_FILES_OF[found]} (vocab_type {found})"
            )
        return _from_folder(path, found)
    if path.is_file():
        found = "spm" if path.suffix == ".model" else "gpt2"
        if wanted is not None and wanted != found:
            raise TokenizerError(f"vocab_type {wanted} does not match {path}, a {_FILES_OF[found]} file")
        return _from_folder(path, found)
    canonical = hub.canonical_name(str(name_or_path))
    if canonical is None:
        raise TokenizerError(
            f"{name_or_path}: no such file or folder, and not a model name (e.g. base, deberta-v3-base)"
        )
    return _from_hub(canonical, wanted)


def _from_folder(path: Path, vocab_type: str) -> Tokenizer:
    """The tokenizer of kind ``vocab_type`` in ``path`` (a folder or a vocabulary file)."""
    config = read_tokenizer_config(path if path.is_dir() else path.parent)
    do_lower_case = bool(config.get("do_lower_case", False))
    if vocab_type == "spm":
        return SPMTokenizer(path, do_lower_case, split_by_punct=bool(config.get("split_by_punct", False)))
    return GPT2Tokenizer(path, do_lower_case)


def _from_hub(canonical: str, wanted: str | None) -> Tokenizer:
    """The tokenizer of a named model: its vocabulary file (and tokenizer_config.json when the hub has it)."""
    files = hub.model_files(canonical)
    vocab_type = "spm" if SPM_MODEL_FILE in files else "gpt2"
    if wanted is not None and wanted != vocab_type:
        raise TokenizerError(f"vocab_type {wanted} does not match model '{canonical}', whose tokenizer is "
                             f"{vocab_type} ({SPM_MODEL_FILE if vocab_type == 'spm' else BPE_ENCODER_FILE})")
    vocab_file = hub.fetch(canonical, SPM_MODEL_FILE if vocab_type == "spm" else BPE_ENCODER_FILE)
    config = {}
    if HF_TOKENIZER_CONFIG_FILE in files:
        try:
            config = read_tokenizer_config(hub.fetch(canonical, HF_TOKENIZER_CONFIG_FILE).parent)
        except hub.DownloadError:
            pass  # optional: a mirror may not have it, and the released configs are the defaults
    with hub.loading_cached(vocab_file):
        if vocab_type == "spm":
            return SPMTokenizer(vocab_file, bool(config.get("do_lower_case", False)),
                                split_by_punct=bool(config.get("split_by_punct", False)))
        return GPT2Tokenizer(vocab_file)
