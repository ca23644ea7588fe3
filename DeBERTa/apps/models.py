"""Where the apps' models and tokenizers come from, shared by training (``--init_model``) and export (SOURCE).

A source is a model name (fetched into the cache), a pre-trained folder in either layout, a weights file
with its config beside it, a checkpoint of the training app, or a training run folder, which stands for
its best checkpoint (else its newest). The tokenizer comes with the model: from its folder when it holds
one (``spm.model`` or a GPT-2 vocabulary, see :func:`DeBERTa.deberta.load_tokenizer`), else the official
GPT-2 vocabulary of DeBERTa v1. The heads an exported folder can hold and the ``config.json`` that names
transformers' class of each are here too: the export and pre-training both write such folders.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from DeBERTa import deberta
from DeBERTa.deberta import pretrained
from DeBERTa.deberta.spm_tokenizer import SPM_MODEL_FILE
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError
from DeBERTa.deberta.tokenizer_loader import Tokenizer, detect_vocab_type
from DeBERTa.deberta.tokenizer_loader import load_tokenizer as resolve_tokenizer

from . import records

logger = logging.getLogger(__name__)

# The heads an exported folder or a fine-tuned checkpoint can hold, and transformers' class of each.
CLASSIFICATION, TOKENS, SPANS, MULTIPLE_CHOICE, MASKED_LM, ENCODER = (
    "classification", "token_classification", "question_answering", "multiple_choice", "masked_lm", "encoder")

ARCHITECTURES = {
    CLASSIFICATION: "ForSequenceClassification",
    TOKENS: "ForTokenClassification",
    SPANS: "ForQuestionAnswering",
    MULTIPLE_CHOICE: "ForMultipleChoice",
    MASKED_LM: "ForMaskedLM",
    ENCODER: "Model",
}
"""The transformers class each head loads into, after the family's ``Deberta`` or ``DebertaV2``."""


def architecture(config: deberta.ModelConfig, head: str) -> str:
    """The transformers class name of ``head`` for the model family of ``config``."""
    return config.transformers_class(ARCHITECTURES[head])


def hf_config(config: deberta.ModelConfig, head: str) -> dict[str, Any]:
    """``config.json`` of an exported folder: Hugging Face's layout, naming transformers' class of ``head`` for the
    model's family (``DebertaV2…`` for v2/v3; an RTD discriminator exports as an encoder: transformers has no
    RTD head class)."""
    return {**config.to_hf_dict(), "architectures": [architecture(config, head)]}


def resolve_source(name_or_path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder or weights file of a model source; a model name is fetched into the cache first,
    and a training run folder gives its best checkpoint, else its newest (as the GLUE recipes starting from
    an MNLI run expect). Raises :class:`~DeBERTa.deberta.CheckpointError` (one line) for an unknown name."""
    path = pretrained.resolve(name_or_path)
    if path.is_dir() and records.checkpoints_dir(path).is_dir():
        return records.run_checkpoint(path)
    return path


def load_tokenizer(vocab: str | os.PathLike[str] | None, source: Path | None, *, option: str,
                   vocab_type: str | None = None) -> Tokenizer:
    """The tokenizer the model needs, through the library's one resolver (:func:`DeBERTa.deberta.load_tokenizer`).

    ``vocab`` when given (a folder, an ``spm.model`` or ``bpe_encoder.bin`` file, or a model name; its
    command-line ``option`` names it in errors); else the tokenizer in the folder of ``source``; else, for a
    source without one, the official GPT-2 vocabulary of DeBERTa v1 (not with ``vocab_type`` spm: that is an
    error). ``vocab_type`` (``auto``/None, ``gpt2``, ``spm``) insists on one kind of tokenizer.
    """
    if vocab is not None:
        try:
            return resolve_tokenizer(vocab, vocab_type)
        except TokenizerError as err:
            raise TokenizerError(f"{option}: {err}") from None
    if source is not None:
        folder = source if source.is_dir() else source.parent
        if detect_vocab_type(folder) is not None:
            return resolve_tokenizer(folder, vocab_type)
        if vocab_type == "spm":
            raise TokenizerError(f"vocab_type spm, but {folder} holds no {SPM_MODEL_FILE}: give one with {option}")
        logger.info("no vocabulary beside %s: using the official DeBERTa vocabulary", source)
    elif vocab_type == "spm":
        raise TokenizerError(f"vocab_type spm needs a SentencePiece model: give one with {option}")
    return GPT2Tokenizer()
