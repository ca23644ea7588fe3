"""Export a model of this package as a Hugging Face folder that ``transformers`` loads as it is.

    python -m DeBERTa.apps.export SOURCE OUTPUT_DIR [--task-head auto|none] [--vocab PATH]
                                  [--dtype float32|float16|bfloat16] [--force]
    python -m DeBERTa.apps.export SOURCE OUTPUT_DIR --format onnx [--dtype float32|float16|int8]
                                  [--quantize int8] [--opset N] [--task-head auto|none] [--vocab PATH] [--force]

``--format onnx`` writes ``model.onnx`` for ONNX Runtime instead (:mod:`DeBERTa.apps.onnx_export`, which
describes the folder; needs ``pip install "deberta[onnx]"``). What follows describes the Hugging Face folder.

SOURCE is a model name (``base``, ``large_mnli``, ``microsoft/deberta-base``, ...), a pre-trained folder in
the original release's layout or Hugging Face's, a weights file with its config beside it, a checkpoint of
the training app (``<run>/checkpoints/step-N``) or a training run folder (its best checkpoint, else its
newest). OUTPUT_DIR receives::

    config.json              model_type deberta (v1) or deberta-v2 (v2, v3, mDeBERTa), architectures,
                             the labels of a classifier
    model.safetensors        Hugging Face's key names, in the chosen dtype
    spm.model, tokenizer_config.json, special_tokens_map.json, tokenizer.json
                             for a SentencePiece tokenizer (v2/v3): what the released models ship, written by
                             :meth:`DeBERTa.deberta.SPMTokenizer.save_pretrained`; or, for a GPT-2 vocabulary:
    tokenizer.json           the whole tokenizer for the ``tokenizers`` library: byte-level BPE over the
                             vocabulary, and DeBERTa's inputs [CLS] A [SEP] / [CLS] A [SEP] B [SEP] with
                             type ids 0 for [CLS] A [SEP] and 1 for B [SEP]
    vocab.json, merges.txt   the vocabulary, with tokenizer_config.json and special_tokens_map.json
    bpe_encoder.bin          the same vocabulary in the original format (keeps the corpus counts)

Load the tokenizer with ``transformers.AutoTokenizer.from_pretrained(OUTPUT_DIR)``: tokenizer_config.json
names the generic fast tokenizer (``PreTrainedTokenizerFast``), which runs tokenizer.json as it is and
returns token type ids, so single texts and pairs get exactly this package's ids and type ids.
``transformers.DebertaTokenizer.from_pretrained(OUTPUT_DIR)`` also loads the folder and encodes single
texts the same, but (as of transformers 5) it replaces the pair template with its own,
``[CLS] A [SEP] [SEP] B [SEP]`` with every type id 0: sentence pairs then differ from the ones the model
was trained on. The export warns about this. In tokenizer.json the special tokens are matched in text
(``[MASK]`` taking the space before it, as DebertaTokenizer does, for fill-mask); this package's tokenizer
splits such strings like any text.

A vocabulary built from a corpus alone (``build_vocab(..., include_unseen=False)``) leaves out BPE tokens
that its merges produce; the ``tokenizers`` BPE (and so transformers) cannot load such a vocabulary, and
the export refuses it rather than write a folder that fails later.

The architecture follows the head the checkpoint holds (``--task-head auto``): a pooler and classifier
give ``DebertaForSequenceClassification``, a classifier alone ``DebertaForTokenClassification``,
``qa_outputs`` ``DebertaForQuestionAnswering``, a masked-LM head ``DebertaForMaskedLM`` (``legacy: false``:
the head keeps its original names ``lm_predictions.lm_head.*``), none ``DebertaModel`` (encoder keys
without the ``deberta.`` prefix); ``DebertaV2…`` for a v2/v3 model. ``--task-head none`` exports the
encoder alone. transformers has no class for v3's replaced-token-detection head (``mask_predictions.*``):
it is left out, with a log line.

The absolute position table of a model without ``position_biased_input`` is exported too, although
transformers' DebertaModel has no use for it and skips it on loading (its
``_keys_to_ignore_on_load_unexpected``): it is what this package's enhanced mask decoder adds to its
queries, so keeping it lets the exported folder be loaded back here with the decoder intact.
transformers' DebertaForMaskedLM has no enhanced mask decoder: for such models its masked-LM scores
differ from this package's (the encoder outputs are the same).

The folder is written under a temporary name beside OUTPUT_DIR and renamed into place when complete, so
an interrupted export leaves no half-written folder. A non-empty OUTPUT_DIR is only replaced with
``--force``. Errors print one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from DeBERTa import deberta
from DeBERTa.apps.models import (
    CLASSIFICATION,
    ENCODER,
    MASKED_LM,
    SPANS,
    TOKENS,
    architecture,
    hf_config,
    load_tokenizer,
    resolve_source,
)
from DeBERTa.apps.options import OneLineErrorParser
from DeBERTa.deberta import pretrained
from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.deberta.tokenizer import CLS, HF_MERGES_FILE, HF_VOCAB_FILE, MASK, PAD, SEP, UNK, GPT2Tokenizer

__all__ = [
    "DTYPES", "FORMATS", "ExportError", "check_not_source", "check_output", "choose_head",
    "current_umask", "export_hf", "install_folder", "main", "write_json",
]

logger = logging.getLogger(__name__)

# Key prefixes of each head in this package's (and Hugging Face's) names.
_HEAD_PREFIXES = {CLASSIFICATION: ("pooler.", "classifier."), TOKENS: ("classifier.",), SPANS: ("qa_outputs.",),
                  MASKED_LM: ("lm_predictions.",)}
_UNEXPORTED_HEADS = {"mask_predictions": "the replaced-token-detection head (transformers has no class for it)"}

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
"""``--dtype`` choices: the type floating-point tensors are stored in."""

FORMATS = ("hf", "onnx")
"""``--format``: a Hugging Face folder, or an ONNX folder (:mod:`DeBERTa.apps.onnx_export`)."""
ONNX_DTYPES = ("float32", "float16", "int8")
"""``--dtype`` with ``--format onnx`` (:data:`DeBERTa.apps.onnx_export.DTYPES`; int8 is ONNX Runtime's dynamic
quantization, ONNX Runtime has no bfloat16 matrix products on CPU)."""

_POSITIONS = "embeddings.position_embeddings.weight"

# transformers' DebertaTokenizer defaults, written out so that any version builds the same tokenizer:
# [CLS] A [SEP], no space added before the text.
_SPECIAL_TOKENS = {
    "bos_token": CLS, "eos_token": SEP, "unk_token": UNK, "sep_token": SEP, "pad_token": PAD, "cls_token": CLS,
    "mask_token": MASK,
}
_LABEL_FIELDS = ("finetuning_task", "problem_type", "cls_dropout")
TOKENIZER_FILE = "tokenizer.json"


class ExportError(DeBERTaError):
    """The source cannot be exported as asked, or the output folder is not free."""


# --------------------------------------------------------------------------------------------------
# Reading the source
# --------------------------------------------------------------------------------------------------
def choose_head(state: dict[str, torch.Tensor], task_head: str) -> str:
    """The head to export: what the checkpoint holds, or ENCODER for ``--task-head none``."""
    if task_head == "none":
        return ENCODER
    present = {k.split(".", 1)[0] for k in state if not k.startswith(pretrained.ENCODER_PREFIX)}
    for name, what in _UNEXPORTED_HEADS.items():
        if name in present:
            logger.info("not exported: %s", what)
    heads = sorted(present & {"classifier", "lm_predictions", "qa_outputs"})
    if len(heads) > 1:
        raise ExportError(f"the checkpoint holds several heads ({', '.join(heads)}); export the encoder "
                          "alone with --task-head none")
    if "classifier" in present:
        return CLASSIFICATION if "pooler" in present else TOKENS
    if "qa_outputs" in present:
        return SPANS
    return MASKED_LM if "lm_predictions" in present else ENCODER


def _check_transformers_fit(config: deberta.ModelConfig, head: str) -> None:
    """Refuse heads whose shapes transformers' classes cannot hold (they assume the hidden size)."""
    if head == CLASSIFICATION and config.pooler_hidden_size != config.hidden_size:
        raise ExportError(f"pooler_hidden_size {config.pooler_hidden_size} differs from hidden_size "
                          f"{config.hidden_size}: transformers' DebertaForSequenceClassification cannot hold "
                          "that pooler; use --task-head none for the encoder")
    if head == MASKED_LM and config.embedding_size is not None:
        raise ExportError(f"embedding_size {config.embedding_size} differs from hidden_size {config.hidden_size}: "
                          "transformers' DebertaForMaskedLM (legacy: false) cannot hold that masked-LM head; "
                          "use --task-head none for the encoder")


