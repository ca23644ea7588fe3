"""Where the apps' models and tokenizers come from, shared by training (``--init_model``) and export (SOURCE).

A source is a model name (fetched into the cache), a pre-trained folder in either layout, a weights file
with its config beside it, a checkpoint of the training app, or a training run folder, which stands for
its best checkpoint (else its newest). The tokenizer comes with the model: from its folder when it holds
a vocabulary, else the official one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from DeBERTa.deberta import pretrained
from DeBERTa.deberta.tokenizer import BPE_ENCODER_FILE, HF_MERGES_FILE, HF_VOCAB_FILE, GPT2Tokenizer, TokenizerError

from . import records

logger = logging.getLogger(__name__)


def resolve_source(name_or_path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder or weights file of a model source; a model name is fetched into the cache first,
    and a training run folder gives its best checkpoint, else its newest (as the GLUE recipes starting from
    an MNLI run expect). Raises :class:`~DeBERTa.deberta.CheckpointError` (one line) for an unknown name."""
    path = pretrained.resolve(name_or_path)
    if path.is_dir() and records.checkpoints_dir(path).is_dir():
        return records.run_checkpoint(path)
    return path


def load_tokenizer(vocab: str | os.PathLike[str] | None, source: Path | None, *, option: str) -> GPT2Tokenizer:
    """``vocab`` when given (its command-line ``option`` names it in errors), else the vocabulary in the folder
    of ``source`` (``bpe_encoder.bin``, or ``vocab.json`` + ``merges.txt``), else the official one."""
    if vocab is not None:
        if not Path(vocab).exists():
            raise TokenizerError(f"{option} {vocab}: no such file or folder")
        return GPT2Tokenizer(vocab)
    if source is not None:
        folder = source if source.is_dir() else source.parent
        if (folder / BPE_ENCODER_FILE).is_file() or ((folder / HF_VOCAB_FILE).is_file()
                                                      and (folder / HF_MERGES_FILE).is_file()):
            return GPT2Tokenizer(folder)
        logger.info("no vocabulary beside %s: using the official DeBERTa vocabulary", source)
    return GPT2Tokenizer()
