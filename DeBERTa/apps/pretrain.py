"""Masked-LM pre-training with the enhanced mask decoder, on a plain-text corpus.

::

    python -m DeBERTa.apps.pretrain --corpus train.txt [more.txt ...] --vocab_path my_vocab \\
        --model_config small --output_dir pretrained/ --num_train_epochs 3

Corpus files are UTF-8, one text per line (blank lines are skipped); a line longer than
``--max_seq_len`` is cut into several sequences rather than truncated. Each sequence is
``[CLS] tokens [SEP]``. Masking is BERT's, applied afresh to every batch (dynamic masking): 15% of the
tokens of each sequence (at least one) are chosen, whole words or not; of those, 80% become
``[MASK]``, 10% a random vocabulary token and 10% stay as they are; the model predicts all chosen ones.

The output folder is a Hugging Face-layout model folder that ``--init_model`` of the training app,
``deberta.MaskedLanguageModel(pre_trained=DIR)`` and ``deberta.SequenceClassificationModel(pre_trained=DIR)``
read: ``config.json``, ``model.safetensors`` (encoder, absolute position embeddings, LM head), the
vocabulary (``bpe_encoder.bin``, ``vocab.json``, ``merges.txt``), plus ``pretrain.yaml`` (the options)
and ``metrics.jsonl`` (training loss and masked-token accuracy by step, in the training app's format).
Errors in the input print one ``error:`` line and exit 2 before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import yaml
from torch import nn
from tqdm import tqdm

from DeBERTa import deberta
from DeBERTa.deberta import DeBERTaError, pretrained
from DeBERTa.deberta.tokenizer import GPT2Tokenizer

from .data import collate
from .distributed import DistEnv
from .options import OneLineErrorParser
from .records import METRICS_FILE, write_json, write_text
from .train import configure_logging
from .trainer import lr_factor, optimizer_groups, read_model_config, seed_everything, update_counts

logger = logging.getLogger(__name__)

OPTIONS_FILE = "pretrain.yaml"
IGNORE = -100
"""Label of positions that are not predicted (the model predicts where labels > 0)."""


class PretrainError(DeBERTaError):
    """A bad option, corpus or model/vocabulary combination."""


# ------------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------------
def read_corpus(paths: Sequence[Path]) -> list[str]:
    """Non-blank lines of the corpus files, in order; raises :class:`PretrainError` if none can be read."""
    texts = []
    for path in paths:
        try:
            with path.open(encoding="utf-8") as lines:
                texts += [line.strip() for line in lines if line.strip()]
        except (OSError, UnicodeDecodeError) as err:
            raise PretrainError(f"cannot read corpus file {path}: {err}") from None
    if not texts:
        raise PretrainError(f"the corpus ({', '.join(map(str, paths))}) has no non-blank line")
    return texts


def make_sequences(texts: Sequence[str], tokenizer: GPT2Tokenizer, max_seq_len: int) -> list[list[int]]:
    """``[CLS] … [SEP]`` id sequences of at most ``max_seq_len`` ids: one per text, more for long texts."""
    body = max_seq_len - 2
    sequences = []
    # No truncation here (a huge limit): long texts are cut into consecutive pieces below instead.
    for encoding in tokenizer.encode_batch(texts, max_seq_len=2**31 - 1):
        ids = encoding.input_ids[1:-1]
        for start in range(0, len(ids), body):
            sequences.append([tokenizer.cls_token_id, *ids[start:start + body], tokenizer.sep_token_id])
    return sequences


def replacement_ids(tokenizer: GPT2Tokenizer) -> torch.Tensor:
    """Ids a chosen token may be replaced with at random: the vocabulary's text pieces.

    Special tokens and the ``madeupword`` fillers that pad the vocabulary are left out: no text
    contains them, so they would teach the model nothing.
    """
    specials = set(tokenizer.special_tokens)
    ids = [i for i, symbol in enumerate(tokenizer.symbols)
           if symbol not in specials and not symbol.startswith("madeupword")]
    return torch.tensor(ids, dtype=torch.long)


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_id: int,
    random_ids: torch.Tensor,
    generator: torch.Generator,
    mask_prob: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of a batch: (masked input ids (B, L), labels (B, L)).

    In each row, ``round(mask_prob * n)`` of its n ``maskable`` positions (at least one) are chosen
    uniformly; a chosen token becomes ``mask_id`` with probability 0.8, a uniform draw from
    ``random_ids`` with 0.1, and stays with 0.1. ``labels`` hold the original id at chosen positions
    and :data:`IGNORE` elsewhere. ``maskable`` (B, L) bool excludes padding and special tokens.
    """
    batch, length = input_ids.shape
    counts = maskable.sum(1)
    to_choose = torch.clamp((counts.double() * mask_prob).round().long(), min=1)
    to_choose = torch.minimum(to_choose, counts)  # a row with nothing maskable gets nothing
    # A random rank among each row's maskable positions; choosing the lowest ranks is a uniform draw
    # of exactly to_choose positions without replacement.
    scores = torch.rand(batch, length, generator=generator)
    scores[~maskable] = 2.0  # after every maskable position
    ranks = scores.argsort(1).argsort(1)
    chosen = ranks < to_choose[:, None]

    action = torch.rand(batch, length, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_id
    to_randomize = chosen & (action >= 0.8) & (action < 0.9)
    picks = torch.randint(len(random_ids), (int(to_randomize.sum()),), generator=generator)
    masked[to_randomize] = random_ids[picks]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    return masked, labels


def batches(sequences: Sequence[list[int]], batch_size: int, seed: int, epoch: int) -> Iterator[list[int]]:
    """Indices of each batch of one epoch, in an order drawn from ``(seed, epoch)``; the last may be short."""
    order = torch.randperm(len(sequences), generator=torch.Generator().manual_seed(seed * 1000003 + epoch))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size].tolist()