def _expected_shapes(config: deberta.ModelConfig, head: str, num_labels: int) -> dict[str, torch.Size]:
    """Name → shape of every tensor the exported model must hold, in the exported (Hugging Face) names.

    Built on the meta device: shapes without memory, even for the large models.
    """
    with torch.device("meta"):
        if head == CLASSIFICATION:
            model: torch.nn.Module = deberta.SequenceClassificationModel(config, num_labels=num_labels)
        elif head == TOKENS:
            model = deberta.TokenClassificationModel(config, num_labels=num_labels)
        elif head == SPANS:
            model = deberta.QuestionAnsweringModel(config)
        elif head == MASKED_LM:
            model = deberta.MaskedLanguageModel(config)
        else:
            model = deberta.DeBERTa(config)
    return {k: v.shape for k, v in model.state_dict().items()}


def _hf_tensors(
    state: dict[str, torch.Tensor], config: deberta.ModelConfig, head: str, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """The tensors to save, in transformers' names for ``head``, floating-point ones cast to ``dtype``.

    Every tensor the model needs must be there with its shape; the absolute position table is optional
    when the input does not use it (see the module docstring for why it is kept when present).
    """
    if head == ENCODER:  # a bare DebertaModel: no heads, no `deberta.` prefix
        prefix = pretrained.ENCODER_PREFIX
        tensors = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    else:
        keep = (pretrained.ENCODER_PREFIX, *_HEAD_PREFIXES[head])
        tensors = {k: v for k, v in state.items() if k.startswith(keep)}
    num_labels = state["classifier.weight"].shape[0] if head in (CLASSIFICATION, TOKENS) else 0
    expected = _expected_shapes(config, head, num_labels)
    positions = _POSITIONS if head == ENCODER else pretrained.ENCODER_PREFIX + _POSITIONS
    optional = set() if config.position_biased_input else {positions}
    missing = sorted(expected.keys() - tensors.keys() - optional)
    unexpected = sorted(tensors.keys() - expected.keys() - optional)
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:4])}"] if missing else []
        parts += [f"unexpected {', '.join(unexpected[:4])}"] if unexpected else []
        raise ExportError("the checkpoint's tensors do not match its config: " + "; ".join(parts))
    for key, tensor in tensors.items():
        if key in expected and tuple(tensor.shape) != tuple(expected[key]):
            raise ExportError(f"{key}: shape {tuple(tensor.shape)} in the checkpoint, but its config needs "
                              f"{tuple(expected[key])}")
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}


