"""Pre-training objectives: masked LM (BERT's masking, whole words optionally) and replaced token detection.

Masking is drawn afresh for every batch (dynamic masking) from a generator seeded with (seed, update,
window): the same windows get the same masks whatever the number of ranks or accumulation steps, and a
resumed run masks exactly as an uninterrupted one.

Replaced token detection (ELECTRA, as DeBERTa v3 trains it): a generator (a masked-LM model, by default of
the discriminator's width and half its depth) predicts the masked tokens; its predictions, sampled, replace
them; a discriminator (the library's :class:`~DeBERTa.deberta.ReplacedTokenDetectionModel`, head
``mask_predictions.*``) reads the result and tells for every token whether it was replaced. The loss is
``MLM + rtd_lambda × RTD``. Embedding sharing between the two:

* ``gdes`` (gradient-disentangled, v3's): the discriminator's word embedding is stop-gradient(the
  generator's) + a delta initialised to zero, so the RTD loss trains the delta only and the MLM loss
  the generator's table; the exported discriminator's embedding is generator + delta;
* ``es``: one table, trained by both losses;
* ``nes``: two separate tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from DeBERTa import deberta

from .rng import derived_seed

IGNORE = -100
"""Label of positions that are not predicted (the masked-LM head predicts where labels > 0)."""
EMBEDDING_SHARING = ("gdes", "es", "nes")
_WORD_EMBEDDINGS = "deberta.embeddings.word_embeddings.weight"


# ------------------------------------------------------------------------------------------------------
# Masking
# ------------------------------------------------------------------------------------------------------
def replacement_ids(tokenizer: Any) -> torch.Tensor:
    """Ids a chosen token may be replaced with at random: the vocabulary's text pieces.

    Special tokens and the ``madeupword`` fillers that pad a GPT-2 vocabulary are left out: no text
    contains them, so they would teach the model nothing.
    """
    symbols = getattr(tokenizer, "symbols", None)
    if symbols is not None:
        specials = set(tokenizer.special_tokens)
        ids = [i for i, symbol in enumerate(symbols) if symbol not in specials and not symbol.startswith("madeupword")]
    else:
        specials_ids = {getattr(tokenizer, f"{name}_token_id", None) for name in ("pad", "cls", "sep", "unk", "mask")}
        ids = [i for i in range(tokenizer.vocab_size) if i not in specials_ids]
    return torch.tensor(ids, dtype=torch.long)


def word_starts(tokenizer: Any) -> torch.Tensor:
    """(V,) bool: whether each id begins a word (whole-word masking keeps a word's pieces together)."""
    if not hasattr(tokenizer, "part_of_whole_word"):
        return torch.ones(tokenizer.vocab_size, dtype=torch.bool)  # every piece on its own
    tokens = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
    return torch.tensor([not tokenizer.part_of_whole_word(t) for t in tokens], dtype=torch.bool)


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_id: int,
    random_ids: torch.Tensor,
    generator: torch.Generator,
    mask_prob: float = 0.15,
    starts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of a batch: (masked input ids (B, L), labels (B, L)).

    In each row, ``round(mask_prob * n)`` of its n ``maskable`` positions (at least one) are chosen
    uniformly; a chosen token becomes ``mask_id`` with probability 0.8, a uniform draw from
    ``random_ids`` with 0.1, and stays with 0.1. ``labels`` hold the original id at chosen positions
    and :data:`IGNORE` elsewhere. ``maskable`` (B, L) bool excludes padding and special tokens.

    With ``starts`` (B, L) bool, whole words are chosen: a word is a maskable position that starts one
    and the maskable positions after it up to the next start; words are drawn in random order until
    the row's count of tokens is reached (the last word may pass it).
    """
    batch, length = input_ids.shape
    counts = maskable.sum(1)
    to_choose = torch.clamp((counts.double() * mask_prob).round().long(), min=1)
    to_choose = torch.minimum(to_choose, counts)  # a row with nothing maskable gets nothing
    if starts is None:
        # A random rank among each row's maskable positions; choosing the lowest ranks is a uniform draw
        # of exactly to_choose positions without replacement.
        scores = torch.rand(batch, length, generator=generator)
        scores[~maskable] = 2.0  # after every maskable position
        ranks = scores.argsort(1).argsort(1)
        chosen = ranks < to_choose[:, None]
    else:
        # Number the words: a maskable position starts one where the tokenizer says so, or after a
        # position that is not maskable. Every position of a word gets the word's random score, so sorting
        # by score lists words one after another in random order; a word is taken while the tokens listed
        # before its first one are fewer than the row's count.
        after_gap = torch.ones_like(maskable)
        after_gap[:, 1:] = ~maskable[:, :-1]
        word = torch.cumsum(maskable & (starts | after_gap), 1)  # 1-based on maskable positions
        scores = torch.gather(torch.rand(batch, length + 1, generator=generator), 1, word)
        scores[~maskable] = 2.0
        order = scores.argsort(dim=1, stable=True)
        sorted_words = torch.gather(word, 1, order)
        first_of_word = torch.ones_like(maskable)
        first_of_word[:, 1:] = sorted_words[:, 1:] != sorted_words[:, :-1]
        position = torch.arange(length)[None].expand(batch, length)
        word_rank = torch.cummax(torch.where(first_of_word, position, torch.zeros_like(position)), 1).values
        take = (word_rank < to_choose[:, None]) & torch.gather(maskable, 1, order)
        chosen = torch.zeros_like(maskable).scatter(1, order, take)

    action = torch.rand(batch, length, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_id
    to_randomize = chosen & (action >= 0.8) & (action < 0.9)
    picks = torch.randint(len(random_ids), (int(to_randomize.sum()),), generator=generator)
    masked[to_randomize] = random_ids[picks]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    return masked, labels


@dataclasses.dataclass
class Masker:
    """Masks batches of windows, each row from its own seed (seed, update, window)."""

    mask_id: int
    special_ids: torch.Tensor
    random_ids: torch.Tensor
    seed: int
    mask_prob: float = 0.15
    word_start_table: torch.Tensor | None = None
    """(V,) bool from :func:`word_starts` for whole-word masking; None masks tokens."""

    def __call__(self, input_ids: torch.Tensor, input_mask: torch.Tensor, indices: Sequence[int],
                 step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked ids, labels) of a (B, L) CPU batch whose rows are windows ``indices``."""
        maskable = input_mask.bool() & ~torch.isin(input_ids, self.special_ids)
        starts = None if self.word_start_table is None else self.word_start_table[input_ids]
        masked, labels = [], []
        for row, window in enumerate(indices):
            generator = torch.Generator().manual_seed(derived_seed(self.seed, step, int(window)))
            m, lab = mask_tokens(input_ids[row:row + 1], maskable[row:row + 1], self.mask_id, self.random_ids,
                                 generator, self.mask_prob, None if starts is None else starts[row:row + 1])
            masked.append(m)
            labels.append(lab)
        return torch.cat(masked), torch.cat(labels)


# ------------------------------------------------------------------------------------------------------
# Replaced token detection
# ------------------------------------------------------------------------------------------------------
def generator_config(config: deberta.ModelConfig, layers: int | None = None) -> deberta.ModelConfig:
    """The generator of a discriminator ``config``: same width, half the depth (at least 1) by default."""
    depth = layers if layers is not None else max(1, config.num_hidden_layers // 2)
    return dataclasses.replace(config, num_hidden_layers=depth)


class ReplacedTokenDetection(nn.Module):
    """Generator + discriminator trained together (see the module docstring); ``forward`` gives both losses."""

    def __init__(self, generator: deberta.MaskedLanguageModel, discriminator: deberta.ReplacedTokenDetectionModel,
                 sharing: str = "gdes", rtd_lambda: float = 50.0) -> None:
        super().__init__()
        if sharing not in EMBEDDING_SHARING:
            raise ValueError(f"embedding sharing {sharing!r}: expected one of {', '.join(EMBEDDING_SHARING)}")
        self.generator, self.discriminator = generator, discriminator
        self.sharing, self.rtd_lambda = sharing, rtd_lambda
        gen_table = generator.deberta.embeddings.word_embeddings.weight
        disc_table = discriminator.deberta.embeddings.word_embeddings
        if sharing != "nes" and gen_table.shape != disc_table.weight.shape:
            raise ValueError(f"embedding sharing {sharing}: the generator's word embedding {tuple(gen_table.shape)} "
                             f"and the discriminator's {tuple(disc_table.weight.shape)} differ")
        if sharing == "gdes":
            # The discriminator's own table is unused under gdes: no gradient, not optimised.
            disc_table.weight.requires_grad_(False)
            self.embedding_delta = nn.Parameter(torch.zeros_like(gen_table))
        elif sharing == "es":
            disc_table.weight = gen_table  # one parameter, trained by both losses

    def discriminator_embeddings(self) -> torch.Tensor | None:
        """The discriminator's word embedding under gdes (stop-gradient(generator) + delta), else None."""
        if self.sharing != "gdes":
            return None
        return self.generator.deberta.embeddings.word_embeddings.weight.detach() + self.embedding_delta

    def forward(self, masked_ids: torch.Tensor, labels: torch.Tensor, input_ids: torch.Tensor,
                input_mask: torch.Tensor, type_ids: torch.Tensor | None = None,
                sample_seed: int = 0) -> dict[str, torch.Tensor]:
        """Generator MLM on ``masked_ids``; its samples (at the targets) replace them; discriminator RTD.

        Returns ``loss`` (MLM + rtd_lambda × RTD), ``mlm_loss``, ``rtd_loss``, the generator's ``logits``
        (M, V) at the targets, ``rtd_logits`` (B, L), ``replaced`` (B, L) bool and ``rtd_input`` (B, L).
        """
        mlm = self.generator(masked_ids, type_ids, input_mask, labels)
        targets = labels > 0
        generator = torch.Generator(device=mlm.logits.device).manual_seed(sample_seed)
        with torch.no_grad():
            probs = torch.softmax(mlm.logits.detach().float(), -1)
            sampled = torch.multinomial(probs, 1, generator=generator).squeeze(-1) if len(probs) else \
                torch.zeros(0, dtype=torch.long, device=probs.device)
        rtd_input = input_ids.clone()
        rtd_input[targets] = sampled
        replaced = (rtd_input != input_ids) & input_mask.bool()  # a sample equal to the original is original
        inputs = (rtd_input, type_ids, input_mask, replaced.long())
        embeddings = self.discriminator_embeddings()
        if embeddings is None:
            rtd = self.discriminator(*inputs)
        else:  # the discriminator with generator + delta as its word embedding, for this call only
            rtd = functional_call(self.discriminator, {_WORD_EMBEDDINGS: embeddings}, inputs, strict=False)
        return {"loss": mlm.loss + self.rtd_lambda * rtd.loss, "mlm_loss": mlm.loss, "rtd_loss": rtd.loss,
                "logits": mlm.logits, "rtd_logits": rtd.logits, "replaced": replaced, "rtd_input": rtd_input}

    def discriminator_state(self) -> dict[str, torch.Tensor]:
        """The discriminator's weights as a model folder holds them (under gdes: embedding = generator + delta)."""
        state = {k: v.detach() for k, v in self.discriminator.state_dict().items()}
        if self.sharing == "gdes":
            state[_WORD_EMBEDDINGS] = self.discriminator_embeddings().detach()  # type: ignore[union-attr]
        elif self.sharing == "es":
            state[_WORD_EMBEDDINGS] = self.generator.deberta.embeddings.word_embeddings.weight.detach()
        return state