# ------------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------------
def build_model(init_model: str | None, model_config: str | None, vocab_size: int) -> deberta.MaskedLanguageModel:
    """A masked-LM model from a checkpoint folder/name, or new from a preset/JSON sized to the vocabulary."""
    if init_model is not None:
        config = read_model_config(model_config) if model_config is not None else None
        model = deberta.MaskedLanguageModel(config, pre_trained=init_model)
        if model.config.vocab_size < vocab_size:
            raise PretrainError(f"the vocabulary has {vocab_size} ids but {init_model} embeds only "
                                f"{model.config.vocab_size}; give the model's own vocabulary (--vocab_path)")
        return model
    assert model_config is not None
    config = read_model_config(model_config)
    if config.vocab_size != vocab_size:
        logger.info("embedding table sized to the vocabulary: %d ids (config: %d)", vocab_size, config.vocab_size)
        config = dataclasses.replace(config, vocab_size=vocab_size)
    return deberta.MaskedLanguageModel(config)


def save_model(model: deberta.MaskedLanguageModel, tokenizer: GPT2Tokenizer, output_dir: Path) -> None:
    """Write the Hugging Face-layout model folder; ``model.safetensors`` last, so it marks completion."""
    from safetensors.torch import save_file

    tokenizer.save_pretrained(output_dir)
    write_json(output_dir / "config.json", {**model.config.to_hf_dict(), "architectures": ["DebertaForMaskedLM"]})
    # safetensors refuses tensors that share storage; contiguous copies are what it stores.
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = output_dir / ".model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, output_dir / "model.safetensors")


# ------------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PretrainOptions:
    """The options of one run (``pretrain.yaml`` holds exactly these)."""

    corpus: list[str]
    output_dir: str
    vocab_path: str | None = None
    model_config: str | None = None
    init_model: str | None = None
    max_seq_len: int = 128
    train_batch_size: int = 32
    learning_rate: float = 5e-4
    num_train_epochs: float = 1.0
    max_steps: int | None = None
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mask_prob: float = 0.15
    seed: int = 1234
    log_interval: int = 20