def _label_fields(config_file: Path | None, num_labels: int) -> dict[str, Any]:
    """num_labels, id2label, label2id (and task, problem type, classifier dropout) of a classifier.

    The source's names are kept when its config.json has them for this many labels (a checkpoint of the
    training app, or an MNLI model from the hub); otherwise transformers' placeholders ``LABEL_i``.
    """
    source: dict[str, Any] = {}
    if config_file is not None:
        source = json.loads(config_file.read_text(encoding="utf-8"))
    id2label = source.get("id2label")
    if id2label is not None and not _is_label_map(id2label):
        raise ExportError(f"{config_file}: id2label must map the class ids \"0\" … \"n-1\" to names, not "
                          f"{json.dumps(id2label)[:80]}")
    if not (isinstance(id2label, dict) and len(id2label) == num_labels):
        id2label = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        source = {}  # the task and problem type of a label set that is not this one would mislead
    names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    fields = {
        "num_labels": num_labels,
        "id2label": {str(i): name for i, name in enumerate(names)},
        "label2id": {name: i for i, name in enumerate(names)},
    }
    fields.update({k: source[k] for k in _LABEL_FIELDS if source.get(k) is not None})
    return fields


def _is_label_map(id2label: Any) -> bool:
    """Whether ``id2label`` is what transformers writes: {"0": name, "1": name, ...}, every id once."""
    if not isinstance(id2label, dict) or not all(isinstance(v, str) for v in id2label.values()):
        return False
    ids = [int(k) if isinstance(k, str) and k.isascii() and k.isdigit() else -1 for k in id2label]
    return sorted(ids) == list(range(len(ids)))


def _check_loadable_vocabulary(tokenizer: GPT2Tokenizer) -> None:
    """Refuse a vocabulary without every BPE token its merges use (a corpus-only build): the ``tokenizers``
    BPE that transformers builds from vocab.json + merges.txt needs each merge's parts and product."""
    vocabulary = tokenizer.vocabulary()
    listed = {int(symbol) for symbol, _ in vocabulary.dict_map if symbol.isascii() and symbol.isdigit()}
    needed = {token for token in vocabulary.encoder if len(token) == 1}  # the 256 byte symbols
    needed.update(token for pair in vocabulary.merges for token in (*pair, "".join(pair)))
    missing = sum(vocabulary.encoder.get(token) not in listed for token in needed)
    if missing:
        raise ExportError(f"the vocabulary lacks {missing} of the {len(needed)} BPE tokens its merges use (built "
                          "from a corpus alone, include_unseen=False): transformers cannot load it; export a "
                          "model trained with a complete vocabulary (build_vocab's default)")


# --------------------------------------------------------------------------------------------------
# Writing the folder
# --------------------------------------------------------------------------------------------------
def write_json(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented JSON, keys sorted so that two exports of one model compare equal."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _fast_tokenizer(tokenizer: GPT2Tokenizer, folder: Path) -> Tokenizer:
    """tokenizer.json's content: the BPE of the vocab.json + merges.txt in ``folder`` (as transformers reads
    them), GPT-2's byte-level split and decoding, and DeBERTa's [CLS] A [SEP] (B [SEP]) with type ids."""
    try:
        bpe = models.BPE.from_file(str(folder / HF_VOCAB_FILE), str(folder / HF_MERGES_FILE))
    except Exception as err:  # the Rust binding raises a bare Exception for files it cannot use
        raise ExportError(f"the tokenizers library cannot load the vocabulary: {err}") from None
    fast = Tokenizer(bpe)
    fast.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    fast.decoder = decoders.ByteLevel()
    fast.add_special_tokens([AddedToken(token, special=True, lstrip=token == MASK)
                             for token in tokenizer.special_tokens])
    fast.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, tokenizer.cls_token_id), (SEP, tokenizer.sep_token_id)],
    )
    return fast


def _write_tokenizer(tokenizer: GPT2Tokenizer, folder: Path, max_length: int) -> None:
    """The tokenizer's files, tokenizer.json, and the two JSON files transformers reads with them."""
    tokenizer.save_pretrained(folder)
    _fast_tokenizer(tokenizer, folder).save(str(folder / TOKENIZER_FILE))
    write_json(folder / "tokenizer_config.json", {
        # The generic fast tokenizer runs tokenizer.json as written; DebertaTokenizer would replace its pair
        # template (see the module docstring).
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
        "add_prefix_space": False, "errors": "replace", "model_max_length": max_length, **_SPECIAL_TOKENS,
    })
    write_json(folder / "special_tokens_map.json", _SPECIAL_TOKENS)