def pretrain(opts: PretrainOptions, progress: bool = True) -> Path:
    """Run the pre-training that ``opts`` describes and write its model folder; returns the folder."""
    check_options(opts)
    texts = read_corpus([Path(p) for p in opts.corpus])
    # A model name (base, large, ...) is downloaded once into the cache; its folder has its vocabulary.
    source = pretrained.resolve(opts.init_model) if opts.init_model is not None else None
    vocab = opts.vocab_path or source
    if vocab is None or not Path(vocab).exists():
        raise PretrainError(f"--vocab_path {vocab}: no such file or folder (a bpe_encoder.bin or a folder with one)")
    tokenizer = GPT2Tokenizer(vocab)
    sequences = make_sequences(texts, tokenizer, opts.max_seq_len)
    seed_everything(opts.seed)
    model = build_model(None if source is None else str(source), opts.model_config, tokenizer.vocab_size)
    if model.config.max_position_embeddings < opts.max_seq_len:
        raise PretrainError(f"--max_seq_len {opts.max_seq_len} exceeds the model's "
                            f"max_position_embeddings {model.config.max_position_embeddings}")

    output_dir = Path(opts.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "model.safetensors").unlink(missing_ok=True)  # an old model must not pass for this run's
    write_text(output_dir / OPTIONS_FILE, yaml.safe_dump(dataclasses.asdict(opts), sort_keys=False))
    (output_dir / METRICS_FILE).unlink(missing_ok=True)

    train(model, tokenizer, sequences, opts, output_dir / METRICS_FILE, progress)
    save_model(model, tokenizer, output_dir)
    return output_dir


@dataclasses.dataclass
class _Window:
    """Training statistics since the last log record."""

    loss: float = 0.0
    hits: int = 0
    targets: int = 0
    updates: int = 0
    examples: int = 0
    start: float = dataclasses.field(default_factory=time.perf_counter)


def train(model: deberta.MaskedLanguageModel, tokenizer: GPT2Tokenizer, sequences: Sequence[list[int]],
          opts: PretrainOptions, metrics_path: Path, progress: bool) -> None:
    """The loop: AdamW with linear warm-up and decay, masking drawn afresh for every batch."""
    per_epoch = math.ceil(len(sequences) / opts.train_batch_size)
    total, warmup = update_counts(opts.max_steps, opts.num_train_epochs, per_epoch, opts.warmup)
    optimizer = torch.optim.AdamW(optimizer_groups(model, opts.weight_decay), lr=opts.learning_rate, eps=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor("warmup_linear", s + 1, total, warmup))
    random_ids = replacement_ids(tokenizer)
    specials = torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id])
    masking_rng = torch.Generator().manual_seed(opts.seed)
    logger.info("pre-training on %d sequences: %d updates of %d, warm-up %d, %d parameters", len(sequences),
                total, opts.train_batch_size, warmup, sum(p.numel() for p in model.parameters()))

    model.train()
    step, epoch, window = 0, 0, _Window()
    bar = tqdm(total=total, desc="pre-train MLM", unit="update", disable=not progress, dynamic_ncols=True)
    while step < total:
        for indices in batches(sequences, opts.train_batch_size, opts.seed, epoch):
            batch = collate([{"input_ids": sequences[i], "type_ids": [0] * len(sequences[i]), "index": i}
                             for i in indices])
            maskable = batch["input_mask"].bool() & ~torch.isin(batch["input_ids"], specials)
            inputs, labels = mask_tokens(batch["input_ids"], maskable, tokenizer.mask_token_id, random_ids,
                                         masking_rng, opts.mask_prob)
            output = model(inputs, batch["type_ids"], batch["input_mask"], labels)
            output.loss.backward()
            if opts.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), opts.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]  # the rate of this update (the scheduler moves on below)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update()
            targets = labels[labels > 0]  # in the order of the model's (M, V) scores
            window.loss += output.loss.item()
            window.hits += int((output.logits.argmax(-1) == targets).sum())
            window.targets += len(targets)
            window.updates += 1
            window.examples += len(indices)
            if step % opts.log_interval == 0 or step == total:
                _log(metrics_path, bar, step, step / per_epoch, lr, window)
                window = _Window()
            if step == total:
                break
        epoch += 1
    bar.close()
    model.eval()