def check_output(output_dir: Path, force: bool) -> None:
    """Refuse an output that is a file, or a non-empty folder without ``force``."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ExportError(f"{output_dir} exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not force:
        raise ExportError(f"{output_dir} is not empty; use --force to replace it")


def check_not_source(output_dir: Path, checkpoint: Path) -> None:
    """Refuse an output folder that is, or holds, the source's folder (replacing it would delete the source)."""
    folder = (checkpoint if checkpoint.is_dir() else checkpoint.parent).resolve()
    if output_dir.resolve() in (folder, *folder.parents):
        raise ExportError(f"{output_dir} holds the source {checkpoint}; export into another folder")


def install_folder(new: Path, target: Path) -> None:
    """Move the complete folder ``new`` to ``target``, replacing what is there (already allowed)."""
    if target.is_dir() and any(target.iterdir()):
        # Aside first, then in, then delete: at no moment is `target` a half-written export.
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if target.is_dir():
            target.rmdir()
        os.replace(new, target)


def current_umask() -> int:
    """The process's umask: reading it means setting it, so it is set back at once."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_hf(
    source: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    task_head: str = "auto",
    vocab: str | os.PathLike[str] | None = None,
    dtype: str = "float32",
    force: bool = False,
) -> Path:
    """Write the Hugging Face folder of ``source`` into ``output_dir``; returns ``output_dir``.

    Args:
        source: model name, pre-trained folder (either layout), weights file with its config beside it,
            training-app checkpoint folder, or training run folder (its best, else newest, checkpoint).
        output_dir: the folder to create; an existing non-empty one only with ``force``.
        task_head: ``auto`` (the head the checkpoint holds) or ``none`` (the encoder alone, DebertaModel).
        vocab: the vocabulary to export (``bpe_encoder.bin``, or a folder / pair with vocab.json +
            merges.txt); default: the one beside the checkpoint, else the official vocabulary.
        dtype: ``float32``, ``float16`` or ``bfloat16``, the type the weights are stored in.
        force: replace a non-empty ``output_dir``.

    Raises :class:`ExportError` (or another :class:`DeBERTaError`) with a one-line message.
    """
    if task_head not in ("auto", "none"):
        raise ExportError(f"task_head {task_head!r}: expected auto or none")
    if dtype not in DTYPES:
        raise ExportError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    output_dir = Path(output_dir).expanduser().absolute()
    check_output(output_dir, force)  # before the (maybe long) download and load

    checkpoint = resolve_source(source)
    check_not_source(output_dir, checkpoint)
    state, config = deberta.load_model_state(checkpoint)
    head = choose_head(state, task_head)
    _check_transformers_fit(config, head)
    tensors = _hf_tensors(state, config, head, DTYPES[dtype])
    folder_config = {**hf_config(config, head), "dtype": dtype}
    if head in (CLASSIFICATION, TOKENS):
        _, config_file = pretrained.find_files(checkpoint)
        folder_config.update(_label_fields(config_file, tensors["classifier.weight"].shape[0]))
    tokenizer = load_tokenizer(vocab, checkpoint, option="--vocab")
    if tokenizer.vocab_size > config.vocab_size:
        raise ExportError(f"the vocabulary has {tokenizer.vocab_size} ids but the model embeds only "
                          f"{config.vocab_size}; give the model's own vocabulary with --vocab")
    byte_level = isinstance(tokenizer, GPT2Tokenizer)
    if isinstance(tokenizer, GPT2Tokenizer):  # not `byte_level`: mypy narrows the type on the isinstance only
        _check_loadable_vocabulary(tokenizer)

    if head == MASKED_LM and not config.position_biased_input:
        logger.warning("transformers' DebertaForMaskedLM has no enhanced mask decoder: its masked-LM scores "
                       "for this model differ from DeBERTa's (the encoder outputs agree)")

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.export-", dir=output_dir.parent))
    try:
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        write_json(staging / "config.json", folder_config)
        if isinstance(tokenizer, GPT2Tokenizer):
            _write_tokenizer(tokenizer, staging, config.max_position_embeddings)
        else:  # SentencePiece (v2/v3): the files the released models ship
            tokenizer.save_pretrained(staging, model_max_length=config.max_position_embeddings)
        # mkdtemp (0700) and safetensors (0600) would make the export private to this user; a model
        # folder is for sharing, so it gets the permissions of any file this user creates.
        umask = current_umask()
        staging.chmod(0o777 & ~umask)
        for file in staging.iterdir():
            file.chmod(0o666 & ~umask)
        check_output(output_dir, force)  # another process may have filled it meanwhile
        install_folder(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("%s: %s from %s, %d tensors in %s, vocabulary of %d ids", output_dir, architecture(config, head),
                checkpoint, len(tensors), dtype, tokenizer.vocab_size)
    if byte_level:
        logger.warning("load the tokenizer with transformers' AutoTokenizer: its DebertaTokenizer class (as of "
                       "transformers 5) ignores %s's pair template and encodes sentence pairs as [CLS] A [SEP] "
                       "[SEP] B [SEP] with type ids 0, unlike DeBERTa's [CLS] A [SEP] B [SEP] with type ids 1 for B",
                       TOKENIZER_FILE)
    return output_dir


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        error_type=ExportError,
        prog="python -m DeBERTa.apps.export",
        description="Write a Hugging Face folder (config.json, model.safetensors, the tokenizer's files) that "
        "transformers' DebertaModel / DebertaV2Model and their ForSequenceClassification / ForTokenClassification / "
        "ForQuestionAnswering / ForMaskedLM classes and AutoTokenizer load.",
    )
    parser.add_argument("source", metavar="SOURCE",
                        help="model name, pre-trained folder or weights file, training checkpoint or run folder")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="the folder to write")
    parser.add_argument("--task-head", choices=("auto", "none"), default="auto",
                        help="auto: the head the checkpoint holds; none: the encoder alone (default auto)")
    parser.add_argument("--vocab", metavar="PATH",
                        help="vocabulary to export (default: the source's, else the official one)")
    parser.add_argument("--format", choices=FORMATS, default="hf",
                        help="hf: a Hugging Face folder; onnx: model.onnx for ONNX Runtime (default hf)")
    parser.add_argument("--dtype", choices=(*DTYPES, "int8"), default="float32",
                        help="hf: the type of the stored weights; onnx: float32, float16 or int8 (ONNX Runtime's "
                        "dynamic quantization) (default float32)")
    parser.add_argument("--quantize", choices=("int8",),
                        help="onnx: quantize the float32 graph (the same as --dtype int8)")
    parser.add_argument("--opset", type=int, metavar="N",
                        help="onnx: the ONNX opset (default 18, the oldest the exporter writes)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUTPUT_DIR")
    return parser


def _export(args: argparse.Namespace) -> Path:
    """The export ``args`` ask for; the combinations one format cannot do are refused in one line."""
    if args.format == "hf":
        for option, value in (("--quantize", args.quantize), ("--opset", args.opset)):
            if value is not None:
                raise ExportError(f"{option} is for --format onnx")
        if args.dtype == "int8":
            raise ExportError("--dtype int8 is for --format onnx (ONNX Runtime's dynamic quantization); a Hugging "
                              f"Face folder stores {', '.join(DTYPES)}")
        return export_hf(args.source, args.output_dir, task_head=args.task_head, vocab=args.vocab,
                         dtype=args.dtype, force=args.force)
    from DeBERTa.apps import onnx_export  # imports this module; onnx itself is an optional extra

    if args.dtype not in ONNX_DTYPES:
        raise ExportError(f"--dtype {args.dtype} cannot be exported to ONNX; expected one of {', '.join(ONNX_DTYPES)}")
    if args.quantize and args.dtype not in ("float32", "int8"):
        raise ExportError(f"--quantize int8 starts from the float32 graph, not --dtype {args.dtype}")
    opset = onnx_export.DEFAULT_OPSET if args.opset is None else args.opset
    return onnx_export.export_onnx_source(args.source, args.output_dir, task_head=args.task_head, vocab=args.vocab,
                                          dtype="int8" if args.quantize else args.dtype, opset=opset, force=args.force)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0, or 2 after a one-line error)."""
    try:
        args = _parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        path = _export(args)
    except (DeBERTaError, OSError) as err:  # OSError: a full disk or a folder we may not write
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