def _log(path: Path, bar: tqdm, step: int, epoch: float, lr: float, window: _Window) -> None:
    """Append one train record (means since the last one) to metrics.jsonl and show it on the bar."""
    loss = window.loss / window.updates
    accuracy = window.hits / max(1, window.targets)
    speed = window.examples / (time.perf_counter() - window.start)
    record = {"type": "train", "step": step, "epoch": round(epoch, 4), "loss": loss, "lr": lr,
              "examples_per_s": round(speed, 2), "masked_accuracy": accuracy}
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", lr=f"{lr:.1e}")


def check_options(opts: PretrainOptions) -> None:
    """Checks that need no files; raises :class:`PretrainError` on the first problem."""
    if opts.init_model is None and opts.model_config is None:
        raise PretrainError("give --model_config (a preset such as small, or a JSON file) to start from scratch, "
                            "or --init_model to continue from a model folder")
    for path in opts.corpus:
        if not Path(path).is_file():
            raise PretrainError(f"--corpus {path}: no such file")
    if not 0 < opts.mask_prob < 1:
        raise PretrainError(f"--mask_prob must be in (0, 1) (got {opts.mask_prob})")
    if opts.max_seq_len < 3:
        raise PretrainError(f"--max_seq_len {opts.max_seq_len} leaves no room for text between [CLS] and [SEP]")
    for name in ("train_batch_size", "log_interval"):
        if getattr(opts, name) < 1:
            raise PretrainError(f"--{name} must be at least 1 (got {getattr(opts, name)})")
    if opts.max_steps is not None and opts.max_steps < 1:
        raise PretrainError(f"--max_steps must be at least 1 (got {opts.max_steps})")
    if not (opts.learning_rate > 0 and opts.num_train_epochs > 0):
        raise PretrainError("--learning_rate and --num_train_epochs must be positive")
    if opts.warmup < 0 or opts.weight_decay < 0 or opts.max_grad_norm < 0:
        raise PretrainError("--warmup, --weight_decay and --max_grad_norm must not be negative")


# ------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> PretrainOptions:
    """The command line as :class:`PretrainOptions` (defaults from the dataclass)."""
    defaults = PretrainOptions(corpus=[], output_dir="")
    parser = OneLineErrorParser(prog="python -m DeBERTa.apps.pretrain", error_type=PretrainError,
                                description="Masked-LM pre-training of DeBERTa (enhanced mask decoder) on plain text.")
    parser.add_argument("--corpus", nargs="+", required=True, metavar="FILE", help="UTF-8 text, one text a line")
    parser.add_argument("--output_dir", required=True, metavar="DIR", help="the model folder to write")
    parser.add_argument("--vocab_path", metavar="PATH",
                        help="bpe_encoder.bin or a folder with the vocabulary (default: the --init_model's); "
                             "build one with python -m DeBERTa.apps.build_vocab")
    parser.add_argument("--model_config", metavar="FILE|PRESET",
                        help="a preset (tiny, small, base, large) or config JSON; the embedding table is sized "
                             "to the vocabulary")
    parser.add_argument("--init_model", metavar="NAME|DIR",
                        help="continue pre-training this model: a folder, or an official model name (base, large)")
    for name in ("max_seq_len", "train_batch_size", "learning_rate", "num_train_epochs", "max_steps", "warmup",
                 "weight_decay", "max_grad_norm", "mask_prob", "seed", "log_interval"):
        default = getattr(defaults, name)
        kind = float if isinstance(default, float) else int
        parser.add_argument(f"--{name}", type=kind, default=default, metavar=kind.__name__.upper(),
                            help=f"(default: {default})")
    return PretrainOptions(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (2 after a one-line error)."""
    # The package's handler, as the training app sets it up (not the root's): the demo runs both apps in
    # one process, and a root handler as well would print every line of the training app twice.
    configure_logging(DistEnv())
    try:
        output_dir = pretrain(parse_args(argv))
    except DeBERTaError as err:  # also a ConfigError: a config JSON that is not a DeBERTa v1 config
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pre-trained model: {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
